"""``compressor=bf16``: dense bfloat16 (16 bits per element); see compressors/half_precision.py."""

from __future__ import annotations

import torch

from compress_train.compressors.half_precision import HalfPrecision


class BF16(HalfPrecision):
    name = "bf16"
    wire_dtype = torch.bfloat16


IMPLEMENTATION = BF16
