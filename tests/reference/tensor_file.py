# The Switchyard tensor file (SYTF), Python side: how the C++ tests hand weights and
# batches to the PyTorch oracle and get its results back. Same format as
# tensor_file.h; little endian:
#   b"SYTF", uint32 version=1, uint32 count, then per tensor:
#   uint32 name_len, name (utf-8), uint32 dtype (0=f32, 1=i32, 2=i64), uint32 ndim,
#   int64 dims[ndim], raw row-major data.
import struct

import numpy as np

MAGIC = b"SYTF"
VERSION = 1
_DTYPES = {0: np.dtype("<f4"), 1: np.dtype("<i4"), 2: np.dtype("<i8")}
_CODES = {np.dtype("float32"): 0, np.dtype("int32"): 1, np.dtype("int64"): 2}


class TensorFileError(ValueError):
    """The file is not a well-formed SYTF file."""


def read(path):
    """Returns {name: numpy array} in file order; raises TensorFileError on a bad file."""
    with open(path, "rb") as f:
        buf = f.read()
    pos = 0

    def take(n):
        nonlocal pos
        if n < 0 or pos + n > len(buf):
            raise TensorFileError(f"{path}: truncated at byte {pos} (wanted {n} more)")
        out = buf[pos:pos + n]
        pos += n
        return out

    if take(4) != MAGIC:
        raise TensorFileError(f"{path}: bad magic")
    version, count = struct.unpack("<II", take(8))
    if version != VERSION:
        raise TensorFileError(f"{path}: unsupported version {version}")
    tensors = {}
    for _ in range(count):
        (name_len,) = struct.unpack("<I", take(4))
        name = take(name_len).decode("utf-8")
        dtype_code, ndim = struct.unpack("<II", take(8))
        if dtype_code not in _DTYPES:
            raise TensorFileError(f"{path}: tensor {name!r} has unknown dtype {dtype_code}")
        dims = struct.unpack(f"<{ndim}q", take(8 * ndim))
        if any(d < 0 for d in dims):
            raise TensorFileError(f"{path}: tensor {name!r} has a negative dimension")
        if name in tensors:
            raise TensorFileError(f"{path}: tensor {name!r} appears twice")
        dtype = _DTYPES[dtype_code]
        size = int(np.prod(dims, dtype=np.int64)) if dims else 1
        data = take(size * dtype.itemsize)
        tensors[name] = np.frombuffer(data, dtype=dtype).reshape(dims).copy()
    if pos != len(buf):
        raise TensorFileError(f"{path}: {len(buf) - pos} trailing bytes")
    return tensors


def write(path, tensors):
    """Writes {name: array-like} (f32, i32 or i64; other floats become f32, ints i64)."""
    parts = [MAGIC, struct.pack("<II", VERSION, len(tensors))]
    for name, value in tensors.items():
        arr = np.asarray(value)
        if arr.dtype not in _CODES:
            arr = arr.astype(np.float32 if arr.dtype.kind == "f" else np.int64)
        arr = arr.astype(arr.dtype.newbyteorder("<"), order="C")  # keeps 0-d scalars 0-d
        encoded = name.encode("utf-8")
        parts.append(struct.pack("<I", len(encoded)) + encoded)
        parts.append(struct.pack("<II", _CODES[arr.dtype], arr.ndim))
        parts.append(struct.pack(f"<{arr.ndim}q", *arr.shape))
        parts.append(arr.tobytes())
    with open(path, "wb") as f:
        f.write(b"".join(parts))
