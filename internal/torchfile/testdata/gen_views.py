#!/usr/bin/env python3
"""Writes views.pth (torch.save's zip format) and views_legacy.pth (the legacy, pre-1.6 format): a
state dict whose tensors exercise what the Go reader (torchfile.ReadPyTorch) must follow, with
values the Go test knows: base = arange(12) as 3x4 float32; views sharing its storage: its transpose
(strides (1, 4)) and its second row (storage offset 4); float64, float16 and bfloat16 copies (2*base,
exact in every dtype); and a batch-norm step counter (int64), which the reader leaves out.

Run offline with Debian's python3-torch:
    /usr/bin/python3 gen_views.py
"""
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    state = {
        "base": base,
        "transposed": base.t(),
        "row": base[1],
        "f64": (2 * base).double(),
        "f16": (2 * base).half(),
        "bf16": (2 * base).bfloat16(),
        "bn.num_batches_tracked": torch.tensor(7, dtype=torch.int64),
    }
    assert state["transposed"].stride() == (1, 4) and state["row"].storage_offset() == 4
    torch.save(state, os.path.join(HERE, "views.pth"))
    torch.save(state, os.path.join(HERE, "views_legacy.pth"), _use_new_zipfile_serialization=False)


if __name__ == "__main__":
    main()
