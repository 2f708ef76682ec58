"""The CUDA backend: transfers, the caching allocator, errors, same random numbers on both
devices, kernels against the CPU, optimizers. Tests that need a GPU skip cleanly without one;
the ones at the top check the behaviour of builds (or machines) without a GPU."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tapegrad as tg

HAS_GPU = tg.cuda.is_available()
gpu = pytest.mark.skipif(not HAS_GPU, reason="no CUDA GPU available")


# ---- without a GPU: clear errors, never a crash ----------------------------------------------------

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


@gpu
@pytest.mark.parametrize("backend", ["own", "cublas"])
@pytest.mark.parametrize("tf32", [False, True])
def test_matmul_backends_match_cpu(backend, tf32):
    if backend == "cublas" and not tg.cuda.cublas_built():
        pytest.skip("this build has no cuBLAS")
    previous = tg.cuda.matmul_backend(), tg.cuda.allow_tf32()
    tg.cuda.set_matmul_backend(backend)
    tg.cuda.allow_tf32(tf32)
    try:
        rng = np.random.default_rng(0)
        for (m, k, n) in [(1, 1, 1), (33, 17, 65), (128, 256, 64), (300, 200, 129)]:
            a = rng.standard_normal((m, k)).astype(np.float32)
            b = rng.standard_normal((k, n)).astype(np.float32)
            got = (tg.tensor(a, device="cuda") @ tg.tensor(b, device="cuda")).numpy()
            tol = 2e-2 if tf32 else 1e-4  # TF32 products keep 10 mantissa bits
            np.testing.assert_allclose(got, a.astype(np.float64) @ b, rtol=tol, atol=tol * np.sqrt(k))
            # (a b)^T = b^T a^T with both operands transposed views (the other stride layouts)
            got_t = (tg.tensor(b, device="cuda").T @ tg.tensor(a, device="cuda").T).numpy()
            np.testing.assert_allclose(got_t, (a.astype(np.float64) @ b).T, rtol=tol, atol=tol * np.sqrt(k))
    finally:
        tg.cuda.set_matmul_backend(previous[0])
        tg.cuda.allow_tf32(previous[1])


def test_bad_device_string_raises_value_error():
    with pytest.raises(ValueError, match="device"):
        tg.zeros(2, device="cuda:x")
    with pytest.raises(ValueError, match="device"):
        tg.zeros(2, device="tpu")


def test_to_cpu_on_cpu_is_the_same_tensor():
    t = tg.ones(3)
    assert t.to("cpu") is t or t.to("cpu").data_ptr() == t.data_ptr()
    assert str(t.device) == "cpu" and not t.is_cuda


# ---- transfers ---------------------------------------------------------------------------------

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


# ---- allocator -----------------------------------------------------------------------------------

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


# ---- errors --------------------------------------------------------------------------------------

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


@gpu
def test_device_targets_cross_entropy_matches_cpu_with_ignored_rows():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((6, 5)).astype(np.float32)
    target = np.array([0, 4, -100, 2, -100, 1])
    for reduction in ("mean", "sum", "none"):
        outs = []
        for device in ("cpu", "cuda"):
            x = tg.tensor(logits, device=device, requires_grad=True)
            loss = tg.nn.functional.cross_entropy(x, tg.tensor(target, device=device), reduction=reduction)
            loss.sum().backward()
            outs.append((loss.cpu().numpy(), x.grad.cpu().numpy()))
        np.testing.assert_allclose(outs[1][0], outs[0][0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(outs[1][1], outs[0][1], rtol=1e-5, atol=1e-6)
    all_ignored = tg.nn.functional.cross_entropy(tg.zeros(2, 3, device="cuda"), tg.tensor([-100, -100], device="cuda"))
    assert np.isnan(all_ignored.item())


@gpu
@pytest.mark.parametrize("max_norm", [0.1, 1e3])
def test_clip_grad_norm_on_the_gpu_matches_cpu(max_norm):
    rng = np.random.default_rng(16)
    grads = [rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(5)]
    clipped = []
    for device in ("cpu", "cuda"):
        params = [tg.zeros(g.shape, dtype=tg.float32 if g.dtype == np.float32 else tg.float64, device=device,
                           requires_grad=True) for g in grads]
        for p, g in zip(params, grads):
            p.grad = tg.tensor(g, device=device)
        total = tg.nn.utils.clip_grad_norm_(params, max_norm)
        clipped.append((total.item(), [p.grad.cpu().numpy() for p in params]))
    np.testing.assert_allclose(clipped[1][0], clipped[0][0], rtol=1e-12)
    for a, b in zip(clipped[1][1], clipped[0][1]):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    if max_norm > 1:  # nothing to clip: the gradients are untouched
        for a, g in zip(clipped[1][1], grads):
            np.testing.assert_array_equal(a, g)


@gpu
def test_an_lstm_classifier_step_never_waits_for_the_gpu():
    """The sentiment example's kind of step: embedding, a two-layer LSTM, a sigmoid head, binary
    cross-entropy, backward, clipping and Adam, with sync debug mode 'error' on throughout."""
    tg.manual_seed(0)
    nn, F = tg.nn, tg.nn.functional
    emb, lstm, head = nn.Embedding(30, 8), nn.LSTM(8, 12, num_layers=2, dropout=0.1), nn.Linear(12, 1)
    modules = [m.to("cuda") for m in (emb, lstm, head)]
    params = [p for m in modules for p in m.parameters()]
    opt = tg.optim.Adam(params, lr=1e-2)
    ids = tg.randint(0, 30, (5, 7), device="cuda")
    labels = (tg.rand(5, device="cuda") < 0.5).float()
    losses = []
    for _ in range(3):
        tg.cuda.set_sync_debug_mode("error")
        try:
            out, _ = lstm(emb(ids))
            loss = F.binary_cross_entropy(tg.sigmoid(head(out[:, -1]).reshape(-1)), labels)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
        finally:
            tg.cuda.set_sync_debug_mode("default")
        losses.append(loss.item())
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses


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


def _masked_lm_example(monkeypatch):
    """examples/masked_lm.py as a module (its model and batches)."""
    import importlib.util
    path = Path(__file__).resolve().parent.parent / "examples" / "masked_lm.py"
    monkeypatch.syspath_prepend(str(path.parent))  # its `common` helpers
    spec = importlib.util.spec_from_file_location("masked_lm_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@gpu
@pytest.mark.parametrize("arch", ["doc", "encoder"])
@pytest.mark.parametrize("optimizer", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_a_masked_lm_training_step_never_waits_for_the_gpu(arch, optimizer, monkeypatch):
    """The example's step on device-resident batches: embeddings, attention with a padding mask,
    dropout, the masked positions gathered, cross_entropy, backward, gradient clipping and the
    optimizer. In sync debug mode 'error' any wait of the host raises."""
    example = _masked_lm_example(monkeypatch)
    tg.manual_seed(0)
    rng = np.random.default_rng(0)
    vocab, seq_len = 40, 12
    model = example.MaskedLMModel(vocab, 16, 1, 2, seq_len, dropout=0.1, arch=arch).to("cuda")
    params = list(model.parameters())
    opt = {"SGD": lambda: tg.optim.SGD(params, lr=0.1, momentum=0.9), "Adam": lambda: tg.optim.Adam(params, lr=1e-2),
           "AdamW": lambda: tg.optim.AdamW(params, lr=1e-2), "RMSprop": lambda: tg.optim.RMSprop(params, lr=1e-3)}[optimizer]()
    rows = rng.integers(len(example.SPECIALS), vocab, size=(4, seq_len))
    rows[:, -3:] = example.PAD
    batch = example.masked_batch(rows, vocab, rng, device="cuda")
    losses = []
    for _ in range(3):
        tg.cuda.set_sync_debug_mode("error")
        try:
            ids, positions, targets = batch
            loss = tg.nn.functional.cross_entropy(model(ids, positions), targets)
            opt.zero_grad()
            loss.backward()
            tg.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            with pytest.raises(RuntimeError, match="sync debug mode"):
                loss.item()
        finally:
            tg.cuda.set_sync_debug_mode("default")
        losses.append(loss.item())
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses


# ---- same random numbers on both devices --------------------------------------------------------

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


# ---- kernels against the CPU -----------------------------------------------------------------------

def _pair(shape, dtype=np.float32, seed=0, positive=False):
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    if positive:
        a = np.abs(a) + 0.5
    return tg.tensor(a), tg.tensor(a, device="cuda")


def _close(g, c, rtol=1e-5, atol=1e-6):
    assert g.is_cuda and g.shape == c.shape and g.dtype == c.dtype
    np.testing.assert_allclose(g.cpu().numpy(), c.numpy(), rtol=rtol, atol=atol, equal_nan=True)


@gpu
@pytest.mark.parametrize("name", ["neg", "abs", "exp", "sqrt", "sin", "cos", "tanh", "sigmoid", "relu", "gelu", "silu",
                                  "erf", "sign", "log"])
@pytest.mark.parametrize("n", [1, 7, 1000, 100003])
def test_unary_matches_cpu(name, n):
    c, g = _pair((n,), positive=name in ("sqrt", "log"))
    _close(getattr(tg, name)(g), getattr(tg, name)(c))


@gpu
@pytest.mark.parametrize("op", [lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a / b, lambda a, b: a - b,
                                lambda a, b: tg.maximum(a, b), lambda a, b: a < b, lambda a, b: a ** 2])
def test_binary_broadcast_and_strides_match_cpu(op):
    ac, ag = _pair((4, 1, 5), seed=1)
    bc, bg = _pair((3, 5), seed=2)
    _close(op(ag, bg), op(ac, bc))
    _close(op(ag.transpose(0, 2), bg.T[:, :, None]), op(ac.transpose(0, 2), bc.T[:, :, None]))
    _close(op(ag, 2.0), op(ac, 2.0))


@gpu
def test_dtype_conversion_and_where_match_cpu():
    c, g = _pair((6, 7))
    _close(g.to(tg.float64), c.to(tg.float64))
    _close((g * 3).long(), (c * 3).long())
    _close(tg.where(g > 0, g, -g), tg.where(c > 0, c, -c))
    _close(tg.clamp(g, -0.5, 0.5), tg.clamp(c, -0.5, 0.5))


@gpu
@pytest.mark.parametrize("shape, dims", [((1000,), None), ((7, 300), 1), ((7, 300), 0), ((4, 5, 6), (0, 2)),
                                         ((3, 4, 5), (1,)), ((2, 3), ())])
@pytest.mark.parametrize("fn", ["sum", "mean", "amax", "amin", "var"])
def test_reductions_match_cpu(shape, dims, fn):
    c, g = _pair(shape, dtype=np.float64)
    kw = {} if dims is None else {"dim": dims}
    if dims == ():
        kw = {}
    _close(getattr(tg, fn)(g, **kw), getattr(tg, fn)(c, **kw), rtol=1e-10, atol=1e-12)


@gpu
@pytest.mark.parametrize("shape, dim", [((5000, 37), 0), ((20000, 3), 0), ((3, 2000, 40), 1), ((70000, 4, 2), 1),
                                        ((2, 100, 33), 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_column_sums_split_over_rows_match_cpu(shape, dim, dtype):
    # tall column sums take the split path (partial sums per row block, then one ordered pass);
    # (70000, 4, 2) has more leading elements than a grid dimension holds
    # against the exact sums: float32 accumulates in float64 on the device, so each result is the
    # correctly rounded sum (the CPU's float32 column sums are not as close)
    a = (np.random.default_rng(0).standard_normal(shape) * 100).astype(dtype)
    g = tg.tensor(a, device="cuda")
    exact = a.sum(dim, dtype=np.int64 if dtype == np.int64 else np.float64)
    for got in (g.sum(dim).cpu().numpy(), g.sum(dim, keepdim=True).cpu().numpy().squeeze(dim)):
        assert got.dtype == dtype
        if dtype == np.int64:
            np.testing.assert_array_equal(got, exact)
        else:  # one rounding of a float64 sum: float32's eps; a float64 sum's own error for float64
            bound = np.finfo(dtype).eps * np.abs(exact) + 4 * np.finfo(np.float64).eps * np.abs(a).sum(dim)
            assert np.all(np.abs(got - exact) <= bound)


@gpu
def test_argmax_argmin_ties_and_nan_match_cpu():
    a = np.array([[1.0, 3.0, 3.0, 0.0], [np.nan, 2.0, np.nan, 5.0], [2.0, 2.0, 2.0, 2.0]], dtype=np.float32)
    c, g = tg.tensor(a), tg.tensor(a, device="cuda")
    for fn in (tg.argmax, tg.argmin):
        _close(fn(g, 1), fn(c, 1))
        _close(fn(g, 0), fn(c, 0))
        _close(fn(g), fn(c))
    _close(tg.amax(g, 1), tg.amax(c, 1))


@gpu
def test_int_and_bool_sums_match_cpu():
    a = np.arange(-50, 50).reshape(10, 10)
    c, g = tg.tensor(a), tg.tensor(a, device="cuda")
    _close(g.sum(), c.sum())
    _close((g > 0).sum(1), (c > 0).sum(1))


@gpu
def test_index_ops_match_cpu():
    c, g = _pair((6, 4), dtype=np.float64)
    idx = np.array([5, 0, 0, -1])
    ic, ig = tg.tensor(idx), tg.tensor(idx, device="cuda")
    _close(tg.index_select(g, 0, ig), tg.index_select(c, 0, ic))
    _close(g[ig], c[ic])
    _close(g[g > 0], c[c > 0])
    gi = np.array([[0, 1, 2, 3], [3, 2, 1, 0]])
    _close(tg.gather(g, 0, tg.tensor(gi, device="cuda")), tg.gather(c, 0, tg.tensor(gi)))
    src_c, src_g = _pair((4, 4), dtype=np.float64, seed=5)
    _close(tg.index_add(g, 0, ig, src_g), tg.index_add(c, 0, ic, src_c), rtol=1e-12)
    _close(tg.scatter_add(g, 0, tg.tensor(gi, device="cuda"), src_g[:2]), tg.scatter_add(c, 0, tg.tensor(gi), src_c[:2]))
    gc, gg = c.clone(), g.clone()
    gc[tg.tensor([1, 3])] = 9.0
    gg[tg.tensor([1, 3], device="cuda")] = 9.0
    _close(gg, gc)


# Row widths that reach every row kind of kernels/cuda/nn.cu in both dtypes: a warp per row (small
# and large), a block of 256 (two sizes), of 512, and the streamed row; odd widths take the scalar
# loads, multiples of 4 the vector loads.
@gpu
@pytest.mark.parametrize("rows, cols", [(5, 37), (4, 128), (3, 1000), (3, 1025), (2, 4096), (2, 8000), (2, 12000),
                                        (2, 20001)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nn_rows_and_gradients_match_cpu(rows, cols, dtype):
    F = tg.nn.functional
    rng = np.random.default_rng(cols)
    xn = (rng.standard_normal((rows, cols)) * 3).astype(dtype)
    tn = rng.integers(0, cols, rows)
    tn[1] = -100  # an ignored row
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    outs, grads = {}, {}
    for device in ("cpu", "cuda"):
        x = tg.tensor(xn, device=device, requires_grad=True)
        target = tg.tensor(tn, device=device)
        parts = [(F.softmax(x, -1) ** 2).sum(), F.log_softmax(x, -1).mean(), F.log_softmax(x[:, :64], 0).sum() * 0.1,
                 F.cross_entropy(x, target), (F.layer_norm(x, (cols,)) ** 3).mean()]
        sum(parts[1:], parts[0]).backward()
        outs[device], grads[device] = [p.item() for p in parts], x.grad.cpu().numpy()
    np.testing.assert_allclose(outs["cuda"], outs["cpu"], **tol)
    np.testing.assert_allclose(grads["cuda"], grads["cpu"], **tol)


@gpu
def test_lstm_cell_matches_cpu():
    gc, gg = _pair((3, 16), dtype=np.float64, seed=1)
    cc, cg = _pair((3, 4), dtype=np.float64, seed=2)
    hc, c2c = tg._C._lstm_cell(gc, cc)
    hg, c2g = tg._C._lstm_cell(gg, cg)
    _close(hg, hc, rtol=1e-12)
    _close(c2g, c2c, rtol=1e-12)


# ---- optimizers and modules ------------------------------------------------------------------------

@gpu
@pytest.mark.parametrize("make", [
    lambda ps: tg.optim.SGD(ps, lr=0.1),
    lambda ps: tg.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda ps: tg.optim.Adam(ps, lr=0.01, weight_decay=0.01),
    lambda ps: tg.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
    lambda ps: tg.optim.RMSprop(ps, lr=0.01, momentum=0.5),
])
def test_optimizers_on_cuda_match_cpu(make):
    rng = np.random.default_rng(0)
    # The big one spans two chunks of the multi-tensor kernel and ends in a partial vector; the
    # last starts 8 bytes into its block, so it takes the unaligned (one element at a time) path.
    shapes = [(3, 4), (70001,), (1,), (6,)]
    init = [rng.standard_normal(s) for s in shapes]
    final = {}
    for device in ("cpu", "cuda"):
        ps = [tg.tensor(a, device=device, requires_grad=True) for a in init[:-1]]
        ps.append(tg.tensor(np.concatenate([[0.0], init[-1]]), device=device)[1:].requires_grad_())
        opt = make(ps)
        for step in range(3):
            opt.zero_grad()
            sum(((p * p) * (i + 1.0)).sum() for i, p in enumerate(ps)).backward()
            opt.step()
        final[device] = [p.detach().cpu().numpy() for p in ps]
        assert all(p.is_cuda == (device == "cuda") for p in ps)
    for a, b in zip(final["cuda"], final["cpu"]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@gpu
def test_module_cuda_trains_and_saves(tmp_path):
    tg.manual_seed(0)
    model = tg.nn.Sequential(tg.nn.Linear(4, 8), tg.nn.ReLU(), tg.nn.Linear(8, 1)).cuda()
    assert all(p.is_cuda for p in model.parameters())
    x = tg.randn(16, 4, device="cuda")
    y = tg.randn(16, 1, device="cuda")
    opt = tg.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    path = tmp_path / "m.safetensors"
    tg.save(model.state_dict(), str(path))
    loaded = tg.load(str(path))
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(loaded[k].numpy(), v.cpu().numpy())
    model.cpu()
    assert not any(p.is_cuda for p in model.parameters())


# ---- bfloat16 on the device ------------------------------------------------------------------------
# CUDA computes bfloat16 the way the CPU does (float32 arithmetic, one rounding per op), except
# matmul and attention, which multiply bfloat16 on the tensor cores with float32 accumulation:
# those are compared with a float64 product of the same bfloat16 inputs.

BF16 = tg.bfloat16
BF16_ULP = 2.0 ** -7  # one unit in the last place of a bfloat16 in [1, 2), relative


def _bits(t):
    return (t.cpu().float().numpy().view(np.uint32) >> 16).astype(np.uint16)


def _bf16_pair(shape, seed=0, scale=1.0):
    a = (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)
    c = tg.tensor(a).to(BF16)
    return c, c.cuda()


@gpu
def test_bfloat16_moves_and_converts_bit_exactly():
    patterns = np.arange(1 << 16, dtype=np.uint32) << 16
    values = patterns.view(np.float32)
    values = values[~np.isnan(values)]
    c = tg.tensor(values).to(BF16)
    assert c.cuda().dtype == BF16
    np.testing.assert_array_equal(_bits(c.cuda()), _bits(c))
    # float32 -> bfloat16 rounding on the device (ties to even included) equals the CPU's
    f = np.random.default_rng(0).standard_normal(100003).astype(np.float32) * 1e3
    f[:4] = [1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 3.4e38]
    np.testing.assert_array_equal(_bits(tg.tensor(f, device="cuda").to(BF16)), _bits(tg.tensor(f).to(BF16)))
    np.testing.assert_array_equal(tg.tensor(f).to(BF16).cuda().float().cpu().numpy(), tg.tensor(f).to(BF16).float().numpy())


@gpu
def test_bfloat16_elementwise_reductions_and_rows_match_cpu():
    F = tg.nn.functional
    (xc, xg), (yc, yg) = _bf16_pair((6, 37)), _bf16_pair((37,), seed=1)
    target_c = tg.tensor([0, 36, 5, -100, 2, 1])
    cases = [lambda x, y, t: x * y + 1.5, lambda x, y, t: tg.exp(x) - tg.gelu(y), lambda x, y, t: x.sum(0),
             lambda x, y, t: x.mean(1, keepdim=True), lambda x, y, t: F.softmax(x, -1),
             lambda x, y, t: F.layer_norm(x, (37,)), lambda x, y, t: F.cross_entropy(x, t),
             lambda x, y, t: tg.where(x > 0, x, y), lambda x, y, t: x[:, tg.tensor([3, 1], device=x.device)]]
    for f in cases:
        want, got = f(xc, yc, target_c), f(xg, yg, target_c.cuda())
        assert got.is_cuda and got.dtype == want.dtype == BF16
        np.testing.assert_allclose(got.float().cpu().numpy(), want.float().numpy(), rtol=BF16_ULP, atol=1e-6)


@gpu
@pytest.mark.parametrize("backend", ["own", "cublas"])
@pytest.mark.parametrize("shape", [(37, 70, 19), (128, 256, 64), (3, 65, 33, 130)])
def test_bfloat16_matmul_on_tensor_cores_accumulates_in_float32(backend, shape):
    if backend == "cublas" and not tg.cuda.cublas_built():
        pytest.skip("this build has no cuBLAS")
    *batch, M, K, N = shape
    (ac, ag), (bc, bg) = _bf16_pair((*batch, M, K)), _bf16_pair((K, N), seed=1)
    previous = tg.cuda.matmul_backend()
    tg.cuda.set_matmul_backend(backend)
    try:
        got = (ag @ bg)
    finally:
        tg.cuda.set_matmul_backend(previous)
    assert got.dtype == BF16 and got.is_cuda
    exact = ac.double().numpy() @ bc.double().numpy()
    # float32 accumulation of exact bf16 products, then one rounding to bfloat16
    bound = BF16_ULP * np.abs(exact) + K * 2.0 ** -23 * (np.abs(ac.double().numpy()) @ np.abs(bc.double().numpy()))
    assert np.all(np.abs(got.float().cpu().numpy() - exact) <= bound + 1e-30)


@gpu
@pytest.mark.parametrize("transpose_a, transpose_b", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("shape", [(136, 72, 200), (2, 136, 72, 264), (1, 264, 64, 136)])
def test_bfloat16_own_matmul_reads_every_layout(shape, transpose_a, transpose_b):
    """Sizes whose strides the Hopper kernel's copy engine can read (multiples of 8) in each layout:
    k- or m/n-contiguous operands (transposed views), a batch with B broadcast, partial edge tiles.
    On an sm_90 GPU the own backend runs them on wgmma; elsewhere on mma.sync."""
    *batch, M, K, N = shape
    a_shape, b_shape = (*batch, K, M) if transpose_a else (*batch, M, K), (N, K) if transpose_b else (K, N)
    (ac, ag), (bc, bg) = _bf16_pair(a_shape, seed=2), _bf16_pair(b_shape, seed=3)
    if transpose_a:
        ac, ag = ac.transpose(-1, -2), ag.transpose(-1, -2)
    if transpose_b:
        bc, bg = bc.T, bg.T
    previous = tg.cuda.matmul_backend()
    tg.cuda.set_matmul_backend("own")
    try:
        got = (ag @ bg).float().cpu().numpy()
    finally:
        tg.cuda.set_matmul_backend(previous)
    a64, b64 = ac.double().numpy(), bc.double().numpy()
    exact = a64 @ b64
    bound = BF16_ULP * np.abs(exact) + K * 2.0 ** -23 * (np.abs(a64) @ np.abs(b64))
    assert got.shape == exact.shape
    assert np.all(np.abs(got - exact) <= bound + 1e-30)


@gpu
@pytest.mark.parametrize("L, S, E, causal", [(64, 64, 64, False), (100, 77, 64, True), (33, 130, 128, False),
                                             (16, 16, 32, True)])
def test_bfloat16_attention_matches_float64(L, S, E, causal):
    F = tg.nn.functional
    (qc, qg), (kc, kg), (vc, vg) = (_bf16_pair((2, 3, n, E), seed=s) for s, n in enumerate((L, S, S)))
    gc, gg = _bf16_pair((2, 3, L, E), seed=9)
    qg.requires_grad_(), kg.requires_grad_(), vg.requires_grad_()
    out = F.scaled_dot_product_attention(qg, kg, vg, is_causal=causal)
    (out.float() * gg.float()).sum().backward()
    assert out.dtype == BF16 and qg.grad.dtype == BF16
    ref = [t.detach().double().requires_grad_() for t in (qc, kc, vc)]
    want = F.scaled_dot_product_attention(*ref, is_causal=causal)
    (want * gc.double()).sum().backward()
    for got, exp in [(out, want), (qg.grad, ref[0].grad), (kg.grad, ref[1].grad), (vg.grad, ref[2].grad)]:
        e = exp.detach().numpy()
        np.testing.assert_allclose(got.float().cpu().numpy(), e, rtol=2e-2, atol=2e-2 * np.abs(e).max())


@gpu
def test_bfloat16_attention_on_the_hopper_kernels_matches_float64():
    """TAPEGRAD_CUDA_ATTENTION=wgmma (read once per process, so in a child process) puts bfloat16
    attention on the wgmma kernels where the device is an sm_90 one (head dims 64 and 128 here;
    32 falls back): the bfloat16 attention checks above must hold there too."""
    test = f"{Path(__file__).resolve()}::test_bfloat16_attention_matches_float64"
    ran = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
                         env={**os.environ, "TAPEGRAD_CUDA_ATTENTION": "wgmma"}, capture_output=True, text=True,
                         timeout=900)
    assert ran.returncode == 0, ran.stdout[-4000:] + ran.stderr[-4000:]
    assert "4 passed" in ran.stdout, ran.stdout[-2000:]


@gpu
@pytest.mark.parametrize("L, S, E, causal", [(64, 64, 64, False), (100, 77, 64, True), (33, 130, 128, False)])
def test_float32_attention_under_allow_tf32_runs_on_tensor_cores(L, S, E, causal):
    """allow_tf32 moves float32 attention onto the tensor cores: within tf32's rounding (10 bits)
    of float64, and measurably not the float32 CUDA-core result (which is within 1e-5)."""
    F = tg.nn.functional
    rng = np.random.default_rng(5)
    q, k, v = (rng.standard_normal((2, 3, n, E)).astype(np.float32) for n in (L, S, S))
    g = rng.standard_normal((2, 3, L, E)).astype(np.float32)
    ref = [tg.tensor(a.astype(np.float64), requires_grad=True) for a in (q, k, v)]
    want = F.scaled_dot_product_attention(*ref, is_causal=causal)
    (want * tg.tensor(g.astype(np.float64))).sum().backward()
    expected = [want.detach().numpy()] + [t.grad.numpy() for t in ref]

    def run():
        xs = [tg.tensor(a, device="cuda", requires_grad=True) for a in (q, k, v)]
        out = F.scaled_dot_product_attention(*xs, is_causal=causal)
        (out * tg.tensor(g, device="cuda")).sum().backward()
        return [out.detach().cpu().numpy()] + [x.grad.cpu().numpy() for x in xs]

    previous = tg.cuda.allow_tf32()
    try:
        tg.cuda.allow_tf32(True)
        tf32 = run()
        tg.cuda.allow_tf32(False)
        exact = run()
    finally:
        tg.cuda.allow_tf32(previous)
    worst_tf32 = max(np.abs(a - e).max() / np.abs(e).max() for a, e in zip(tf32, expected))
    worst_exact = max(np.abs(a - e).max() / np.abs(e).max() for a, e in zip(exact, expected))
    assert worst_exact < 1e-5
    assert 1e-5 < worst_tf32 < 3e-3


@gpu
@pytest.mark.parametrize("make", [
    lambda ps: tg.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
    lambda ps: tg.optim.Adam(ps, lr=0.01),
    lambda ps: tg.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
    lambda ps: tg.optim.RMSprop(ps, lr=0.01, momentum=0.5),
])
def test_bfloat16_optimizers_on_cuda_match_cpu(make):
    init = [np.random.default_rng(0).standard_normal(s).astype(np.float32) for s in [(3, 4), (70000,)]]
    final, states = {}, {}
    for device in ("cpu", "cuda"):
        ps = [tg.tensor(a, device=device).to(BF16).requires_grad_() for a in init]
        opt = make(ps)
        for _ in range(3):
            opt.zero_grad()
            sum(((p.float() ** 2) * (i + 1.0)).sum() for i, p in enumerate(ps)).backward()
            opt.step()
        assert all(p.dtype == BF16 for p in ps)
        final[device] = [p.detach().cpu().float().numpy() for p in ps]
        states[device] = [v.dtype for s in opt.state_dict()["state"].values() for v in s.values() if isinstance(v, tg.Tensor)]
    assert set(states["cuda"]) == {tg.float32} == set(states["cpu"])
    for a, b in zip(final["cuda"], final["cpu"]):  # float32 math in another order: at most one rounding apart
        np.testing.assert_allclose(a, b, rtol=BF16_ULP, atol=1e-30)


@gpu
def test_bfloat16_checkpoint_of_cuda_tensors(tmp_path):
    c, g = _bf16_pair((5, 3))
    tg.save({"w": g}, tmp_path / "b.safetensors")
    back = tg.load(tmp_path / "b.safetensors")["w"]
    assert back.dtype == BF16 and not back.is_cuda
    np.testing.assert_array_equal(_bits(back), _bits(c))


@gpu
def test_layers_build_their_masks_and_states_on_the_inputs_device():
    # MHA's merged masks, the causal mask of attention_weights and LSTM's zero states are made
    # inside the layers: they must be made on the device of the inputs
    tg.manual_seed(0)
    mha, lstm = tg.nn.MultiHeadAttention(8, 2), tg.nn.LSTM(8, 4, num_layers=2)
    x = tg.tensor(np.random.default_rng(0).standard_normal((2, 5, 8)).astype(np.float32))
    kpm = tg.tensor(np.array([[False] * 5, [False, False, False, True, True]]))
    causal = tg.tensor(np.triu(np.ones((5, 5), bool), 1))
    F = tg.nn.functional
    cpu = [mha(x, attn_mask=causal, key_padding_mask=kpm, need_weights=True), lstm(x)[0],
           F.attention_weights(x, x, is_causal=True)]
    mha.cuda(), lstm.cuda()
    xg = x.cuda()
    gpu = [mha(xg, attn_mask=causal.cuda(), key_padding_mask=kpm.cuda(), need_weights=True), lstm(xg)[0],
           F.attention_weights(xg, xg, is_causal=True)]
    flat = lambda outs: [t for o in outs for t in (o if isinstance(o, tuple) else (o,))]
    for g, c in zip(flat(gpu), flat(cpu)):
        _close(g, c.detach(), rtol=1e-4, atol=1e-5)


@gpu
@pytest.mark.parametrize("example", [("matmul_sgd.py", "--steps", "20"), ("linear_regression.py", "--epochs", "20"),
                                     ("sigmoid_neuron.py", "--epochs", "20"),
                                     ("masked_lm.py", "--steps", "2", "--vocab", "256", "--dim", "16", "--heads", "2",
                                      "--layers", "1", "--batch-size", "4", "--seq-len", "16")])
def test_examples_run_with_device_cuda(example, tmp_path):
    from test_examples import run_example  # runs examples/NAME as a user does, with this tapegrad
    out = run_example(*example, "--device", "cuda", "--out", str(tmp_path), timeout=600)
    assert "saved" in out
