#!/usr/bin/env python3
"""PyTorch reference timings for kiln's GPU check (tools/gpu-check.sh).

Times one training step of the MLP 784-256-128-10 (ReLU, cross-entropy,
SGD with momentum 0.9 and weight decay 5e-4) at batch 64, 256 and 1024, in
eager mode and with torch.compile(mode="reduce-overhead") (CUDA graphs), and
prints a markdown table (also written to --out). Data is random and stays on
the GPU so the step itself is measured.
"""
import argparse
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", help="append the markdown table to this file")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
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
    torch.backends.cuda.matmul.allow_tf32 = False  # kiln's default: no TF32
    dev = torch.device("cuda")
    rows = ["| PyTorch %s MLP 784-256-128-10 step | batch | ms/step |" % torch.__version__,
            "| --- | ---: | ---: |"]
    for batch in [int(b) for b in args.batches.split(",")]:
        modes = ["eager"] + ([] if args.no_compile else ["compile(reduce-overhead)"])
        for mode in modes:
            torch.manual_seed(0)
            model = torch.nn.Sequential(
                torch.nn.Linear(784, 256), torch.nn.ReLU(),
                torch.nn.Linear(256, 128), torch.nn.ReLU(),
                torch.nn.Linear(128, 10)).to(dev)
            opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9,
                                  weight_decay=5e-4)
            x = torch.randn(batch, 784, device=dev)
            y = torch.randint(0, 10, (batch,), device=dev)

            def step():
                opt.zero_grad(set_to_none=True)
                loss = torch.nn.functional.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
                return loss

            fn = step
            if mode != "eager":
                fn = torch.compile(step, mode="reduce-overhead")
            for _ in range(args.warmup):
                fn()
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(args.steps):
                fn()
            torch.cuda.synchronize()
            ms = (time.perf_counter() - t0) * 1e3 / args.steps
            rows.append("| %s | %d | %.3f |" % (mode, batch, ms))
            print(rows[-1], flush=True)
    text = "\n".join(rows) + "\n"
    if args.out:
        with open(args.out, "a") as f:
            f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
