"""Reading and writing IDX files (the format of the original MNIST distribution).

An IDX file is: two zero bytes, a dtype code byte (0x08 = unsigned byte, the only one
supported here), a byte giving the number of dimensions ``ndim``, then ``ndim`` big-endian
uint32 sizes, then the data in C order. MNIST images are 0x00000803 (uint8, 3-D), labels
0x00000801 (uint8, 1-D). Files are transparently gunzipped when the name ends in ``.gz`` or
the content starts with the gzip magic bytes 1f 8b.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from compress_train.datasets.errors import DataFileError

_GZIP_MAGIC = b"\x1f\x8b"
_UINT8 = 0x08
_KIND = {3: "image", 1: "label"}


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataFileError(f"{path}: cannot read file ({e.strerror or e})") from e
    if path.name.endswith(".gz") or raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, ValueError, zlib.error) as e:  # BadGzipFile is an OSError
            reason = str(e).removeprefix("Error -3 while decompressing data: ") or type(e).__name__
            raise DataFileError(
                f"{path}: corrupt gzip data ({reason}): the file is damaged or "
                "truncated; replace it (e.g. download it again)"
            ) from e
    return raw


def read_idx(path: Path | str, ndim: int | None = None) -> np.ndarray:
    """Read an IDX uint8 file into a numpy array of the shape its header declares.

    ``ndim``, when given, is the number of dimensions the caller expects (3 for an image file,
    1 for a label file); a file whose magic number says otherwise is rejected. Raises
    ``DataFileError`` naming ``path`` for damaged gzip data (a broken deflate stream, a CRC or
    length mismatch, a cut-off file), a wrong magic number, a truncated file or trailing bytes
    beyond the declared size.
    """
    path = Path(path)
    data = _read_bytes(path)
    if ndim is not None:
        expected = f"0x{0x0800 | ndim:08X} for an IDX uint8 {_KIND.get(ndim, f'{ndim}-D')} file"
    else:
        expected = "0x000008NN for an IDX uint8 file"
    if len(data) < 4:
        raise DataFileError(f"{path}: file too short for an IDX header ({len(data)} bytes)")
    magic = struct.unpack(">I", data[:4])[0]
    file_ndim = data[3]
    if data[0] != 0 or data[1] != 0 or data[2] != _UINT8 or file_ndim == 0 or (ndim is not None and file_ndim != ndim):
        raise DataFileError(f"{path}: wrong magic number 0x{magic:08X} (expected {expected})")
    header_len = 4 + 4 * file_ndim
    if len(data) < header_len:
        raise DataFileError(f"{path}: truncated: header needs {header_len} bytes, file holds {len(data)}")
    dims = struct.unpack(f">{file_ndim}I", data[4:header_len])
    n_bytes = math.prod(dims)  # Python ints: a damaged header cannot overflow the check below
    held = len(data) - header_len
    if held < n_bytes:
        raise DataFileError(f"{path}: truncated: header says {n_bytes} bytes of data, file holds {held}")
    if held > n_bytes:
        raise DataFileError(
            f"{path}: {held - n_bytes} unexpected trailing bytes after the {n_bytes} bytes of data the header declares"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(dims).copy()


def write_idx(path: Path | str, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file; gzip-compressed when ``path`` ends in ``.gz``."""
    path = Path(path)
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"{path}: write_idx supports uint8 arrays only, got {array.dtype}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"{path}: write_idx needs 1 to 255 dimensions, got {array.ndim}")
    header = bytes([0, 0, _UINT8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array).tobytes()
    if path.name.endswith(".gz"):
        payload = gzip.compress(payload)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(payload)
    tmp.replace(path)
