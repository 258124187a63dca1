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
Keras paths the Go model uses; gradients use the same layout. The PyTorch models are tutorial_torch.py's.
Run offline with Debian's python3-torch:

    /usr/bin/python3 gen_train_step_parity.py
"""
import json
import os

import torch
import torch.nn.functional as F

from tutorial_torch import DenseNet, Resizer, keras_params, resize as resize_to

IN_H, IN_W, TARGET, BATCH, GROWTH, BLOCKS, FILTERS = 40, 36, 32, 4, 4, (2, 2), 4


def resize(x):
    return resize_to(x, TARGET)


def flat(t):
    # 9 significant digits: exact for the float32 weights the Go test loads, and far below its tolerances.
    return [float(f"{float(v):.9g}") for v in t.detach().flatten()]


def main():
    torch.manual_seed(2026)
    resizer, densenet = Resizer(TARGET, FILTERS).double(), DenseNet(BLOCKS, GROWTH).double()
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
