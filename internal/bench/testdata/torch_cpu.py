#!/usr/bin/env python3
"""PyTorch CPU figures beside `learnresize bench` on the go backend (information, not a goal):
learnable resizer inference at [8, 3, 300, 300] -> 150x150, and a training step of resizer + a small
DenseNet (blocks (2, 2), growth 8, 64 -> 32, batch 16), same recipe (SGD 0.01, label smoothing 0.1).
Uses the resizer of ../../../resizer/testdata/gen_resizer_parity.py. Run with Debian's python3-torch:

    /usr/bin/python3 internal/bench/testdata/torch_cpu.py
"""
import json, os, sys, time

import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../resizer/testdata"))
from gen_resizer_parity import TorchResizer  # noqa: E402


def timeit(fn, warm=2, seconds=10.0):
    for _ in range(warm):
        fn()
    n, t0 = 0, time.time()
    while time.time() - t0 < seconds:
        fn()
        n += 1
    return 1000 * (time.time() - t0) / n, n


def main():
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    rz = TorchResizer((150, 150), 16, 1).eval()
    x = torch.rand(8, 3, 300, 300)
    with torch.no_grad():
        ms, n = timeit(lambda: rz(x))
    print(json.dumps(dict(bench="resizer inference", shape="[8,300,300,3]->150x150", ms=round(ms, 1), img_per_s=round(8000 / ms, 1), runs=n, torch=torch.__version__, threads=threads)))

    class Model(torch.nn.Module):
        def __init__(s, resizer):
            super().__init__()
            s.rz = TorchResizer((32, 32), 4, 1) if resizer else None
            s.net = torchvision.models.DenseNet(growth_rate=8, block_config=(2, 2), num_init_features=64, num_classes=2)

        def forward(s, x):
            x = x / 255.0
            x = s.rz(x) if s.rz is not None else F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
            return s.net(x)

    for resizer in (True, False):
        m = Model(resizer).train()
        opt = torch.optim.SGD(m.parameters(), lr=0.01)
        xb = torch.rand(16, 3, 64, 64) * 255
        yb = torch.randint(0, 2, (16,))

        def step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(m(xb), yb, label_smoothing=0.1)
            loss.backward()
            opt.step()
            return loss.item()

        ms, n = timeit(step)
        print(json.dumps(dict(bench="train step", resizer=resizer, shape="batch 16, 64x64->32x32, DenseNet(2,2) growth 8", ms=round(ms, 1), img_per_s=round(16000 / ms, 1), runs=n)))


if __name__ == "__main__":
    main()
