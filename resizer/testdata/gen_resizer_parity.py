#!/usr/bin/env python3
"""Writes resizer_parity_*.json: a PyTorch learnable resizer (same architecture as
resizer.New: Keras layout, LeakyReLU 0.2, BN eps 1e-3, chained residual blocks) with random
weights, a fixed input, and its outputs in inference (eval) and training mode, plus the moving
means after the training-mode pass. The Go test loads the weights into a GoMLX store and must
match within 1e-4.

Run offline with Debian's python3-torch:  /usr/bin/python3 gen_resizer_parity.py
"""
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F


def resize(x, size):
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=False)


class TorchResizer(nn.Module):
    def __init__(self, target, filters, blocks, channels=3):
        super().__init__()
        self.target = target
        self.conv_in = nn.Conv2d(channels, filters, 7, padding=3)
        self.conv_mix = nn.Conv2d(filters, filters, 1)
        self.bn_in = nn.BatchNorm2d(filters, eps=1e-3, momentum=0.01)
        self.blocks = nn.ModuleList()
        for _ in range(blocks):
            self.blocks.append(nn.ModuleList([
                nn.Conv2d(filters, filters, 3, padding=1, bias=False), nn.BatchNorm2d(filters, eps=1e-3, momentum=0.01),
                nn.Conv2d(filters, filters, 3, padding=1, bias=False), nn.BatchNorm2d(filters, eps=1e-3, momentum=0.01)]))
        self.proj = nn.Conv2d(filters, filters, 3, padding=1, bias=False)
        self.bn_proj = nn.BatchNorm2d(filters, eps=1e-3, momentum=0.01)
        self.conv_out = nn.Conv2d(filters, channels, 7, padding=3)

    def forward(self, x):
        naive = resize(x, self.target)
        h = F.leaky_relu(self.conv_in(x), 0.2)
        h = self.bn_in(F.leaky_relu(self.conv_mix(h), 0.2))
        bottleneck = resize(h, self.target)
        r = bottleneck
        for c1, b1, c2, b2 in self.blocks:
            r = r + b2(c2(F.leaky_relu(b1(c1(r)), 0.2)))
        r = self.bn_proj(self.proj(r)) + bottleneck
        return naive + self.conv_out(r)

    def keras_layers(self):
        """(kind, module) in Keras creation order: conv2d, conv2d_1, batch_normalization, ..."""
        out = [("conv2d", self.conv_in), ("conv2d", self.conv_mix), ("batch_normalization", self.bn_in)]
        for c1, b1, c2, b2 in self.blocks:
            out += [("conv2d", c1), ("batch_normalization", b1), ("conv2d", c2), ("batch_normalization", b2)]
        out += [("conv2d", self.proj), ("batch_normalization", self.bn_proj), ("conv2d", self.conv_out)]
        return out


def flat(t):
    return [float(v) for v in t.detach().flatten()]


def make(name, target, filters, blocks, seed):
    torch.manual_seed(seed)
    m = TorchResizer(target, filters, blocks).double()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.copy_(1 + 0.3 * torch.randn_like(mod.weight))
                mod.running_mean.copy_(0.2 * torch.randn_like(mod.running_mean))
                mod.running_var.copy_(0.5 + torch.rand_like(mod.running_var))
    x = torch.rand(2, 3, 20, 24, dtype=torch.float64)

    variables = {}
    counts = {}
    for kind, mod in m.keras_layers():
        i = counts.get(kind, 0)
        counts[kind] = i + 1
        scope = "/learnable_resizer/" + (kind if i == 0 else f"{kind}_{i}")
        if kind == "conv2d":
            variables[scope + "/kernel"] = dict(shape=list(mod.weight.permute(2, 3, 1, 0).shape), data=flat(mod.weight.permute(2, 3, 1, 0)))
            if mod.bias is not None:
                variables[scope + "/bias"] = dict(shape=[mod.bias.numel()], data=flat(mod.bias))
        else:
            for k, v in (("gamma", mod.weight), ("beta", mod.bias), ("moving_mean", mod.running_mean), ("moving_variance", mod.running_var)):
                variables[scope + "/" + k] = dict(shape=[v.numel()], data=flat(v))

    m.eval()
    with torch.no_grad():
        eval_out = m(x)
    m.train()
    with torch.no_grad():
        train_out = m(x)
    moving = {}
    counts = {}
    for kind, mod in m.keras_layers():
        i = counts.get(kind, 0)
        counts[kind] = i + 1
        if kind == "batch_normalization":
            moving["/learnable_resizer/" + (kind if i == 0 else f"{kind}_{i}") + "/moving_mean"] = flat(mod.running_mean)

    nhwc = lambda t: flat(t.permute(0, 2, 3, 1))
    doc = dict(generator="gen_resizer_parity.py", torch=torch.__version__,
               config=dict(target=list(target), filters=filters, res_blocks=blocks, interpolation="bilinear"),
               input_shape=[2, 20, 24, 3], input=nhwc(x), variables=variables,
               output_shape=[2, target[0], target[1], 3], eval_output=nhwc(eval_out), train_output=nhwc(train_out),
               moving_mean_after_train=moving)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
    with open(path, "w") as f:
        json.dump(doc, f)
    print("wrote", path)


if __name__ == "__main__":
    make("resizer_parity_default.json", (10, 12), 16, 1, 1)
    make("resizer_parity_chained.json", (13, 9), 8, 2, 2)
