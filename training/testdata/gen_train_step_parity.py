#!/usr/bin/env python3
"""Writes train_step_parity.json: one training step's loss and gradients of both tutorial models
(learnable resizer + DenseNet, and bilinear resize + DenseNet), computed in float64 by an independent
PyTorch implementation, for TestTrainStepParityWithPyTorch to compare on every CPU backend.

The models are small but have every kind of layer of the tutorial's: the resizer (7x7, 1x1 and 3x3
convolutions, LeakyReLU 0.2, batch norm eps 1e-3, two bilinear resizes by non-integer ratios 40->32
and 36->32, which take the banded formulation's strided slices), and a DenseNet with blocks [2, 2],
growth 4 (zero padding 3 + 7x7/2 stem, zero padding 1 + 3x3/2 max pool, dense layers, a transition
with 2x2/2 average pooling, global average pooling, Dense), batch norm eps 1.001e-5. Batch norm runs
in training mode (batch statistics, gradient through them). Loss: softmax cross-entropy with label
smoothing 0.1, batch mean (Keras' CategoricalCrossentropy(label_smoothing=0.1)).

Weights are random (seeded) and stored in Keras layout (conv kernels HWIO, Dense [in, out]) under the
Keras paths the Go model uses; gradients use the same layout. Run offline with Debian's python3-torch:

    /usr/bin/python3 gen_train_step_parity.py
"""
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

IN_H, IN_W, TARGET, BATCH, GROWTH, BLOCKS, FILTERS = 40, 36, 32, 4, 4, (2, 2), 4


def resize(x):
    return F.interpolate(x, size=(TARGET, TARGET), mode="bilinear", align_corners=False, antialias=False)


def bn(c, eps):
    return nn.BatchNorm2d(c, eps=eps, momentum=0.01)


class Resizer(nn.Module):
    def __init__(self):
        super().__init__()
        f = FILTERS
        self.layers = nn.ModuleList([
            nn.Conv2d(3, f, 7, padding=3), nn.Conv2d(f, f, 1), bn(f, 1e-3),                          # conv2d, conv2d_1, bn
            nn.Conv2d(f, f, 3, padding=1, bias=False), bn(f, 1e-3),                                 # residual block
            nn.Conv2d(f, f, 3, padding=1, bias=False), bn(f, 1e-3),
            nn.Conv2d(f, f, 3, padding=1, bias=False), bn(f, 1e-3),                                 # projection
            nn.Conv2d(f, 3, 7, padding=3)])

    def forward(self, x):
        c0, c1, b0, c2, b1, c3, b2, c4, b3, c5 = self.layers
        naive = resize(x)
        h = b0(F.leaky_relu(c1(F.leaky_relu(c0(x), 0.2)), 0.2))
        bottleneck = resize(h)
        r = bottleneck + b2(c3(F.leaky_relu(b1(c2(bottleneck)), 0.2)))
        r = b3(c4(r)) + bottleneck
        return c5(r) + naive

    def named(self):
        convs = bns = 0
        for m in self.layers:
            if isinstance(m, nn.Conv2d):
                yield ("conv2d" if convs == 0 else f"conv2d_{convs}"), m
                convs += 1
            else:
                yield ("batch_normalization" if bns == 0 else f"batch_normalization_{bns}"), m
                bns += 1


class DenseNet(nn.Module):
    def __init__(self):
        super().__init__()
        eps = 1.001e-5
        self.mods = {}
        self.conv1_conv = nn.Conv2d(3, 64, 7, stride=2, bias=False)
        self.conv1_bn = bn(64, eps)
        self.dense = nn.ModuleList()
        self.trans = nn.ModuleList()
        c = 64
        names = [("conv1_conv", self.conv1_conv), ("conv1_bn", self.conv1_bn)]
        for i, n in enumerate(BLOCKS):
            block = nn.ModuleList()
            for j in range(n):
                p = f"conv{i + 2}_block{j + 1}"
                layer = nn.ModuleList([bn(c, eps), nn.Conv2d(c, 4 * GROWTH, 1, bias=False), bn(4 * GROWTH, eps),
                                       nn.Conv2d(4 * GROWTH, GROWTH, 3, padding=1, bias=False)])
                names += [(p + "_0_bn", layer[0]), (p + "_1_conv", layer[1]), (p + "_1_bn", layer[2]), (p + "_2_conv", layer[3])]
                block.append(layer)
                c += GROWTH
            self.dense.append(block)
            if i < len(BLOCKS) - 1:
                t = nn.ModuleList([bn(c, eps), nn.Conv2d(c, c // 2, 1, bias=False)])
                names += [(f"pool{i + 2}_bn", t[0]), (f"pool{i + 2}_conv", t[1])]
                self.trans.append(t)
                c //= 2
        self.bn = bn(c, eps)
        self.predictions = nn.Linear(c, 2)
        names += [("bn", self.bn), ("predictions", self.predictions)]
        self.names = names

    def forward(self, x):
        x = F.relu(self.conv1_bn(self.conv1_conv(F.pad(x, (3, 3, 3, 3)))))
        x = F.max_pool2d(F.pad(x, (1, 1, 1, 1)), 3, 2)
        for i, block in enumerate(self.dense):
            for b0, c1, b1, c2 in block:
                y = c2(F.relu(b1(c1(F.relu(b0(x))))))
                x = torch.cat([x, y], 1)
            if i < len(self.trans):
                b, c = self.trans[i]
                x = F.avg_pool2d(c(F.relu(b(x))), 2, 2)
        x = F.relu(self.bn(x)).mean((2, 3))
        return self.predictions(x)


def keras_params(prefix, named):
    """(path, tensor, to_keras) for every trainable parameter."""
    for name, m in named:
        base = f"/{prefix}/{name}/"
        if isinstance(m, nn.Conv2d):
            yield base + "kernel", m.weight, lambda t: t.permute(2, 3, 1, 0)
            if m.bias is not None:
                yield base + "bias", m.bias, lambda t: t
        elif isinstance(m, nn.BatchNorm2d):
            yield base + "gamma", m.weight, lambda t: t
            yield base + "beta", m.bias, lambda t: t
        else:
            yield base + "kernel", m.weight, lambda t: t.t()
            yield base + "bias", m.bias, lambda t: t


def flat(t):
    # 9 significant digits: exact for the float32 weights the Go test loads, and far below its tolerances.
    return [float(f"{float(v):.9g}") for v in t.detach().flatten()]


def main():
    torch.manual_seed(2026)
    resizer, densenet = Resizer().double(), DenseNet().double()
    params = list(keras_params("learnable_resizer", resizer.named())) + list(keras_params("densenet", densenet.names))
    with torch.no_grad():
        for path, p, _ in params:  # then rounded to float32, so that both sides start from the same weights
            if path.endswith("/gamma"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif path.endswith("/beta") or path.endswith("/bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                fan_in = p[0].numel() if p.dim() > 1 else 1
                p.copy_(torch.randn_like(p) * (1.5 / fan_in) ** 0.5)
            p.copy_(p.float().double())
    pixels = torch.randint(0, 256, (BATCH, IN_H, IN_W, 3), dtype=torch.int64)
    labels = torch.tensor([0, 1, 1, 0])
    smoothed = F.one_hot(labels, 2).double() * 0.9 + 0.05
    x = pixels.double().permute(0, 3, 1, 2) / 255
    resizer.train()
    densenet.train()
    out = {}
    for name in ("resizer", "baseline"):
        for _, p, _ in params:
            p.grad = None
        logits = densenet(resizer(x) if name == "resizer" else resize(x))
        loss = -(smoothed * F.log_softmax(logits, -1)).sum(-1).mean()
        loss.backward()
        grads = {}
        for path, p, keras in params:
            if name == "baseline" and path.startswith("/learnable_resizer/"):
                continue
            grads[path] = flat(keras(p.grad))
        out[name] = dict(loss=float(loss), logits=flat(logits), gradients=grads)
    variables = {path: dict(shape=list(keras(p).shape), data=flat(keras(p))) for path, p, keras in params}
    doc = dict(generator="gen_train_step_parity.py", torch=torch.__version__,
               config=dict(input=[IN_H, IN_W], target=TARGET, batch=BATCH, blocks=list(BLOCKS), growth=GROWTH,
                           filters=FILTERS, res_blocks=1, label_smoothing=0.1),
               pixels=[int(v) for v in pixels.flatten()], labels=[int(v) for v in labels], variables=variables, models=out)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_step_parity.json")
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    print("wrote", path, {k: v["loss"] for k, v in out.items()})


if __name__ == "__main__":
    main()
