"""``compressor=fp16``: dense IEEE half precision (16 bits per element); see compressors/half_precision.py."""

from __future__ import annotations

import torch

from compress_train.compressors.half_precision import HalfPrecision


class FP16(HalfPrecision):
    name = "fp16"
    wire_dtype = torch.float16


IMPLEMENTATION = FP16
