"""Sign bits packed eight to a byte (design.md §4), most significant bit first."""
from __future__ import annotations

import torch
from torch import Tensor

_WEIGHTS = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8)


def pack_bits(bits: Tensor) -> Tensor:
    """Pack a bool vector of length d into ceil(d / 8) uint8 (the last byte zero-padded)."""
    d = bits.numel()
    padded = torch.zeros(-(-d // 8) * 8, dtype=torch.uint8, device=bits.device)
    padded[:d] = bits.reshape(-1)
    return (padded.view(-1, 8) * _WEIGHTS.to(bits.device)).sum(1, dtype=torch.uint8)


def unpack_bits(packed: Tensor, d: int) -> Tensor:
    """Inverse of :func:`pack_bits`: the first d bits as a bool vector."""
    shifts = torch.arange(7, -1, -1, dtype=torch.uint8, device=packed.device)
    return ((packed.unsqueeze(1) >> shifts) & 1).reshape(-1)[:d].bool()
