#!/usr/bin/env python3
"""Writes bilinear_golden.json: reference outputs of PyTorch's
F.interpolate(mode="bilinear", align_corners=False, antialias=False), which equals
tf.image.resize(method="bilinear") (half-pixel centres, no antialiasing).

Run offline with Debian's python3-torch:  /usr/bin/python3 gen_bilinear.py
"""
import json
import os

import torch
import torch.nn.functional as F

# (batch, in_h, in_w, channels, out_h, out_w): downscales, upscales, mixed, odd ratios, identity axes.
CASES = [
    (2, 7, 9, 3, 3, 4),
    (1, 5, 6, 2, 11, 13),
    (1, 8, 8, 1, 4, 4),
    (1, 6, 10, 2, 6, 5),
    (2, 4, 4, 3, 7, 3),
    (1, 1, 5, 1, 3, 2),
    (1, 12, 12, 2, 5, 7),
    (1, 12, 18, 1, 8, 12),
    (1, 30, 30, 1, 15, 15),
    (1, 10, 7, 2, 25, 21),
]


def main():
    g = torch.Generator().manual_seed(20211125)
    cases = []
    for n, ih, iw, c, oh, ow in CASES:
        x = torch.rand((n, ih, iw, c), generator=g, dtype=torch.float64).float()
        y = F.interpolate(x.permute(0, 3, 1, 2), size=(oh, ow), mode="bilinear",
                          align_corners=False, antialias=False).permute(0, 2, 3, 1).contiguous()
        cases.append(dict(input_shape=[n, ih, iw, c], output_shape=[n, oh, ow, c],
                          input=[float(v) for v in x.flatten()], output=[float(v) for v in y.flatten()]))
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bilinear_golden.json")
    with open(out, "w") as f:
        json.dump(dict(generator="gen_bilinear.py", torch=torch.__version__, cases=cases), f)
    print("wrote", out, len(cases), "cases")


if __name__ == "__main__":
    main()
