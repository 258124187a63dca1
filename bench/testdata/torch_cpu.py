#!/usr/bin/env python3
"""PyTorch CPU figures beside `learnresize bench` (docs/BENCHMARKS.md): learnable resizer inference
at [8, 3, 300, 300] -> 150x150; training steps (SGD 0.01, label smoothing 0.1) of resizer + a small
DenseNet (blocks (2, 2), growth 8, 64 -> 32, batch 16, filters 4); and the tutorial's training step,
resizer + DenseNet-121 (2 classes), 300 -> 150, batch 8, with and without the resizer.
Uses the resizer of ../../resizer/testdata/gen_resizer_parity.py. Compare at equal threads:
Debian's PyTorch 1.13 uses 1 intra-op thread here unless told otherwise, so --threads defaults to
the CPU count. Each line reports the process's peak resident memory during the timed steps
(peak_rss_gb: Linux's VmHWM, reset before each benchmark through /proc/self/clear_refs, as
`learnresize bench` does), so one run gives both figures. Run with Debian's python3-torch and
python3-torchvision:

    /usr/bin/python3 bench/testdata/torch_cpu.py [--threads 2] [--seconds 10] [--only infer,small,tutorial] [--batch 8]
"""
import argparse, json, os, sys, time

import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../resizer/testdata"))
from gen_resizer_parity import TorchResizer  # noqa: E402


def reset_peak():
    """Starts the peak resident memory afresh (Linux; elsewhere the peak is not reported)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_gb():
    """The process's peak resident memory since reset_peak, in GB (10^9 bytes), or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) * 1024 / 1e9, 2)
    except OSError:
        pass
    return None


def timeit(fn, seconds, warm=2):
    for _ in range(warm):
        fn()
    times = []
    t0 = time.time()
    while time.time() - t0 < seconds or len(times) < 3:
        t = time.time()
        fn()
        times.append(1000 * (time.time() - t))
    times.sort()
    return sum(times) / len(times), times[len(times) // 2], len(times)


class Model(torch.nn.Module):
    def __init__(s, resizer, target, filters, densenet):
        super().__init__()
        s.target = target
        s.rz = TorchResizer((target, target), filters, 1) if resizer else None
        s.net = densenet

    def forward(s, x):
        x = x / 255.0
        x = s.rz(x) if s.rz is not None else F.interpolate(x, size=(s.target, s.target), mode="bilinear", align_corners=False)
        return s.net(x)


def train_bench(name, resizer, batch, inp, target, filters, densenet, seconds, info):
    torch.manual_seed(0)
    m = Model(resizer, target, filters, densenet).train()
    opt = torch.optim.SGD(m.parameters(), lr=0.01)
    xb = torch.rand(batch, 3, inp, inp) * 255
    yb = torch.randint(0, 2, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(m(xb), yb, label_smoothing=0.1)
        loss.backward()
        opt.step()
        return loss.item()

    step()  # the first step allocates what the later ones reuse; the peak is of the steps after it
    reset_peak()
    mean, median, n = timeit(step, seconds)
    print(json.dumps(dict(bench=name, resizer=resizer, shape=info, mean_ms=round(mean, 1), median_ms=round(median, 1),
                          img_per_s=round(batch * 1000 / median, 1), runs=n, peak_rss_gb=peak_gb())), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--only", default="infer,small,tutorial")
    ap.add_argument("--batch", type=int, default=8, help="batch of the tutorial's training steps (the tutorial's own: 64)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    only = a.only.split(",")
    print(json.dumps(dict(torch=torch.__version__, torchvision=torchvision.__version__, threads=torch.get_num_threads())), flush=True)
    if "infer" in only:
        torch.manual_seed(0)
        rz = TorchResizer((150, 150), 16, 1).eval()
        x = torch.rand(8, 3, 300, 300)
        with torch.no_grad():
            rz(x)
            reset_peak()
            mean, median, n = timeit(lambda: rz(x), a.seconds)
        print(json.dumps(dict(bench="resizer inference", shape="[8,300,300,3]->150x150", mean_ms=round(mean, 1),
                              median_ms=round(median, 1), img_per_s=round(8000 / median, 1), runs=n, peak_rss_gb=peak_gb())), flush=True)
    if "small" in only:
        for resizer in (True, False):
            net = torchvision.models.DenseNet(growth_rate=8, block_config=(2, 2), num_init_features=64, num_classes=2)
            train_bench("train step small", resizer, 16, 64, 32, 4, net, a.seconds, "batch 16, 64x64->32x32, DenseNet(2,2) growth 8")
    if "tutorial" in only:
        for resizer in (True, False):
            net = torchvision.models.densenet121(weights=None, num_classes=2)
            train_bench("train step tutorial", resizer, a.batch, 300, 150, 16, net, a.seconds,
                        f"batch {a.batch}, 300x300->150x150, DenseNet-121")


if __name__ == "__main__":
    main()
