"""Sign bits packed eight to a byte (docs/architecture.md §3), and fixed-width unsigned integers packed
back to back: most significant bit first in both."""
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


def pack_uint(values: Tensor, width: int) -> Tensor:
    """Write non-negative integers < 2**width in ``width`` bits each, most significant bit first,
    back to back, packed into ceil(count * width / 8) uint8 (the last byte zero-padded).

    ``width`` is 0..62; width 0 sends nothing (every value must then be 0). Loops over the
    ``width`` bit positions, never over elements.
    """
    if not 0 <= width <= 62:
        raise ValueError(f"`width` must be an integer in [0, 62], but is {width!r}.")
    values = values.reshape(-1).long()
    if values.numel() and (int(values.min()) < 0 or int(values.max()) >= 1 << width):
        raise ValueError(f"values must lie in [0, 2**{width}), but span "
                         f"[{int(values.min())}, {int(values.max())}].")
    bits = torch.empty(values.numel(), width, dtype=torch.bool, device=values.device)
    for j in range(width):
        bits[:, j] = (values >> (width - 1 - j)) & 1
    return pack_bits(bits.reshape(-1))


def unpack_uint(packed: Tensor, width: int, count: int) -> Tensor:
    """Inverse of :func:`pack_uint`: ``count`` int64 values of ``width`` bits each."""
    if packed.numel() != -(-count * width // 8):
        raise ValueError(f"{count} values of {width} bits take {-(-count * width // 8)} bytes, "
                         f"but {packed.numel()} were given.")
    bits = unpack_bits(packed, count * width).view(count, width)
    values = torch.zeros(count, dtype=torch.int64, device=packed.device)
    for j in range(width):
        values = (values << 1) | bits[:, j]
    return values
