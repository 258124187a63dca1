#!/usr/bin/env python3
"""Writes torchvision_small.safetensors, torchvision_small_legacy.pth and torchvision_small.json: a torchvision DenseNet state dict, as
practitioners' files hold it (torchvision names, PyTorch layouts: conv weights OIHW, Linear [out, in],
batch-norm running statistics and num_batches_tracked), and its logits on a fixed input, for the Go
loader's test (LoadTorchvision). A small DenseNet keeps the file small (~290 KB): 64 initial features,
blocks (2, 2), growth 8, bottleneck 4, 2 classes; weights from torch's seeded random init, batch-norm
statistics randomised too, so that every tensor matters.

safetensors is written by hand (Debian's torch 1.13 has no safetensors package): 8 bytes of header
length (little endian), a JSON header {name: {dtype, shape, data_offsets}}, then the raw bytes.

Run offline with Debian's python3-torch and python3-torchvision:
    /usr/bin/python3 gen_torchvision_safetensors.py
"""
import json
import os
import re
import struct

import torch
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))


def save_safetensors(tensors, path, metadata=None):
    """The safetensors format: 8 bytes of header length (little endian), a JSON header (with
    metadata, a dict of strings, as its __metadata__), the raw data."""
    header, blobs, offset = ({"__metadata__": metadata} if metadata else {}), [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        dtype = {torch.float32: "F32", torch.float64: "F64", torch.int32: "I32", torch.int64: "I64"}[t.dtype]
        raw = t.numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    torch.manual_seed(17)
    model = torchvision.models.DenseNet(growth_rate=8, block_config=(2, 2), num_init_features=64, bn_size=4,
                                        drop_rate=0, num_classes=2)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.eps = 1.001e-5  # Keras' DenseNet epsilon, which the Go model uses
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
    model.eval()
    # NHWC, as the Go model takes it: x[i] = 0.5 + 0.5 sin(0.37 i) over the flat index, which the Go
    # test reproduces instead of reading 13,824 numbers.
    x = (0.5 + 0.5 * torch.sin(0.37 * torch.arange(2 * 48 * 48 * 3, dtype=torch.float64))).float().reshape(2, 48, 48, 3)
    with torch.no_grad():
        logits = model(x.permute(0, 3, 1, 2))
    state = model.state_dict()
    save_safetensors(state, os.path.join(HERE, "torchvision_small.safetensors"))
    # The same weights as a .pth with the legacy names of torchvision's published DenseNet files
    # (densenet121-a639ec97.pth: "denselayer1.norm.1.weight" for "denselayer1.norm1.weight").
    legacy = {re.sub(r"(denselayer\d+\.(?:norm|relu|conv))(\d)\.", r"\1.\2.", k): v for k, v in state.items()}
    torch.save(legacy, os.path.join(HERE, "torchvision_small_legacy.pth"))
    with open(os.path.join(HERE, "torchvision_small.json"), "w") as f:
        json.dump(dict(generator="gen_torchvision_safetensors.py", torch=torch.__version__, torchvision=torchvision.__version__,
                       blocks=[2, 2], growth=8, classes=2, input_shape=[2, 48, 48, 3], input="0.5 + 0.5 sin(0.37 i)",
                       eval_logits=[float(v) for v in logits.flatten()]), f)
    print("logits", logits.tolist())


if __name__ == "__main__":
    main()
