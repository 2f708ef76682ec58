"""tapegrad.cuda: what the GPU side offers in this build.

All of tapegrad's work on a device is queued on one stream; the host waits only where it needs a
value (.item(), .numpy(), .tolist(), printing, copies to the CPU) or when synchronize() is called.
Indices already on the GPU are checked there: an out-of-range one raises IndexError at the next
such wait (naming the op, the index and the size), not at the op, and the device stays usable.
Device memory comes from a caching allocator: freed blocks are kept for reuse (sizes rounded to
512 B, or 2 MiB above 1 MiB) until empty_cache(). Without a GPU, or in a build without CUDA, the
memory statistics are 0 and empty_cache() does nothing; creating a CUDA tensor raises RuntimeError.
"""
from ._C import _cuda

OutOfMemoryError = _cuda.OutOfMemoryError
OutOfMemoryError.__doc__ = "Raised when the device has no memory left even after the allocator's cache was freed."


def _index(device):
    if device is None:
        return 0
    if isinstance(device, int):
        return device
    d = str(device)
    if d == "cuda":
        return 0
    if d.startswith("cuda:"):
        return int(d[5:])
    raise ValueError(f"cuda: expected a CUDA device, got {device!r}")


def is_available():
    """True when tapegrad was built with CUDA and a GPU is present."""
    return _cuda.is_available()


def is_built():
    return _cuda.is_built()


def device_count():
    return _cuda.device_count()


def synchronize():
    """Waits until every queued kernel and copy has finished."""
    _cuda.synchronize()


_SYNC_MODES = {"default": 0, 0: 0, "error": 1, 2: 1}


def set_sync_debug_mode(debug_mode):
    """'error' (or 2, as in PyTorch) makes every wait of the host for a GPU raise RuntimeError
    (.item(), .numpy(), printing, copies to the CPU), so a test can show that a training step
    never stalls the stream; 'default' (or 0) allows them again. synchronize() always waits.
    PyTorch's 'warn' mode is not offered."""
    if debug_mode not in _SYNC_MODES:
        raise ValueError(f"cuda.set_sync_debug_mode: expected 'default', 'error', 0 or 2, got {debug_mode!r}")
    _cuda.set_sync_debug_mode(_SYNC_MODES[debug_mode])


def get_sync_debug_mode():
    """0 ('default') or 2 ('error'), PyTorch's numbering."""
    return 2 if _cuda.sync_debug_mode() else 0


def memory_allocated(device=None):
    """Bytes of device memory held by live tensors on `device`."""
    return _cuda.memory_allocated(_index(device))


def max_memory_allocated(device=None):
    """The peak of memory_allocated() since start-up or the last reset_peak_memory_stats()."""
    return _cuda.max_memory_allocated(_index(device))


def reset_peak_memory_stats(device=None):
    _cuda.reset_peak_memory_stats(_index(device))


def memory_reserved(device=None):
    """Bytes the allocator holds from the driver: allocated plus cached free blocks."""
    return _cuda.memory_reserved(_index(device))


def empty_cache():
    """Returns the cached free blocks to the driver (memory of live tensors is kept)."""
    _cuda.empty_cache()


def matmul_backend():
    """'cublas' or 'own': which kernels CUDA matmuls run. The default is cuBLAS when the build
    found it, else tapegrad's own tiled kernels; TAPEGRAD_CUDA_MATMUL=own|cublas sets the start."""
    return _cuda.matmul_backend()


def set_matmul_backend(name):
    """Switches CUDA matmuls to 'own' (tapegrad's kernels) or 'cublas' (raises where not built)."""
    _cuda.set_matmul_backend(name)


def cublas_built():
    return _cuda.cublas_built()


def allow_tf32(allow=None):
    """Float32 matmuls and fused attention on TF32 tensor cores (10-bit mantissa products,
    float32 sums), like torch.backends.cuda.matmul.allow_tf32; off by default. With an argument,
    sets it; returns the setting."""
    if allow is not None:
        _cuda.set_allow_tf32(bool(allow))
    return _cuda.allow_tf32()
