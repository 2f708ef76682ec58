"""The safetensors file format, read and written directly (https://github.com/huggingface/safetensors).

A file is three parts:

    8 bytes   N, the header's length (unsigned, little-endian)
    N bytes   a JSON object: {name: {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
              ..., "__metadata__": {str: str}}, padded with spaces
    the rest  the tensors' bytes, little-endian and C-ordered; offsets count from the start of this part

Doing it here rather than through the ``safetensors`` package keeps NumPy the only runtime
dependency and lets tapegrad store bfloat16, which NumPy (and so ``safetensors.numpy``) has no
type for. The reader checks everything the reference implementation checks (header size,
JSON, dtypes, shapes against byte counts, offsets that tile the data exactly) and raises
ValueError for any violation, so a damaged file can never be read as garbage.
"""
import json
import math
import struct

import numpy as np

# safetensors dtype name <-> the NumPy dtype holding its bytes. BF16 has no NumPy type: its
# 16-bit patterns travel as uint16 and the caller converts them.
_NUMPY_OF = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype("<u1"), "I8": np.dtype("<i1"),
    "U16": np.dtype("<u2"), "I16": np.dtype("<i2"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
    "U32": np.dtype("<u4"), "I32": np.dtype("<i4"), "F32": np.dtype("<f4"),
    "U64": np.dtype("<u8"), "I64": np.dtype("<i8"), "F64": np.dtype("<f8"),
}
_NAME_OF = {dtype: name for name, dtype in _NUMPY_OF.items() if name != "BF16"}
_MAX_HEADER = 100 * 1000 * 1000  # the reference reader's limit
_ALIGN = 8                       # header padded so the data starts 8-byte aligned


def dtype_name(dtype):
    """The safetensors name of a little-endian NumPy dtype, or None if the format has none."""
    return _NAME_OF.get(np.dtype(dtype))


def dumps(tensors, metadata=None):
    """The bytes of a safetensors file holding ``tensors``: a dict name -> (dtype name, C-contiguous
    little-endian array). Tensors are laid out in name order; ``metadata`` is a dict of str -> str."""
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        dtype, array = tensors[name]
        data = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + data.nbytes]}
        chunks.append(data)
        offset += data.nbytes
    if metadata:
        header["__metadata__"] = dict(metadata)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % _ALIGN)
    return b"".join([struct.pack("<Q", len(text)), text, *chunks])


def _fail(why):
    raise ValueError(f"not a valid safetensors file: {why}")


def loads(data):
    """(tensors, metadata) of the safetensors bytes ``data``: tensors maps name -> (dtype name,
    read-only NumPy array viewing ``data``; BF16 as uint16 patterns). ValueError if ``data`` is
    not a complete, consistent file."""
    data = memoryview(data)
    if len(data) < 8:
        _fail(f"{len(data)} bytes, shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if n > _MAX_HEADER or 8 + n > len(data):
        _fail(f"header length {n} does not fit in {len(data)} bytes")
    try:
        header = json.loads(bytes(data[8:8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        _fail(f"header is not JSON ({e})")
    if not isinstance(header, dict):
        _fail("header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        _fail("__metadata__ is not a map of strings")
    body = data[8 + n:]
    tensors, spans = {}, []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            _fail(f"entry {name!r} is not {{dtype, shape, data_offsets}}")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in _NUMPY_OF:
            _fail(f"entry {name!r} has unknown dtype {dtype!r}")
        ints = lambda xs: isinstance(xs, list) and all(type(x) is int and x >= 0 for x in xs)
        if not ints(shape) or not ints(offsets) or len(offsets) != 2 or offsets[0] > offsets[1]:
            _fail(f"entry {name!r} has a bad shape {shape!r} or data_offsets {offsets!r}")
        np_dtype = _NUMPY_OF[dtype]
        begin, end = offsets
        if end - begin != math.prod(shape) * np_dtype.itemsize:
            _fail(f"entry {name!r}: {end - begin} bytes for shape {shape} of {dtype}")
        spans.append((begin, end, name))
        array = np.frombuffer(body[begin:end], dtype=np_dtype) if end <= len(body) else None
        tensors[name] = (dtype, array.reshape(shape) if array is not None else None)
    # The tensors must tile the data exactly: no gaps, no overlaps, nothing after the last.
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            _fail(f"entry {name!r} starts at byte {begin}, expected {position}")
        position = end
    if position != len(body):
        _fail(f"the tensors cover {position} data bytes, the file holds {len(body)}")
    return tensors, metadata
