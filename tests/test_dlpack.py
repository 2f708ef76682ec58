"""DLPack: tensors handed to NumPy and PyTorch and taken back without copies (a write through one
is seen by the other), for contiguous and strided tensors of every dtype the consumer has."""
import numpy as np
import pytest

import tapegrad as tg

try:
    import torch
except ImportError:
    torch = None

NUMPY_DTYPES = [(tg.bool, np.bool_), (tg.uint8, np.uint8), (tg.int8, np.int8), (tg.int16, np.int16), (tg.int32, np.int32),
                (tg.int64, np.int64), (tg.float16, np.float16), (tg.float32, np.float32), (tg.float64, np.float64)]


def _strided(t):
    """A strided view of t: every other column of its transpose."""
    return t.T[:, ::2]


@pytest.mark.parametrize("dtype, np_dtype", NUMPY_DTYPES, ids=lambda v: str(v))
@pytest.mark.parametrize("view", [False, True], ids=["contiguous", "strided"])
def test_numpy_round_trip_shares_memory(dtype, np_dtype, view):
    base = tg.arange(24).reshape(4, 6).to(dtype)
    t = _strided(base) if view else base
    a = np.from_dlpack(t)
    assert a.dtype == np_dtype and a.shape == tuple(t.shape)
    np.testing.assert_array_equal(a, t.numpy())
    assert a.strides == tuple(s * t.dtype.itemsize for s in t.stride()) if hasattr(t, "stride") else True
    a[0, 1] = 1  # a write through NumPy is seen by the tensor
    assert t[0, 1].item() == 1
    back = tg.from_dlpack(a)  # and NumPy's array comes back to tapegrad without a copy
    assert back.dtype == dtype and tuple(back.shape) == tuple(t.shape)
    back[0, 0] = 0
    assert a[0, 0] == 0 and t[0, 0].item() == 0


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
@pytest.mark.parametrize("dtype", [d for d, _ in NUMPY_DTYPES] + [tg.bfloat16], ids=str)
@pytest.mark.parametrize("view", [False, True], ids=["contiguous", "strided"])
def test_torch_round_trip_shares_memory(dtype, view):
    base = tg.arange(24).reshape(4, 6).to(dtype)
    t = _strided(base) if view else base
    p = torch.from_dlpack(t)
    assert str(p.dtype).split(".")[-1] == str(dtype).split(".")[-1]
    assert tuple(p.stride()) == tuple(t.stride()) if hasattr(t, "stride") else True
    np.testing.assert_array_equal(p.float().numpy(), t.float().numpy())
    p[0, 1] = 1
    assert t[0, 1].item() == 1
    q = torch.arange(24).reshape(4, 6).to(p.dtype)
    q_view = q.T[:, ::2] if view else q
    back = tg.from_dlpack(q_view)
    assert back.dtype == dtype and tuple(back.shape) == tuple(q_view.shape)
    back[1, 0] = 0
    assert q_view[1, 0].item() == 0


def test_device_and_capsule_protocol():
    t = tg.ones(3)
    assert t.__dlpack_device__() == (1, 0)  # kDLCPU
    capsule = t.__dlpack__()
    u = tg.from_dlpack(capsule)  # a bare capsule is accepted once
    u[0] = 5
    assert t[0].item() == 5
    with pytest.raises(TypeError, match="from_dlpack"):
        tg.from_dlpack(capsule)  # consumed
    copied = tg.from_dlpack(t.__dlpack__(copy=True))
    copied[1] = 7
    assert t[1].item() == 1


def test_the_exported_tensor_outlives_the_original():
    a = np.from_dlpack(tg.arange(1000).float() * 2)  # the only reference to the tensor is NumPy's
    np.testing.assert_array_equal(a[:3], [0.0, 2.0, 4.0])


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
def test_unsupported_dtype_raises_type_error_naming_it():
    with pytest.raises(TypeError, match="from_dlpack: unsupported DLPack dtype complex64"):
        tg.from_dlpack(torch.zeros(2, dtype=torch.complex64))
    with pytest.raises(TypeError, match="from_dlpack: expected an object with __dlpack__"):
        tg.from_dlpack([1, 2])


# ---- CUDA tensors (a real GPU, or the emulated device of TAPEGRAD_CUDA=EMULATE builds) ----------

cuda = pytest.mark.skipif(not tg.cuda.is_available(), reason="no CUDA device")


@cuda
@pytest.mark.parametrize("dtype", [tg.bool, tg.int64, tg.float32, tg.float64, tg.bfloat16], ids=str)
@pytest.mark.parametrize("view", [False, True], ids=["contiguous", "strided"])
def test_cuda_round_trip_shares_memory(dtype, view):
    base = tg.arange(24, device="cuda").reshape(4, 6).to(dtype)
    t = _strided(base) if view else base
    assert t.__dlpack_device__() == (2, 0)  # kDLCUDA, device 0
    u = tg.from_dlpack(t)
    assert u.device == t.device and u.dtype == dtype and tuple(u.shape) == tuple(t.shape)
    assert tuple(u.stride()) == tuple(t.stride())
    u[0, 1] = 1
    assert t[0, 1].item() == 1
    np.testing.assert_array_equal(u.cpu().float().numpy(), t.cpu().float().numpy())


@cuda
def test_cuda_tensor_to_a_cpu_consumer_is_refused_by_it():
    t = tg.ones(3, device="cuda")
    with pytest.raises((RuntimeError, BufferError, TypeError, ValueError)):
        np.from_dlpack(t)  # NumPy takes CPU memory only: it reads the device and declines


@cuda
@pytest.mark.skipif(torch is None or not torch.cuda.is_available(), reason="PyTorch with CUDA is not installed")
def test_cuda_torch_round_trip_shares_memory():
    t = tg.arange(12, device="cuda").float().reshape(3, 4)
    p = torch.from_dlpack(t)
    assert p.is_cuda
    p[0, 1] = 5
    assert t[0, 1].item() == 5
    back = tg.from_dlpack(p.T)
    back[2, 0] = -1
    assert p[0, 2].item() == -1
