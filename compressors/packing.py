"""Sign bits packed eight to a byte (docs/architecture.md §3), and fixed-width unsigned integers packed
back to back: most significant bit first in both.

Each map makes a constant number of passes over its input (never one per element or per bit).
Bits are packed by NumPy's ``packbits`` / ``unpackbits`` for CPU tensors (zero-copy views) and by
the pure-torch ``*_torch`` functions on any other device; both write the same bytes
(tests/test_fast_quantizers.py). Integers are packed in chunks of about 2^20 values, by whole
groups: when 8 / gcd(w, 8) fields (a whole number of bytes) fit one int64, each group is one
shift-and-sum (``_ByteGroups``); otherwise by 64-bit words, whose w-bit fields realign every
64 / gcd(w, 64) values: each field's head and tail are shifted into place with broadcast shift
tensors and gathered word by word (``_FieldLayout``). Either way a fixed number of torch ops per
chunk, the same on any device; only the byte swap of the words uses NumPy on the CPU.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

# (0x8040201008040201 * eight 0/1 bytes b_0..b_7 read as a little-endian int64) >> 56 has b_i
# at bit 7 - i and no carry into bits 56..63: the eight bits, MSB first, in one multiply.
_GATHER_BITS = 0x8040201008040201 - (1 << 64)


def _spread_table() -> Tensor:
    """Byte b -> the int64 whose bytes (in memory order) are b's bits, MSB first, as 0/1."""
    bits = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1)
    return torch.from_numpy(np.ascontiguousarray(bits)).view(torch.int64).reshape(256)


_SPREAD = _spread_table()


def pack_bits(bits: Tensor) -> Tensor:
    """Pack a bool vector of length d into ceil(d / 8) uint8 (the last byte zero-padded)."""
    bits = bits.reshape(-1).to(torch.bool)
    if bits.device.type != "cpu":
        return pack_bits_torch(bits)
    return torch.from_numpy(np.packbits(bits.contiguous().numpy()))


def pack_nonnegative(x: Tensor) -> Tensor:
    """``pack_bits(x >= 0)``: on the CPU NumPy's compare and ``packbits`` (one read of x, 2x faster than
    torch's compare at d = 25M); the same IEEE comparison (-0.0 >= 0, NaN is not), the same bytes."""
    x = x.reshape(-1)
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64):
        return torch.from_numpy(np.packbits(np.greater_equal(x.contiguous().numpy(), 0)))
    return pack_bits(x >= 0)


def pack_bits_torch(bits: Tensor) -> Tensor:
    """:func:`pack_bits` in torch ops only (any device)."""
    d = bits.numel()
    padded = torch.zeros(-(-d // 8) * 8, dtype=torch.uint8, device=bits.device)
    padded[:d] = bits.reshape(-1)
    gathered = padded.view(torch.int64).mul_(_GATHER_BITS).bitwise_right_shift_(56).bitwise_and_(0xFF)
    return gathered.to(torch.uint8)


def unpack_bits(packed: Tensor, d: int) -> Tensor:
    """Inverse of :func:`pack_bits`: the first d bits as a bool vector."""
    if packed.device.type != "cpu":
        return unpack_bits_torch(packed, d)
    bits = np.unpackbits(packed.contiguous().numpy(), count=d)
    return torch.from_numpy(bits).view(torch.bool)


def unpack_bits_torch(packed: Tensor, d: int) -> Tensor:
    """:func:`unpack_bits` in torch ops only (any device): one table lookup per byte."""
    spread = _SPREAD.to(packed.device)[packed.reshape(-1).long()]
    return spread.view(torch.uint8)[:d].view(torch.bool)


def _field_layout(width: int) -> tuple[int, int]:
    """(values per period, 64-bit words per period): w-bit fields realign every 64 / gcd(w, 64)."""
    g = math.gcd(width, 64)
    return 64 // g, width // g


def _check_width(width: int) -> None:
    if not 0 <= width <= 62:
        raise ValueError(f"`width` must be an integer in [0, 62], but is {width!r}.")


def _chunk_values(period: int) -> int:
    """Values per chunk: whole periods, about 2^20 values, so the int64 scratch stays near 8 MB."""
    return period * max(1, _CHUNK // period)


_CHUNK = 1 << 20


def _swap_bytes(words: Tensor) -> Tensor:
    """int64 words (contiguous) -> their bytes, most significant first (big-endian)."""
    if words.device.type == "cpu":
        return torch.from_numpy(words.numpy().byteswap().view(np.uint8))
    return words.view(torch.uint8).view(-1, 8).flip(1).reshape(-1)


def _words_from_bytes(chunk: Tensor, count: int) -> Tensor:
    """``count`` big-endian int64 words read off the bytes ``chunk`` (zero-padded at the end)."""
    padded = torch.zeros(count * 8, dtype=torch.uint8, device=chunk.device)
    padded[: chunk.numel()] = chunk
    if padded.device.type == "cpu":
        return torch.from_numpy(padded.numpy().view(">i8").astype(np.int64))
    return padded.view(-1, 8).flip(1).contiguous().view(torch.int64)


class _FieldLayout:
    """Where each of the ``period`` w-bit fields of a word period lies in its ``words`` 64-bit words.

    Field j starts ``bit`` = (j w) mod 64 bits below the top of word (j w) div 64; when it runs
    ``spill`` = bit + w - 64 > 0 bits past that word's end, its low ``spill`` bits open the next word.
    """

    def __init__(self, width: int, device: torch.device):
        self.width, (self.period, self.words) = width, _field_layout(width)
        word = [j * width // 64 for j in range(self.period)]
        spill = [j * width % 64 + width - 64 for j in range(self.period)]
        long: dict[str, Any] = {"dtype": torch.int64, "device": device}
        self.word = torch.tensor(word, **long)
        self.next_word = torch.tensor([min(q + 1, self.words - 1) for q in word], **long)
        self.spill = torch.tensor([max(s, 0) for s in spill], **long)
        self.lift = torch.tensor([max(-s, 0) for s in spill], **long)  # left shift of a field that fits
        self.tail_shift = torch.tensor([64 - s if s > 0 else 0 for s in spill], **long)
        self.tail_mask = torch.tensor([-1 if s > 0 else 0 for s in spill], **long)
        self.head_mask = torch.tensor([(1 << (width - max(s, 0))) - 1 for s in spill], **long)
        self.low_mask = torch.tensor([(1 << s) - 1 if s > 0 else 0 for s in spill], **long)
        # for word q, the columns of [heads | tails | 0] that land in it, padded with the zero column
        sources = [
            [j for j in range(self.period) if word[j] == q]
            + [self.period + j for j in range(self.period) if spill[j] > 0 and word[j] + 1 == q]
            for q in range(self.words)
        ]
        self.fan_in = max(len(src) for src in sources)
        self.sources = torch.tensor(
            [src + [2 * self.period] * (self.fan_in - len(src)) for src in sources], **long
        ).reshape(1, -1)

    def pack(self, fields: Tensor) -> Tensor:
        """(r, period) field values -> (r, words) int64 words holding them back to back."""
        p = self.period
        parts = fields.new_empty(fields.shape[0], 2 * p + 1)  # [heads | tails | 0]
        torch.bitwise_right_shift(fields, self.spill, out=parts[:, :p]).bitwise_left_shift_(self.lift)
        torch.bitwise_left_shift(fields, self.tail_shift, out=parts[:, p : 2 * p]).bitwise_and_(self.tail_mask)
        parts[:, 2 * p] = 0
        gathered = parts.gather(1, self.sources.expand(fields.shape[0], -1))
        # the parts of one word hold disjoint bits, so their sum is their bitwise or
        return gathered.view(fields.shape[0], self.words, self.fan_in).sum(-1)

    @property
    def period_bytes(self) -> int:
        return 8 * self.words

    def pack_bytes(self, fields: Tensor) -> Tensor:
        return _swap_bytes(self.pack(fields).reshape(-1))

    def unpack_bytes(self, stream: Tensor, rows: int) -> Tensor:
        return self.unpack(_words_from_bytes(stream, rows * self.words).view(rows, self.words))

    def unpack(self, words: Tensor) -> Tensor:
        """Inverse of :meth:`pack`: (r, words) int64 words -> (r, period) field values."""
        rows = words.shape[0]
        heads = words.gather(1, self.word.expand(rows, -1))
        heads.bitwise_right_shift_(self.lift).bitwise_and_(self.head_mask).bitwise_left_shift_(self.spill)
        tails = words.gather(1, self.next_word.expand(rows, -1))
        tails.bitwise_right_shift_(self.tail_shift).bitwise_and_(self.low_mask)
        return heads.bitwise_or_(tails)


class _ByteGroups:
    """The short cut when k = 8 / gcd(w, 8) fields (a whole number of bytes) fit one int64: each
    group of k fields is one shift-and-sum, then its k w / 8 low bytes, most significant first."""

    def __init__(self, width: int, device: torch.device):
        self.width, self.period = width, 8 // math.gcd(width, 8)
        self.period_bytes = self.period * width // 8
        self.shifts = torch.tensor(
            [(self.period - 1 - j) * width for j in range(self.period)], dtype=torch.int64, device=device
        )
        self.byte_shifts = torch.tensor(
            [8 * (self.period_bytes - 1 - b) for b in range(self.period_bytes)], dtype=torch.int64, device=device
        )

    @staticmethod
    def fits(width: int) -> bool:
        return 8 // math.gcd(width, 8) * width <= 62

    def pack_bytes(self, fields: Tensor) -> Tensor:
        groups = fields.bitwise_left_shift(self.shifts).sum(1)  # disjoint bits: the sum is the or
        return _swap_bytes(groups).view(-1, 8)[:, 8 - self.period_bytes :].reshape(-1)

    def unpack_bytes(self, stream: Tensor, rows: int) -> Tensor:
        if stream.numel() != rows * self.period_bytes:
            stream = torch.cat([stream, stream.new_zeros(rows * self.period_bytes - stream.numel())])
        groups = stream.view(rows, self.period_bytes).long().bitwise_left_shift_(self.byte_shifts).sum(1)
        return groups.unsqueeze(1).bitwise_right_shift(self.shifts).bitwise_and_((1 << self.width) - 1)


def _layout(width: int, device: torch.device) -> _FieldLayout | _ByteGroups:
    return _ByteGroups(width, device) if _ByteGroups.fits(width) else _FieldLayout(width, device)


def pack_uint(values: Tensor, width: int) -> Tensor:
    """Write non-negative integers < 2**width in ``width`` bits each, most significant bit first,
    back to back, packed into ceil(count * width / 8) uint8 (the last byte zero-padded).

    ``width`` is 0..62; width 0 sends nothing (every value must then be 0). Works through chunks
    of about 2^20 values, each with one op per field position of a word period (at most 64),
    never one per element.
    """
    _check_width(width)
    values = values.reshape(-1).long()
    n = values.numel()
    if n:
        low, high = (int(v) for v in torch.aminmax(values))
        if low < 0 or high >= 1 << width:
            raise ValueError(f"values must lie in [0, 2**{width}), but span [{low}, {high}].")
    out = torch.empty(-(-n * width // 8), dtype=torch.uint8, device=values.device)
    if width == 0:
        return out
    layout = _layout(width, values.device)
    period, step = layout.period, _chunk_values(layout.period)
    for start in range(0, n, step):
        part = values[start : start + step]
        rows = -(-part.numel() // period)
        if part.numel() != rows * period:
            part = torch.cat([part, part.new_zeros(rows * period - part.numel())])
        packed = layout.pack_bytes(part.view(rows, period))
        begin = start * width // 8
        dest = out[begin : begin + packed.numel()]
        dest.copy_(packed[: dest.numel()])
    return out


def unpack_uint(packed: Tensor, width: int, count: int) -> Tensor:
    """Inverse of :func:`pack_uint`: ``count`` int64 values of ``width`` bits each."""
    _check_width(width)
    if packed.numel() != -(-count * width // 8):
        raise ValueError(
            f"{count} values of {width} bits take {-(-count * width // 8)} bytes, but {packed.numel()} were given."
        )
    if width == 0 or count == 0:
        return torch.zeros(count, dtype=torch.int64, device=packed.device)
    packed = packed.reshape(-1)
    layout = _layout(width, packed.device)
    period, step = layout.period, _chunk_values(layout.period)
    out = torch.empty(count, dtype=torch.int64, device=packed.device)
    for start in range(0, count, step):
        n = min(step, count - start)
        rows = -(-n // period)
        begin = start * width // 8
        stream = packed[begin : begin + rows * layout.period_bytes]
        out[start : start + n] = layout.unpack_bytes(stream, rows).reshape(-1)[:n]
    return out
