"""The CUDA device: builds and machines without a GPU (clear errors, never a crash), device
strings, transfers, the caching allocator, errors raised at the op or at the next wait, the sync
debug switch, and the same random numbers on both devices. The ops themselves are checked on the
device by the op table's CUDA columns (tests/test_ops_forward.py, test_ops_grad.py, test_bfloat16.py)."""

import numpy as np
import pytest

import tapegrad as tg

HAS_GPU = tg.cuda.is_available()
gpu = pytest.mark.skipif(not HAS_GPU, reason="no CUDA GPU available")


# ---- without a GPU: clear errors, never a crash ----------------------------------------------

@pytest.mark.skipif(HAS_GPU, reason="checks the no-GPU behaviour")
def test_cuda_tensor_without_gpu_raises_runtime_error():
    for make in (lambda: tg.zeros(2, device="cuda"), lambda: tg.tensor([1.0, 2.0], device="cuda"),
                 lambda: tg.ones(3).cuda(), lambda: tg.ones(3).to("cuda:0"), lambda: tg.randn(2, device="cuda")):
        with pytest.raises(RuntimeError, match="CUDA|cuda"):
            make()


@pytest.mark.skipif(HAS_GPU, reason="checks the no-GPU behaviour")
def test_memory_stats_without_gpu_are_zero():
    assert tg.cuda.memory_allocated() == 0
    assert tg.cuda.max_memory_allocated() == 0
    assert tg.cuda.memory_reserved() == 0
    tg.cuda.reset_peak_memory_stats()
    tg.cuda.empty_cache()
    assert tg.cuda.device_count() == 0


def test_out_of_memory_error_is_a_runtime_error():
    assert issubclass(tg.cuda.OutOfMemoryError, RuntimeError)
    assert tg.cuda.OutOfMemoryError.__name__ == "OutOfMemoryError"


def test_matmul_switches():
    assert tg.cuda.matmul_backend() in ("own", "cublas")
    with pytest.raises(ValueError, match="set_matmul_backend"):
        tg.cuda.set_matmul_backend("fast")
    tg.cuda.set_matmul_backend("own")
    assert tg.cuda.matmul_backend() == "own"
    if not tg.cuda.cublas_built():
        with pytest.raises(RuntimeError):
            tg.cuda.set_matmul_backend("cublas")
    previous = tg.cuda.allow_tf32()
    assert tg.cuda.allow_tf32(False) is False
    tg.cuda.allow_tf32(previous)


def test_bad_device_string_raises_value_error():
    with pytest.raises(ValueError, match="device"):
        tg.zeros(2, device="cuda:x")
    with pytest.raises(ValueError, match="device"):
        tg.zeros(2, device="tpu")


def test_to_cpu_on_cpu_is_the_same_tensor():
    t = tg.ones(3)
    assert t.to("cpu") is t or t.to("cpu").data_ptr() == t.data_ptr()
    assert str(t.device) == "cpu" and not t.is_cuda


# ---- transfers -------------------------------------------------------------------------------

@gpu
@pytest.mark.parametrize("dtype", [tg.float32, tg.float64, tg.int64, tg.bool])
def test_round_trip_keeps_values(dtype):
    a = (np.arange(24).reshape(2, 3, 4) % 5).astype({tg.float32: np.float32, tg.float64: np.float64,
                                                    tg.int64: np.int64, tg.bool: np.bool_}[dtype])
    t = tg.tensor(a, device="cuda")
    assert t.is_cuda and str(t.device) == "cuda:0" and t.dtype == dtype
    np.testing.assert_array_equal(t.cpu().numpy(), a)
    np.testing.assert_array_equal(t.numpy(), a)  # a host copy
    assert t.tolist() == a.tolist()


@gpu
def test_non_contiguous_transfer():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = tg.tensor(a).T.cuda()
    np.testing.assert_array_equal(t.cpu().numpy(), a.T)
    d = tg.tensor(a, device="cuda")[:, ::2]
    np.testing.assert_array_equal(d.cpu().numpy(), a[:, ::2])


@gpu
def test_item_and_printing():
    t = tg.tensor([1.5, 2.5], device="cuda")
    assert t.sum().item() == 4.0
    assert float(t[0]) == 1.5
    assert "device='cuda:0'" in repr(t)


@gpu
@pytest.mark.parametrize("make", [
    lambda d: tg.zeros(2, 3, device=d), lambda d: tg.ones(4, device=d), lambda d: tg.full((2,), 7, device=d),
    lambda d: tg.arange(0, 10, 3, device=d), lambda d: tg.linspace(0, 1, 5, device=d), lambda d: tg.eye(3, device=d),
    lambda d: tg.tensor([[1, 2], [3, 4]], device=d), lambda d: tg.empty(3, device=d).shape,
])
def test_creation_on_cuda_matches_cpu(make):
    on_gpu, on_cpu = make("cuda"), make("cpu")
    if isinstance(on_cpu, tuple):
        assert on_gpu == on_cpu
        return
    assert on_gpu.is_cuda and on_gpu.dtype == on_cpu.dtype
    np.testing.assert_array_equal(on_gpu.cpu().numpy(), on_cpu.numpy())


@gpu
def test_to_is_differentiable():
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x.to("cuda") * 2.0
    (y * y).sum().backward()
    assert x.grad is not None and not x.grad.is_cuda
    np.testing.assert_allclose(x.grad.numpy(), [8.0, 16.0, 24.0])


# ---- allocator -------------------------------------------------------------------------------

@gpu
def test_memory_allocated_goes_up_and_back_down():
    tg.cuda.synchronize()
    before = tg.cuda.memory_allocated()
    t = tg.empty(1 << 20, device="cuda")  # 4 MiB: a 2 MiB-class block
    assert tg.cuda.memory_allocated() >= before + (4 << 20)
    assert tg.cuda.max_memory_allocated() >= tg.cuda.memory_allocated()
    del t
    assert tg.cuda.memory_allocated() == before
    assert tg.cuda.memory_reserved() >= before + (4 << 20)  # cached, not returned
    tg.cuda.empty_cache()
    assert tg.cuda.memory_reserved() == tg.cuda.memory_allocated()


@gpu
def test_blocks_are_reused():
    a = tg.empty(1000, device="cuda")
    ptr = a.data_ptr()
    del a
    b = tg.empty(1000, device="cuda")
    assert b.data_ptr() == ptr


@gpu
def test_reset_peak():
    t = tg.empty(1 << 21, device="cuda")
    del t
    tg.cuda.reset_peak_memory_stats()
    assert tg.cuda.max_memory_allocated() == tg.cuda.memory_allocated()


@gpu
def test_out_of_memory_raises_and_allocator_stays_usable():
    with pytest.raises(tg.cuda.OutOfMemoryError, match="out of memory"):
        tg.empty(2 ** 47, dtype=tg.float64, device="cuda")  # 2**50 bytes
    with pytest.raises(RuntimeError):
        tg.empty(2 ** 47, dtype=tg.float64, device="cuda")
    x = tg.ones(1000, device="cuda")
    assert x.sum().item() == 1000.0


# ---- errors ----------------------------------------------------------------------------------

@gpu
@pytest.mark.parametrize("op", [lambda a, b: a + b, lambda a, b: a @ b, lambda a, b: tg.where(a > 0, a, b),
                                lambda a, b: tg.cat([a, b])])
def test_mixed_devices_raise(op):
    a = tg.ones(2, 2, device="cuda")
    b = tg.ones(2, 2)
    with pytest.raises(RuntimeError, match="cpu.*cuda|cuda.*cpu"):
        op(a, b)


@gpu
def test_zero_dim_cpu_tensor_with_cuda_tensor_raises_but_python_scalars_work():
    a = tg.ones(3, device="cuda")
    with pytest.raises(RuntimeError, match="device"):
        a + tg.tensor(2.0)
    np.testing.assert_array_equal((a * 2 + 1).cpu().numpy(), [3.0, 3.0, 3.0])
    np.testing.assert_array_equal((2 - a).cpu().numpy(), [1.0, 1.0, 1.0])


@gpu
def test_out_of_range_host_index_raises_index_error_at_the_op():
    x = tg.ones(4, 3, device="cuda")
    with pytest.raises(IndexError, match=r"index_select: index 7 is out of range for dim 0 with size 4"):
        tg.index_select(x, 0, tg.tensor([0, 7]))
    with pytest.raises(IndexError, match=r"index 5"):
        x[tg.tensor([5])]
    assert x.sum().item() == 12.0  # the context survived


# A bad index already on the GPU is found by the GPU: the op returns at once and the next wait of
# the host raises. Each case: the op, what the message names, then the device must stay usable.
DEVICE_INDEX_CASES = [
    ("index_select", lambda x: tg.index_select(x, 0, tg.tensor([0, 7], device="cuda")),
     r"index_select: index 7 is out of range for dim 0 with size 4"),
    ("negative", lambda x: tg.index_select(x, 1, tg.tensor([-4], device="cuda")),
     r"index_select: index -4 is out of range for dim 1 with size 3"),
    ("advanced_index", lambda x: x[tg.tensor([1, 4], device="cuda")], r"index: index 4 .*dim 0 with size 4"),
    ("gather", lambda x: x.gather(1, tg.tensor([[0], [3], [1], [2]], device="cuda")),
     r"gather: index 3 is out of range for dim 1 with size 3"),
    ("scatter_add", lambda x: x.scatter_add(0, tg.tensor([[9, 0, 0]], device="cuda"), tg.ones(1, 3, device="cuda")),
     r"scatter_add: index 9 .*size 4"),
    ("index_add", lambda x: tg.index_add(x, 0, tg.tensor([-5], device="cuda"), tg.ones(1, 3, device="cuda")),
     r"index_add: index -5 .*size 4"),
    ("embedding", lambda x: tg.nn.functional.embedding(tg.tensor([[1, 6]], device="cuda"), x),
     r"index 6 is out of range for dim 0 with size 4"),
    ("cross_entropy", lambda x: tg.nn.functional.cross_entropy(x, tg.tensor([0, 1, 3, -100], device="cuda")),
     r"cross_entropy: target 3 is out of range for 3 classes"),
]


@gpu
@pytest.mark.parametrize("op, pattern", [c[1:] for c in DEVICE_INDEX_CASES], ids=[c[0] for c in DEVICE_INDEX_CASES])
@pytest.mark.parametrize("wait", ["cpu", "item", "synchronize"])
def test_out_of_range_device_index_raises_at_the_next_wait(op, pattern, wait):
    x = tg.ones(4, 3, device="cuda")
    y = op(x)  # queued: nothing waited for the index
    with pytest.raises(IndexError, match=pattern + r".*found on the GPU"):
        {"cpu": lambda: y.cpu(), "item": lambda: y.sum().item(), "synchronize": tg.cuda.synchronize}[wait]()
    tg.cuda.synchronize()  # reported once, then cleared
    assert x.sum().item() == 12.0
    assert tg.index_select(x, 0, tg.tensor([3, -1], device="cuda")).sum().item() == 6.0


@gpu
def test_only_the_first_bad_device_index_is_reported():
    x = tg.ones(4, 3, device="cuda")
    tg.index_select(x, 0, tg.tensor([11], device="cuda"))
    tg.index_select(x, 0, tg.tensor([12], device="cuda"))
    with pytest.raises(IndexError, match="index 11 "):
        tg.cuda.synchronize()
    tg.cuda.synchronize()


def test_sync_debug_mode_switch():
    assert tg.cuda.get_sync_debug_mode() == 0
    with pytest.raises(ValueError, match="set_sync_debug_mode"):
        tg.cuda.set_sync_debug_mode("warn")
    tg.cuda.set_sync_debug_mode("error")
    try:
        assert tg.cuda.get_sync_debug_mode() == 2
        assert tg.ones(2).sum().item() == 2.0  # CPU tensors never wait
    finally:
        tg.cuda.set_sync_debug_mode(0)
    assert tg.cuda.get_sync_debug_mode() == 0


# ---- same random numbers on both devices -----------------------------------------------------

@gpu
@pytest.mark.parametrize("dtype", [tg.float32, tg.float64])
def test_rand_randn_identical_on_both_devices(dtype):
    for fn in (tg.rand, tg.randn):
        tg.manual_seed(1234)
        c = fn(1000, 3, dtype=dtype).numpy()
        tg.manual_seed(1234)
        g = fn(1000, 3, dtype=dtype, device="cuda").cpu().numpy()
        if fn is tg.rand:
            np.testing.assert_array_equal(g, c)
        else:  # Box-Muller in double: libm and the device's log/cos may differ in the last ulp
            np.testing.assert_allclose(g, c, rtol=1e-12 if dtype == tg.float64 else 1e-6, atol=1e-12)


@gpu
def test_randint_and_dropout_identical_on_both_devices():
    tg.manual_seed(7)
    c = tg.randint(0, 100, (5000,)).numpy()
    tg.manual_seed(7)
    g = tg.randint(0, 100, (5000,), device="cuda").cpu().numpy()
    np.testing.assert_array_equal(g, c)
    x = np.random.default_rng(0).standard_normal((64, 33)).astype(np.float32)
    tg.manual_seed(3)
    yc = tg.nn.functional.dropout(tg.tensor(x), 0.3, training=True).numpy()
    tg.manual_seed(3)
    yg = tg.nn.functional.dropout(tg.tensor(x, device="cuda"), 0.3, training=True).cpu().numpy()
    np.testing.assert_array_equal(yg == 0, yc == 0)
    np.testing.assert_allclose(yg, yc, rtol=1e-6)
