#!/usr/bin/env python3
"""PyTorch side of kiln's GPU check (tools/gpu-check.sh, step "torch").

One training step of the MLP 784-256-128-10 (ReLU, cross-entropy, SGD with
momentum 0.9 and weight decay 5e-4, lr 0.05) at batch 64, 256 and 1024, the
work kiln_gpu_bench's kiln_step does, in three settings:

  torch_eager                 eager mode; each step copies the batch from
                              pinned host memory (non_blocking) and reads
                              loss.item()
  torch_compile_ro            torch.compile(mode="reduce-overhead") (CUDA
                              graphs), same copy and loss.item() each step
  torch_compile_ro_resident   reduce-overhead with the batch already on the
                              GPU and no loss.item(): an upper bound, not the
                              same work

Each step is timed with CUDA events recorded around it (median and p90 over
--steps steps after --warmup); the synchronous settings also sync per step
through loss.item(). TF32 is off (kiln computes in full f32). Rows go to
stdout and, tab-separated (what, batch, median ms, p90 ms, -), to --tsv.
Exit 2 without PyTorch or a CUDA device.
"""
import argparse
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tsv", help="append tab-separated rows to this file")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--batches", default="64,256,1024")
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        print("torch_mlp.py: PyTorch is not installed", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("torch_mlp.py: no CUDA device visible to PyTorch", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cuda")
    print("torch %s on %s" % (torch.__version__, torch.cuda.get_device_name(0)),
          flush=True)
    rows = []

    def timed(mode, batch, one):
        for _ in range(args.warmup):
            one()
        torch.cuda.synchronize()
        ev = [(torch.cuda.Event(enable_timing=True),
               torch.cuda.Event(enable_timing=True))
              for _ in range(args.steps)]
        last = None
        for e0, e1 in ev:
            e0.record()
            last = one()
            e1.record()
        torch.cuda.synchronize()
        loss = float(last.item())
        if loss != loss:
            raise RuntimeError("%s batch %d: loss is NaN" % (mode, batch))
        t = sorted(e0.elapsed_time(e1) for e0, e1 in ev)
        med, p90 = t[len(t) // 2], t[min(len(t) - 1, len(t) * 9 // 10)]
        line = "%s\t%d\t%.4f\t%.4f\t-" % (mode, batch, med, p90)
        rows.append(line)
        print(line, flush=True)

    for batch in [int(b) for b in args.batches.split(",")]:
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(784, 256), torch.nn.ReLU(),
            torch.nn.Linear(256, 128), torch.nn.ReLU(),
            torch.nn.Linear(128, 10)).to(dev)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9,
                              weight_decay=5e-4)
        # Not zeros: fixed random data.
        g = torch.Generator().manual_seed(1)
        xh = torch.randn(batch, 784, generator=g).pin_memory()
        yh = torch.randint(0, 10, (batch,), generator=g).pin_memory()
        xd, yd = xh.to(dev), yh.to(dev)

        def step(x, y):
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        def from_host(fn):
            def one():
                x = xh.to(dev, non_blocking=True)
                y = yh.to(dev, non_blocking=True)
                loss = fn(x, y)
                loss.item()
                return loss
            return one

        timed("torch_eager", batch, from_host(step))
        if args.no_compile:
            continue
        # One compile per batch size, used by both compiled settings.
        compiled = torch.compile(step, mode="reduce-overhead", dynamic=False)

        def fn(x, y):
            # Each call is a new step: its CUDA-graph outputs may be reused.
            torch.compiler.cudagraph_mark_step_begin()
            return compiled(x, y)
        timed("torch_compile_ro", batch, from_host(fn))
        timed("torch_compile_ro_resident", batch, lambda: fn(xd, yd))
    if args.tsv:
        with open(args.tsv, "a") as f:
            f.write("\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
