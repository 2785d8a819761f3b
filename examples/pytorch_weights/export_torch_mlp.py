# Trains a small PyTorch MLP (20-16-3, ReLU; SGD with momentum on synthetic
# data: labels from a noisy linear teacher, fixed seeds) and exports it the
# way `safetensors.torch.save_file(model.state_dict(), path)` does, in F32,
# F16 and BF16 (model_<dtype>.safetensors), plus test.safetensors: the
# held-out inputs x, labels y, and per dtype PyTorch's predictions
# (pred_<dtype>, computed with the weights rounded to that dtype, in f32)
# with its accuracy and smallest top-2 logit margin as metadata.
#
#   /usr/bin/python3 export_torch_mlp.py OUT_DIR      (needs torch)
#
# The files beside this script were made by it with torch 1.13.1 (Debian's
# python3-torch); the example (main.cpp) and the test
# tests/frontend/test_torch_interop.cpp load them. The safetensors files are
# written by hand (8-byte little-endian header length, JSON header, raw
# bytes), so the `safetensors` package is not needed.
import json, struct, sys
import torch

out = sys.argv[1]
torch.manual_seed(0)
torch.set_num_threads(1)
D, H, C = 20, 16, 3
g = torch.Generator().manual_seed(1)
teacher = torch.randn(D, C, generator=g)

def data(n):
    x = torch.randn(n, D, generator=g)
    y = (x @ teacher + 0.8 * torch.randn(n, C, generator=g)).argmax(1)
    return x, y

xtr, ytr = data(1024)
xte, yte = data(400)

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(D, H)
        self.fc2 = torch.nn.Linear(H, C)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))

model = Net()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for step in range(300):
    i = torch.randint(0, len(xtr), (64,), generator=g)
    loss = torch.nn.functional.cross_entropy(model(xtr[i]), ytr[i])
    opt.zero_grad()
    loss.backward()
    opt.step()

def raw(t, dtype):
    t = t.detach().contiguous()
    if dtype == "F32":
        return t.float().numpy().tobytes()
    if dtype == "F16":
        return t.half().numpy().tobytes()
    if dtype == "BF16":
        return t.bfloat16().view(torch.int16).numpy().tobytes()
    if dtype == "I64":
        return t.long().numpy().tobytes()
    raise ValueError(dtype)

def save(path, tensors, metadata):
    header, blobs, off = {}, [], 0
    for name, (dtype, t) in tensors.items():
        data = raw(t, dtype)
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)

sd = model.state_dict()
tensors = {"x": ("F32", xte), "y": ("I64", yte)}
meta = {}
for dtype, cast in [("F32", torch.float32), ("F16", torch.float16),
                    ("BF16", torch.bfloat16)]:
    save(f"{out}/model_{dtype}.safetensors",
         {k: (dtype, v) for k, v in sd.items()}, {"format": "pt"})
    m = Net()
    m.load_state_dict({k: v.to(cast).float() for k, v in sd.items()})
    with torch.no_grad():
        logits = m(xte)
    top2 = logits.topk(2, 1).values
    pred = logits.argmax(1)
    tensors[f"pred_{dtype}"] = ("I64", pred)
    meta[f"accuracy_{dtype}"] = repr((pred == yte).float().mean().item())
    meta[f"margin_{dtype}"] = repr((top2[:, 0] - top2[:, 1]).min().item())
save(f"{out}/test.safetensors", tensors, meta)
