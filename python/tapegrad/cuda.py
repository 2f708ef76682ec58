"""tapegrad.cuda: what the GPU side offers in this build."""
from ._C import _cuda


def is_available():
    """True when tapegrad was built with CUDA and a GPU is present."""
    return _cuda.is_available()


def is_built():
    return _cuda.is_built()


def device_count():
    return _cuda.device_count()


def synchronize():
    _cuda.synchronize()
