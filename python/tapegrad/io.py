"""Checkpoints in the safetensors format: ``save(state, path)`` / ``load(path)``.

Why safetensors: the file is plain tensor bytes plus a JSON header, so loading it never
runs code (unlike pickle) and other tools (PyTorch, JAX, the ``safetensors`` CLI) can read a
tapegrad model's weights directly.

What tapegrad adds on top of the plain format:
- Nested state (an optimizer's ``{"state": {0: {...}}, "param_groups": [...]}``): tensor
  leaves are stored under dotted keys (``state.0.exp_avg``) and the rest of the structure
  (dicts with int or str keys, lists, tuples, numbers, strings, None) as JSON in the header
  metadata, so ``load`` gives back the same structure.
- Atomic writes: the bytes go to a temporary file in the target directory, are fsynced and
  then renamed over the target, so a crash never leaves a half-written checkpoint in place.
- Verification: a SHA-256 over every tensor (key, dtype, shape, bytes) and all metadata is
  stored in the header and checked on load; a truncated or corrupted file raises ValueError
  naming the path, and nothing is returned.

The format is read and written by ``_safetensors`` (no ``safetensors`` package needed; NumPy
stays tapegrad's only runtime dependency). bfloat16 tensors are stored as safetensors ``BF16``,
bit for bit, which PyTorch's ``safetensors.torch`` reads as ``torch.bfloat16``.
"""
import hashlib
import json
import numbers
import os
import tempfile

import numpy as np

from . import _safetensors
from ._C import Tensor, from_numpy
from ._C import dtype as _dtype

_bfloat16 = _dtype.bfloat16

_FORMAT = "tapegrad"
_PREFIX = "tapegrad."
_STRUCTURE_KEY = _PREFIX + "structure"
_USER_METADATA_KEY = _PREFIX + "user_metadata"
_CHECKSUM_KEY = _PREFIX + "sha256"
# What a tapegrad checkpoint holds: safetensors dtype name -> NumPy dtype of the stored array
# (BF16 as its uint16 bit patterns).
_HELD = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8"), "F16": np.dtype("<f2"), "I64": np.dtype("<i8"),
         "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("<i1"), "U8": np.dtype("<u1"),
         "BOOL": np.dtype(np.bool_), "BF16": np.dtype("<u2")}
_HELD_NAMES = "float16, bfloat16, float32, float64, uint8, int8, int16, int32, int64 and bool"


def _bfloat16_bits(t):
    """The uint16 bit patterns of a bfloat16 tensor: its float32 values are exact, and a
    bfloat16 is the top half of its float32."""
    return (t.detach().float().cpu().numpy().view(np.uint32) >> 16).astype(np.uint16)


def _bfloat16_from_bits(bits):
    """The bfloat16 tensor of uint16 bit patterns (float32 -> bfloat16 is exact for these)."""
    words = np.array(bits, dtype=np.uint32, order="C")  # an array even for 0-d (NumPy ops give scalars)
    words <<= 16
    return from_numpy(words.view(np.float32)).to(_bfloat16)


# --- nested state <-> (flat tensors, JSON structure) ---------------------------------------

def _leaf_array(value, key):
    """A tensor leaf as (safetensors dtype name, contiguous little-endian CPU array) to store."""
    if isinstance(value, Tensor):
        if value.dtype == _bfloat16:
            return "BF16", _bfloat16_bits(value)
        value = value.detach().cpu().numpy()
    array = np.ascontiguousarray(value) if value.ndim else np.array(value)
    if not array.dtype.isnative:  # e.g. big-endian input: safetensors stores little-endian
        array = array.astype(array.dtype.newbyteorder("="))
    name = _safetensors.dtype_name(array.dtype)
    if name not in _HELD:
        raise TypeError(f"save: {key!r} has dtype {array.dtype}; tapegrad checkpoints hold {_HELD_NAMES}")
    return name, array


def _flatten(value, path, tensors):
    """The JSON node for ``value``; tensor leaves are moved into ``tensors`` under a dotted key.

    Nodes are tagged one-key objects so that dict keys keep their type (the optimizer's int
    parameter ids come back as ints) and tuples stay tuples.
    """
    if isinstance(value, (Tensor, np.ndarray)):
        key, n = path or "tensor", 1
        while key in tensors:  # e.g. {"a.b": t, "a": {"b": t}}: keep both, distinctly named
            n += 1
            key = f"{path}~{n}"
        tensors[key] = _leaf_array(value, key)
        return {"tensor": key}
    child = (lambda k: f"{path}.{k}" if path else str(k))
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                raise TypeError(f"save: dict keys must be str or int, got {k!r} at {path or 'top level'!r}")
            items.append([k, _flatten(v, child(k), tensors)])
        return {"dict": items}
    if isinstance(value, (list, tuple)):
        nodes = [_flatten(v, child(i), tensors) for i, v in enumerate(value)]
        return {"tuple" if isinstance(value, tuple) else "list": nodes}
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, str)):
        return {"value": value}
    if isinstance(value, numbers.Integral):
        return {"value": int(value)}
    if isinstance(value, numbers.Real):
        return {"value": float(value)}
    raise TypeError(f"save: cannot store a {type(value).__name__} at {path or 'top level'!r}; "
                    "use tensors, arrays, dicts, lists, tuples, numbers, strings or None")


def _unflatten(node, tensors):
    """Rebuild the value described by ``node`` (the inverse of ``_flatten``)."""
    (tag, body), = node.items()
    if tag == "tensor":
        return tensors[body]
    if tag == "dict":
        return {k: _unflatten(v, tensors) for k, v in body}
    if tag == "list":
        return [_unflatten(v, tensors) for v in body]
    if tag == "tuple":
        return tuple(_unflatten(v, tensors) for v in body)
    if tag == "value":
        return body
    raise ValueError(f"unknown node {tag!r}")


# --- checksum ------------------------------------------------------------------------------

def _checksum(tensors, metadata):
    """SHA-256 over every tensor's key, dtype, shape and bytes and over the metadata (minus the
    checksum itself), in sorted order so it does not depend on dict or file order. (The dtype is
    NumPy's name for the stored array, "bf16" for BF16: the checksums of files written before
    BF16 existed stay valid.)"""
    digest = hashlib.sha256()
    for key in sorted(tensors):
        name, array = tensors[key]
        array = np.ascontiguousarray(array)
        header = json.dumps([key, "bf16" if name == "BF16" else array.dtype.str, list(array.shape)])
        digest.update(header.encode() + b"\0")
        digest.update(array.tobytes())
    digest.update(json.dumps(sorted((k, v) for k, v in metadata.items() if k != _CHECKSUM_KEY)).encode())
    return digest.hexdigest()


# --- writing -------------------------------------------------------------------------------

def _file_mode(path):
    """Permissions for the new file: those of the file it replaces, else rw-r--r--."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o644


def _remove_orphaned_temporaries(directory, prefix):
    """Deletes the temporaries of saves to the same path whose process is gone (killed mid-write:
    SIGKILL runs no cleanup). Their names carry the writer's pid; a live writer's are left alone."""
    if os.name != "posix":  # os.kill(pid, 0) is a probe on POSIX only (on Windows it would kill)
        return
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        parts = name[len(prefix):].split(".")
        if not (name.startswith(prefix) and name.endswith(".tmp") and len(parts) == 3 and parts[0].isdigit()):
            continue
        pid = int(parts[0])
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)  # signal 0: does the process exist?
            continue
        except ProcessLookupError:
            pass
        except (PermissionError, OSError):
            continue  # exists (another user's), or cannot tell: leave it
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:
            pass


def _write_atomically(path, data):
    """Write ``data`` to ``path`` via a same-directory temporary file, fsync and rename, so the
    target is either the old file or the complete new one; the temporary never survives."""
    directory = os.path.dirname(os.path.abspath(path))
    prefix = "." + os.path.basename(path) + "."
    _remove_orphaned_temporaries(directory, prefix)
    fd, tmp_path = tempfile.mkstemp(prefix=f"{prefix}{os.getpid()}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):  # POSIX; mkstemp makes 0600 files
                os.fchmod(f.fileno(), _file_mode(path))
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        try:
            os.unlink(tmp_path)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable; not possible on every OS / filesystem
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def save(state_dict, path, metadata=None):
    """Write ``state_dict`` (tensors, NumPy arrays, possibly nested in dicts/lists/tuples with
    plain Python values) to ``path`` in the safetensors format, atomically.

    ``metadata`` is an optional dict of str -> str stored in the header; read it back with
    ``load_metadata``.
    """
    path = os.fspath(path)
    if metadata is not None and not (isinstance(metadata, dict) and
                                     all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
        raise TypeError("save: metadata must be a dict of str -> str")
    tensors = {}
    structure = _flatten(state_dict, "", tensors)
    header = {"format": _FORMAT, _STRUCTURE_KEY: json.dumps(structure)}
    if metadata:
        header[_USER_METADATA_KEY] = json.dumps(metadata, sort_keys=True)
    header[_CHECKSUM_KEY] = _checksum(tensors, header)
    _write_atomically(path, _safetensors.dumps(tensors, header))


# --- reading -------------------------------------------------------------------------------

def _read_verified(path):
    """(tensors, header metadata) of the checkpoint at ``path``, after every check passed;
    tensors maps key -> (safetensors dtype name, array)."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    try:
        tensors, header = _safetensors.loads(data)
    except ValueError as e:
        raise ValueError(f"load: {path!r} is not a valid safetensors checkpoint (truncated or corrupted?): {e}") from e
    if any(k.startswith(_PREFIX) for k in header) or header.get("format") == _FORMAT:
        expected = header.get(_CHECKSUM_KEY)
        if expected is None or _STRUCTURE_KEY not in header:
            raise ValueError(f"load: {path!r} is a damaged tapegrad checkpoint: its checksum or "
                             "structure entry is missing")
        if _checksum(tensors, header) != expected:
            raise ValueError(f"load: {path!r} failed its SHA-256 check: the file is corrupted")
    return tensors, header


def _to_tensor(name, array, key):
    if name not in _HELD:
        raise TypeError(f"load: {key!r} has safetensors dtype {name}, which tapegrad cannot hold ({_HELD_NAMES})")
    if name == "BF16":
        return _bfloat16_from_bits(array)
    # from_numpy keeps 0-d shapes; the copy gives the tensor memory of its own.
    return from_numpy(np.array(array, dtype=array.dtype.newbyteorder("="), copy=True, order="C"))


def load(path):
    """Read a checkpoint written by ``save`` and return the saved structure with tapegrad
    tensors in it (a dict of tensors for a plain ``state_dict``).

    Other safetensors files (no tapegrad header) load as a flat dict of tensors, checked only
    by safetensors' own header validation. Raises ValueError naming ``path`` if the file is
    truncated, corrupted or fails its checksum.
    """
    stored, header = _read_verified(path)
    tensors = {key: _to_tensor(name, array, key) for key, (name, array) in stored.items()}
    if _STRUCTURE_KEY not in header:
        return tensors
    try:
        return _unflatten(json.loads(header[_STRUCTURE_KEY]), tensors)
    except (ValueError, KeyError, TypeError) as e:  # checksum passed, so written by another tool
        raise ValueError(f"load: {os.fspath(path)!r} has an unreadable tapegrad structure entry: {e}") from e


def load_metadata(path):
    """The ``metadata`` dict given to ``save`` (empty if none), after the same verification."""
    _, header = _read_verified(path)
    if _USER_METADATA_KEY in header:
        return json.loads(header[_USER_METADATA_KEY])
    return {k: v for k, v in header.items() if k != "format" and not k.startswith(_PREFIX)}
