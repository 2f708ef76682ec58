"""CUDA kernels where the op table's CUDA columns do not reach: the matmul backends and their
switches, column sums split over row blocks (rounded once), NaN in argmax, writes through an index,
and the tensor-core paths of bfloat16 and tf32 (matmul, attention) against float64 bounds."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tapegrad as tg
from helpers import BF16_ULP, bf16_bits, bf16_pair

HAS_GPU = tg.cuda.is_available()
gpu = pytest.mark.skipif(not HAS_GPU, reason="no CUDA GPU available")


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
    for fn in (tg.argmax, tg.argmin, tg.amax):
        for kw in ({"dim": 1}, {"dim": 0}, {}):
            got, want = fn(g, **kw), fn(c, **kw)
            assert got.is_cuda and got.dtype == want.dtype
            np.testing.assert_array_equal(got.cpu().numpy(), want.numpy())


@gpu
def test_index_put_matches_cpu():
    a = np.random.default_rng(0).standard_normal((6, 4))
    on_cpu, on_gpu = tg.tensor(a), tg.tensor(a, device="cuda")
    on_cpu[tg.tensor([1, 3])] = 9.0
    on_gpu[tg.tensor([1, 3], device="cuda")] = 9.0
    assert on_gpu.is_cuda
    np.testing.assert_array_equal(on_gpu.cpu().numpy(), on_cpu.numpy())


@gpu
def test_cross_entropy_of_only_ignored_targets_is_nan_on_the_device():
    loss = tg.nn.functional.cross_entropy(tg.zeros(2, 3, device="cuda"), tg.tensor([-100, -100], device="cuda"))
    assert loss.is_cuda and np.isnan(loss.item())


# ---- bfloat16 on the device ------------------------------------------------------------------------
# CUDA computes bfloat16 the way the CPU does (float32 arithmetic, one rounding per op), except
# matmul and attention, which multiply bfloat16 on the tensor cores with float32 accumulation:
# those are compared with a float64 product of the same bfloat16 inputs.

BF16 = tg.bfloat16



@gpu
def test_bfloat16_moves_and_converts_bit_exactly():
    patterns = np.arange(1 << 16, dtype=np.uint32) << 16
    values = patterns.view(np.float32)
    values = values[~np.isnan(values)]
    c = tg.tensor(values).to(BF16)
    assert c.cuda().dtype == BF16
    np.testing.assert_array_equal(bf16_bits(c.cuda()), bf16_bits(c))
    # float32 -> bfloat16 rounding on the device (ties to even included) equals the CPU's
    f = np.random.default_rng(0).standard_normal(100003).astype(np.float32) * 1e3
    f[:4] = [1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 3.4e38]
    np.testing.assert_array_equal(bf16_bits(tg.tensor(f, device="cuda").to(BF16)), bf16_bits(tg.tensor(f).to(BF16)))
    np.testing.assert_array_equal(tg.tensor(f).to(BF16).cuda().float().cpu().numpy(), tg.tensor(f).to(BF16).float().numpy())


@gpu
@pytest.mark.parametrize("backend", ["own", "cublas"])
@pytest.mark.parametrize("shape", [(37, 70, 19), (128, 256, 64), (3, 65, 33, 130)])
def test_bfloat16_matmul_on_tensor_cores_accumulates_in_float32(backend, shape):
    if backend == "cublas" and not tg.cuda.cublas_built():
        pytest.skip("this build has no cuBLAS")
    *batch, M, K, N = shape
    (ac, ag), (bc, bg) = bf16_pair((*batch, M, K)), bf16_pair((K, N), seed=1)
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
    (ac, ag), (bc, bg) = bf16_pair(a_shape, seed=2), bf16_pair(b_shape, seed=3)
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
    (qc, qg), (kc, kg), (vc, vg) = (bf16_pair((2, 3, n, E), seed=s) for s, n in enumerate((L, S, S)))
    gc, gg = bf16_pair((2, 3, L, E), seed=9)
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
def test_bfloat16_attention_on_the_mma_kernels_matches_float64():
    """On an sm_90 device bfloat16 attention takes the wgmma kernels where they apply (head dims 64
    and 128 in the test above; 32 falls back to mma.sync). TAPEGRAD_CUDA_ATTENTION=mma (read once
    per process, so in a child process) keeps it on the mma.sync kernels there: the bfloat16
    attention checks above must hold on those too."""
    test = f"{Path(__file__).resolve()}::test_bfloat16_attention_matches_float64"
    ran = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
                         env={**os.environ, "TAPEGRAD_CUDA_ATTENTION": "mma"}, capture_output=True, text=True,
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
