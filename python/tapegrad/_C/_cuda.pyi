"""
CUDA runtime queries
"""
from __future__ import annotations
from tapegrad.cuda import OutOfMemoryError
import typing
__all__: list[str] = ['OutOfMemoryError', 'allow_tf32', 'cublas_built', 'device_count', 'empty_cache', 'is_available', 'is_built', 'matmul_backend', 'max_memory_allocated', 'memory_allocated', 'memory_reserved', 'reset_peak_memory_stats', 'set_allow_tf32', 'set_matmul_backend', 'set_sync_debug_mode', 'sync_debug_mode', 'synchronize']
def allow_tf32() -> bool:
    ...
def cublas_built() -> bool:
    """
    Whether this build can run CUDA matmuls through cuBLAS.
    """
def device_count() -> int:
    ...
def empty_cache() -> None:
    """
    Returns every cached free block to the driver (tensors in use keep theirs).
    """
def is_available() -> bool:
    """
    Whether a CUDA GPU can be used.
    """
def is_built() -> bool:
    """
    Whether this build includes the CUDA backend.
    """
def matmul_backend() -> str:
    ...
def max_memory_allocated(device: typing.SupportsInt | typing.SupportsIndex = 0) -> int:
    """
    Peak of memory_allocated() since the start or the last reset_peak_memory_stats().
    """
def memory_allocated(device: typing.SupportsInt | typing.SupportsIndex = 0) -> int:
    """
    Bytes of device memory held by tensors (rounded up to the allocator's size classes).
    """
def memory_reserved(device: typing.SupportsInt | typing.SupportsIndex = 0) -> int:
    """
    Bytes held by the caching allocator: allocated plus cached free blocks.
    """
def reset_peak_memory_stats(device: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
    ...
def set_allow_tf32(arg0: bool) -> None:
    ...
def set_matmul_backend(arg0: str) -> None:
    ...
def set_sync_debug_mode(arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
    ...
def sync_debug_mode() -> int:
    ...
def synchronize() -> None:
    """
    Waits for all queued work on every device.
    """
