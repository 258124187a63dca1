#!/usr/bin/env python3
"""Writes torchvision_resnet_small.safetensors, torchvision_resnet_small.pth and torchvision_resnet_small.json:
the state dict of a torchvision ResNet as practitioners' files hold it (torchvision names, PyTorch layouts:
conv weights OIHW, Linear [out, in], batch-norm running statistics and num_batches_tracked), and its
eval-mode logits on a fixed input, for the Go loader's test (resnet.LoadTorchvision with
Variant(Torchvision)).

The network is torchvision's own ResNet and Bottleneck (v1.5: the stride on the 3x3 convolution, no
convolution biases, downsample = 1x1 conv + BN), made small so that the files stay small (~190 KB each):
_make_layer gets planes / 16 (stage filters 4, 8, 16, 32, blocks output 16 ... 128 channels), the stem
keeps its 64 filters, layers [2, 1, 1, 1] (layer1.1 has an identity shortcut), fc replaced to match,
2 classes. Weights come from torch's seeded random init; batch-norm weights, biases and running
statistics are randomised too, so that every tensor matters.

safetensors is written by hand (Debian's torch 1.13 has no safetensors package) with densenet's
fixture script's save_safetensors: 8 bytes of header length (little endian), a JSON header
{name: {dtype, shape, data_offsets}}, then the raw bytes. The
.pth is torch.save of the state dict in PyTorch's legacy (pre-1.6, non-zip) format, which older
published files use: the model tests then load both of torch.save's formats (densenet's fixture is a
zip .pth).

Run offline with Debian's python3-torch and python3-torchvision:
    /usr/bin/python3 gen_torchvision_resnet.py
"""
import json
import os
import sys

import torch
import torchvision
from torchvision.models.resnet import Bottleneck, ResNet

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../densenet/testdata"))
from gen_torchvision_safetensors import save_safetensors  # noqa: E402  (the same hand-written writer)

HERE = os.path.dirname(os.path.abspath(__file__))
DIV = 16
LAYERS = [2, 1, 1, 1]
CLASSES = 2
INPUT_SHAPE = [2, 64, 64, 3]


class SmallResNet(ResNet):
    """torchvision's ResNet with every stage's planes divided by DIV (the stem keeps 64 filters)."""

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        return super()._make_layer(block, planes // DIV, blocks, stride, dilate)


def main():
    torch.manual_seed(23)
    model = SmallResNet(Bottleneck, LAYERS, num_classes=CLASSES)
    model.fc = torch.nn.Linear(512 // DIV * Bottleneck.expansion, CLASSES)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                assert mod.eps == 1e-5  # torchvision's, which the Go Torchvision variant uses
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
    model.eval()
    # NHWC, as the Go model takes it: x[i] = 0.5 + 0.5 sin(0.37 i) over the flat index, which the Go
    # test reproduces instead of reading 24,576 numbers.
    n = INPUT_SHAPE[0] * INPUT_SHAPE[1] * INPUT_SHAPE[2] * INPUT_SHAPE[3]
    x = (0.5 + 0.5 * torch.sin(0.37 * torch.arange(n, dtype=torch.float64))).float().reshape(*INPUT_SHAPE)
    with torch.no_grad():
        logits = model(x.permute(0, 3, 1, 2))
    state = model.state_dict()
    save_safetensors(state, os.path.join(HERE, "torchvision_resnet_small.safetensors"))
    torch.save(state, os.path.join(HERE, "torchvision_resnet_small.pth"), _use_new_zipfile_serialization=False)
    with open(os.path.join(HERE, "torchvision_resnet_small.json"), "w") as f:
        json.dump(dict(generator="gen_torchvision_resnet.py", torch=torch.__version__, torchvision=torchvision.__version__,
                       blocks=LAYERS, filters=64 // DIV, stem_filters=64, classes=CLASSES, input_shape=INPUT_SHAPE,
                       input="0.5 + 0.5 sin(0.37 i)", eval_logits=[float(v) for v in logits.flatten()]), f)
    print("logits", logits.tolist())


if __name__ == "__main__":
    main()
