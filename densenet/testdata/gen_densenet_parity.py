#!/usr/bin/env python3
"""Writes densenet121_parity.json: logits of torchvision's densenet121 (2 classes, Keras batch-norm
epsilon 1.001e-5) on a fixed 2x64x64x3 input, in inference (eval) and in training mode.

The weights are not stored: every variable is filled by a formula of its Keras path and flat index
(Keras layout: conv kernels HWIO, Dense kernels [in, out]) that the Go test reproduces:

    phase = (sum of the path's bytes % 997) / 997 * 2*pi ;  s_j = sin(phase + 0.731*j)
    kernel: s_j * sqrt(3 / fan_in)   gamma: 1 + 0.2*s_j   beta, bias, moving_mean: 0.1*s_j
    moving_variance: 1 + 0.5*s_j^2

Run offline with Debian's python3-torch and python3-torchvision:
    /usr/bin/python3 gen_densenet_parity.py
"""
import json
import math
import os
import re

import numpy as np
import torch
import torchvision

PREFIX = "/densenet121/"


def keras_name(torch_name):
    """Maps a torchvision densenet module name to the Keras layer name."""
    fixed = {"features.conv0": "conv1_conv", "features.norm0": "conv1_bn", "features.norm5": "bn", "classifier": "predictions"}
    if torch_name in fixed:
        return fixed[torch_name]
    m = re.fullmatch(r"features\.denseblock(\d+)\.denselayer(\d+)\.(norm1|conv1|norm2|conv2)", torch_name)
    if m:
        part = {"norm1": "0_bn", "conv1": "1_conv", "norm2": "1_bn", "conv2": "2_conv"}[m.group(3)]
        return f"conv{int(m.group(1)) + 1}_block{m.group(2)}_{part}"
    m = re.fullmatch(r"features\.transition(\d+)\.(norm|conv)", torch_name)
    if m:
        return f"pool{int(m.group(1)) + 1}_{'bn' if m.group(2) == 'norm' else 'conv'}"
    raise ValueError(torch_name)


def formula(path, shape, kind):
    phase = (sum(path.encode()) % 997) / 997 * 2 * math.pi
    n = int(np.prod(shape))
    s = np.sin(phase + 0.731 * np.arange(n, dtype=np.float64)).reshape(shape)
    if kind == "kernel":
        fan_in = int(np.prod(shape[:-1]))
        return s * math.sqrt(3.0 / fan_in)
    if kind == "gamma":
        return 1 + 0.2 * s
    if kind == "moving_variance":
        return 1 + 0.5 * s * s
    return 0.1 * s  # beta, bias, moving_mean


def main():
    model = torchvision.models.densenet121(weights=None, num_classes=2).double()
    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.Conv2d):
                path = PREFIX + keras_name(name) + "/kernel"
                k = formula(path, list(mod.weight.permute(2, 3, 1, 0).shape), "kernel")  # HWIO
                mod.weight.copy_(torch.from_numpy(k).permute(3, 2, 0, 1))
            elif isinstance(mod, torch.nn.BatchNorm2d):
                mod.eps = 1.001e-5
                base = PREFIX + keras_name(name) + "/"
                c = [mod.num_features]
                mod.weight.copy_(torch.from_numpy(formula(base + "gamma", c, "gamma")))
                mod.bias.copy_(torch.from_numpy(formula(base + "beta", c, "beta")))
                mod.running_mean.copy_(torch.from_numpy(formula(base + "moving_mean", c, "moving_mean")))
                mod.running_var.copy_(torch.from_numpy(formula(base + "moving_variance", c, "moving_variance")))
            elif isinstance(mod, torch.nn.Linear):
                base = PREFIX + keras_name(name) + "/"
                k = formula(base + "kernel", [mod.in_features, mod.out_features], "kernel")
                mod.weight.copy_(torch.from_numpy(k).t())
                mod.bias.copy_(torch.from_numpy(formula(base + "bias", [mod.out_features], "bias")))
    g = torch.Generator().manual_seed(64)
    x = torch.rand((2, 64, 64, 3), generator=g, dtype=torch.float64)
    model.eval()
    with torch.no_grad():
        eval_logits = model(x.permute(0, 3, 1, 2))
    model.train()
    with torch.no_grad():
        train_logits = model(x.permute(0, 3, 1, 2))
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "densenet121_parity.json")
    with open(out, "w") as f:
        json.dump(dict(generator="gen_densenet_parity.py", torch=torch.__version__, torchvision=torchvision.__version__,
                       input_shape=[2, 64, 64, 3], input=[float(v) for v in x.flatten()],
                       eval_logits=[float(v) for v in eval_logits.flatten()],
                       train_logits=[float(v) for v in train_logits.flatten()]), f)
    print("wrote", out, eval_logits.tolist(), train_logits.tolist())


if __name__ == "__main__":
    main()
