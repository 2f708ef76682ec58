"""tapegrad's CUDA GEMM, fused-attention and row kernels (csrc/kernels/cuda/gemm.cu, attention.cu,
attention_tc.cu, nn.cu and the Hopper kernels of sm90/: the real entry points and their dispatch)
run on the CPU, one host thread per CUDA thread, with the sm_80 and sm_90a instructions emulated
from their PTX ISA definitions (emulator/: ldmatrix, mma.sync, cp.async, shuffles,
__syncthreads; mbarriers, TMA copies with the 128-byte swizzle, wgmma). The programs are the
check-and-bench programs of benchmarks/cuda/ (gemm_check, attention_check, rows_check), built
against the emulator by benchmarks/cuda/build_checks.sh. GEMM and attention results are compared
with NumPy and with tapegrad's CPU attention in float64 on the same inputs (the programs' file
commands); the programs' own checks against their double-precision references run too (--check).
No GPU is needed: this checks the kernels' tiling, fragment and shared-memory layouts, pipelines,
masking, online softmax, row kinds, gradients and edge handling wherever the tests run;
benchmarks/gpu_session.sh checks the hardware."""
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import tapegrad as tg

ROOT = Path(__file__).resolve().parents[1]
BUILD_CHECKS = ROOT / "benchmarks" / "cuda" / "build_checks.sh"
GXX = shutil.which("g++")
pytestmark = pytest.mark.skipif(GXX is None or shutil.which("bash") is None or not BUILD_CHECKS.is_file(),
                                reason="needs g++, bash and the source tree")


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """{program name: path} of the check programs, built against the emulator."""
    build = tmp_path_factory.mktemp("emulator")
    built = subprocess.run(["bash", str(BUILD_CHECKS)], capture_output=True, text=True,
                           env={**os.environ, "EMULATOR": "1", "BUILD": str(build), "CXX": GXX})
    assert built.returncode == 0, built.stdout + built.stderr
    return {name: build / name for name in ("gemm_check", "attention_check", "rows_check")}


def run(exe, *args, env=None):
    ran = subprocess.run([str(exe)] + [str(a) for a in args], capture_output=True, text=True, timeout=900,
                         env={**os.environ, **(env or {})})
    assert ran.returncode == 0, ran.stdout[-4000:] + ran.stderr
    return ran.stdout


def bf16(a):
    """Values rounded to bfloat16 (what the bfloat16 kernels read)."""
    return tg.tensor(np.asarray(a, np.float32)).to(tg.bfloat16).float().numpy()


def make_mask(kind, N, L, S, rng):
    """(mask broadcastable to (N, L, S), offsets per n, row stride, column stride), or Nones."""
    if kind == "full":  # (N, L, S): random values, a fifth hidden
        m = rng.standard_normal((N, L, S)).astype(np.float32)
        m[rng.random((N, L, S)) < 0.2] = -np.inf
        return m, np.arange(N) * L * S, S, 1
    if kind == "rows":  # (L, S), every fifth row sees nothing
        m = np.where(rng.random((L, S)) < 0.3, -np.inf, 0.0).astype(np.float32)
        m[3::5] = -np.inf
        return m, np.zeros(N, np.int64), S, 1
    if kind == "padding":  # (N, 1, S): the last keys of each problem hidden
        m = np.zeros((N, 1, S), np.float32)
        for n in range(N):
            m[n, 0, max(0, S - 1 - 3 * n):] = -np.inf
        return m, np.arange(N) * S, 0, 1
    return None, None, 0, 0


ATTENTION_CASES = [  # N, L, S, E, Ev, causal, mask, dropout_p, misalign
    (2, 37, 53, 32, 32, False, None, 0.0, False),
    (1, 64, 64, 64, 64, True, None, 0.0, False),
    (2, 100, 70, 80, 80, False, "full", 0.0, False),
    (1, 65, 129, 128, 128, True, "full", 0.0, False),
    (2, 50, 50, 64, 48, False, None, 0.2, False),
    (2, 20, 30, 16, 16, False, "rows", 0.0, False),
    (2, 45, 77, 33, 17, False, "padding", 0.1, False),
    (1, 40, 90, 128, 96, True, "rows", 0.3, False),
    (2, 70, 66, 64, 64, False, "padding", 0.0, True),
    (3, 1, 1, 8, 8, False, None, 0.0, False),
    (1, 33, 0, 32, 32, False, None, 0.0, False),
    # whole 64 x 64 tiles that need no masking (the kernels' fast path) beside edge tiles
    (2, 128, 192, 64, 64, False, None, 0.0, False),
    (1, 192, 192, 32, 32, True, None, 0.1, False),
    (1, 130, 140, 128, 128, False, None, 0.0, False),
    # more query tiles than the Hopper backward's stages (3 at D = 64, 2 at D = 128), several key blocks
    (1, 300, 260, 64, 64, True, None, 0.1, False),
    (2, 200, 150, 128, 112, False, "padding", 0.0, False),
    # more key tiles than the Hopper forward's stages: its ring of K / V stages wraps around
    (1, 70, 520, 128, 128, False, None, 0.0, False),
    (1, 100, 530, 64, 64, False, "padding", 0.1, False),
    # E <= 64 < Ev: padded to D = 128, the second 64-column box of Q and K lies wholly outside the
    # tensors (the TMA fills it with zeros and still counts its bytes)
    (2, 70, 90, 48, 112, False, None, 0.0, False),
]
# (dtype, environment, tolerance): float32 on the CUDA cores, and as tf32 on the tensor cores
# (allow_tf32); bfloat16 on the Hopper kernels (the default on sm_90: where the head dim is 64 or
# more and the TMA can read the operands, else mma.sync), on the mma.sync kernels of an
# sm_80 device (the backward with 128-key tiles and two query stages, with one stage, and with
# 64-key tiles), and on the CUDA cores when TAPEGRAD_CUDA_ATTENTION=simt.
SM80 = {"TAPEGRAD_EMULATED_SM": "80"}
ATTENTION_PATHS = {"f32": ("f32", {}, 2e-4), "tf32-tensor-cores": ("tf32", {}, 3e-3),
                   "bf16-hopper": ("bf16", {}, 2.5e-2),
                   "bf16-tensor-cores": ("bf16", SM80, 2.5e-2),
                   "bf16-tensor-cores-one-stage": ("bf16", {**SM80, "TAPEGRAD_CUDA_ATTENTION_STAGES": "1"}, 2.5e-2),
                   "bf16-tensor-cores-64-keys": ("bf16", {**SM80, "TAPEGRAD_CUDA_ATTENTION_KEY_TILE": "64"}, 2.5e-2),
                   "bf16-simt": ("bf16", {"TAPEGRAD_CUDA_ATTENTION": "simt"}, 2.5e-2)}


def case_id(c):
    return "N{}-L{}-S{}-E{}-Ev{}{}-{}-p{}{}".format(*c[:5], "-causal" if c[5] else "", c[6] or "nomask", c[7],
                                                    "-misaligned" if c[8] else "")


def assert_close_to_reference(got, ref, tol, name):
    ref, got = np.asarray(ref, np.float64).ravel(), np.asarray(got, np.float64).ravel()
    assert got.shape == ref.shape, name
    finite = np.isfinite(ref)
    assert np.array_equal(np.isfinite(got), finite), f"{name}: infinities differ"
    assert np.array_equal(got[~finite], ref[~finite]), f"{name}: infinities differ"
    if finite.any():
        err = np.abs(got[finite] - ref[finite]).max() / max(np.abs(ref[finite]).max(), 1e-3)
        assert err <= tol, f"{name}: max error {err:.3g} of the largest value (tolerance {tol})"


@pytest.mark.parametrize("path", list(ATTENTION_PATHS))
@pytest.mark.parametrize("case", ATTENTION_CASES, ids=case_id)
def test_attention_kernels_match_float64(emulated, tmp_path, case, path):
    N, L, S, E, Ev, causal, mask_kind, p, misalign = case
    dtype, env, tol = ATTENTION_PATHS[path]
    rng = np.random.default_rng(N * 1000 + L + S)
    q, k = bf16(rng.standard_normal((N, L, E))), bf16(rng.standard_normal((N, S, E)))
    v, dout = bf16(rng.standard_normal((N, S, Ev))), bf16(rng.standard_normal((N, L, Ev)))
    mask, offsets, mask_row, mask_col = make_mask(mask_kind, N, L, S, rng)
    for name, a in [("q", q), ("k", k), ("v", v), ("dout", dout)]:
        a.astype(np.float32).tofile(tmp_path / f"{name}.bin")
    if mask is not None:
        mask = bf16(mask)
        mask.tofile(tmp_path / "mask.bin")
        offsets.astype(np.int64).tofile(tmp_path / "mask_offsets.bin")
    seed = 1234
    run(emulated["attention_check"], "attention", tmp_path, dtype, N, L, S, E, Ev, int(causal), mask_row, mask_col, p,
        seed, int(misalign), env=env)
    got = {name: np.fromfile(tmp_path / f"{name}.bin", np.float32) for name in ("out", "lse", "dq", "dk", "dv")}

    # The reference: tapegrad's fused CPU attention in float64 on the same values (and, after
    # manual_seed(seed), the same dropout stream: seed, offset 0).
    tg.manual_seed(seed)
    qt, kt, vt = (tg.tensor(a.astype(np.float64), requires_grad=True) for a in (q, k, v))
    hidden = np.arange(S)[None, None, :] > np.arange(L)[None, :, None]  # causal: j > i
    if mask is not None and causal:  # the kernels take both at once; the API one or the other
        mt = tg.tensor(np.where(hidden, -np.inf, np.broadcast_to(mask, (N, L, S))).astype(np.float64))
    else:
        mt = None if mask is None else tg.tensor(np.broadcast_to(mask, (N, L, S)).astype(np.float64))
    out = tg.nn.functional.scaled_dot_product_attention(qt, kt, vt, attn_mask=mt, dropout_p=p,
                                                        is_causal=causal and mask is None)
    (out * tg.tensor(dout.astype(np.float64))).sum().backward()
    scores = np.einsum("nle,nse->nls", q.astype(np.float64), k.astype(np.float64)) / math.sqrt(E)
    if mask is not None:
        scores = scores + np.broadcast_to(mask, (N, L, S))
    if causal:
        scores = np.where(hidden, -np.inf, scores)
    top = scores.max(axis=-1, initial=-np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        safe_top = np.where(np.isinf(top), 0, top)
        lse = np.where(np.isinf(top), -np.inf, top + np.log(np.exp(scores - safe_top[..., None]).sum(-1)))
    want = {"out": out.detach().numpy(), "lse": lse, "dq": qt.grad.numpy() if L * S else np.zeros_like(q),
            "dk": kt.grad.numpy() if L * S else np.zeros_like(k), "dv": vt.grad.numpy() if L * S else np.zeros_like(v)}
    for name, ref in want.items():
        assert_close_to_reference(got[name], ref, tol, name)


GEMM_CASES = [  # dtype, batch, M, N, K, a layout, b layout, accumulate, tf32, misalign
    ("f32", 2, 130, 70, 33, "mk", "kn", False, False, False),   # SIMT, float4 loads along k / n
    ("f32", 1, 64, 200, 48, "km", "nk", True, False, False),    # SIMT, float4 loads along m / k
    ("f32", 2, 37, 45, 19, "mk", "kn", False, False, True),     # SIMT, scalar loads
    ("f32", 1, 130, 136, 72, "mk", "kn", False, True, False),   # TF32 mma, ldmatrix of k-contiguous tiles
    ("f32", 2, 64, 72, 40, "km", "nk", True, True, False),      # TF32 mma, scalar fragments of m-contiguous A
    ("bf16", 1, 130, 136, 96, "mk", "kn", False, False, False), # bf16 mma: ldmatrix / ldmatrix.trans
    ("bf16", 2, 72, 64, 64, "km", "nk", True, False, False),    # bf16 mma: the other two operand layouts
    ("bf16", 1, 200, 24, 40, "mk", "nk", False, False, False),
    ("bf16", 1, 33, 50, 70, "mk", "kn", False, False, False),   # K % 8 != 0: SIMT fallback
    ("bf16", 2, 40, 30, 24, "km", "kn", True, False, True),     # misaligned: SIMT fallback
]


def check_gemm(emulated, tmp_path, case, *config, sm="90"):
    """Runs one GEMM_CASES-style case (through gemm_with_config when `config` is (kernel, index))
    on an emulated device of compute capability `sm` and checks it against float64 NumPy."""
    dtype, batch, M, N, K, a_layout, b_layout, accumulate, tf32, misalign = case
    rng = np.random.default_rng(M * N + K)
    a, b = rng.standard_normal((batch, M, K)), rng.standard_normal((batch, K, N))
    c0 = rng.standard_normal((batch, M, N)) if accumulate else np.zeros((batch, M, N))
    if dtype == "bf16":
        a, b, c0 = bf16(a), bf16(b), bf16(c0)
    a, b, c0 = (x.astype(np.float32) for x in (a, b, c0))
    (a if a_layout == "mk" else a.transpose(0, 2, 1)).tofile(tmp_path / "a.bin")
    (b if b_layout == "kn" else b.transpose(0, 2, 1)).tofile(tmp_path / "b.bin")
    c0.tofile(tmp_path / "c.bin")
    run(emulated["gemm_check"], "gemm", tmp_path, dtype, batch, M, N, K, a_layout, b_layout, int(accumulate), int(tf32),
        int(misalign), *config, env={"TAPEGRAD_EMULATED_SM": sm})
    got = np.fromfile(tmp_path / "c.bin", np.float32).reshape(batch, M, N).astype(np.float64)
    exact = a.astype(np.float64) @ b.astype(np.float64) + c0
    magnitude = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64)) + np.abs(c0)
    # float32 accumulation (K rounding steps); TF32 rounds the inputs to 11 significant bits;
    # bfloat16 rounds the result once more
    per_input = 2.0 ** -11 if tf32 else 0.0
    rounding = 2.0 ** -8 * np.abs(exact) if dtype == "bf16" else 0.0
    bound = (K + 2) * 2.0 ** -24 * magnitude + 2 * per_input * magnitude + rounding
    assert np.all(np.abs(got - exact) <= bound + 1e-30), np.abs(got - exact).max()


def gemm_case_id(c):
    return "{}-b{}-{}x{}x{}-{}-{}{}{}{}".format(*c[:7], "-acc" if c[7] else "", "-tf32" if c[8] else "",
                                               "-misaligned" if c[9] else "")


# gemm() as an sm_80 device dispatches it (the mma.sync and SIMT kernels), and as an sm_90 one
# (bfloat16 on wgmma wherever the TMA can read the operands).
@pytest.mark.parametrize("sm", ["80", "90"])
@pytest.mark.parametrize("case", GEMM_CASES, ids=gemm_case_id)
def test_gemm_kernels_match_numpy(emulated, tmp_path, case, sm):
    check_gemm(emulated, tmp_path, case, sm=sm)


# Every tile configuration of the own kernels (gemm_with_config, what gemm_check --bench times):
# M and N past whole tiles of 128 and 256, K past whole stages and past more tiles than stages,
# each operand in both layouts. The mma kernel takes float32 as tf32; its m- or n-contiguous
# operands need M or N a multiple of 8 (bfloat16) or 4 (float32). wgmma: K past both rings (4 and
# 6 stages of 64), N past 256, and more tiles than the persistent grid has CTAs (132), so a CTA
# runs several tiles and its ring's phases carry over from one to the next.
CONFIG_CASES = {
    "mma": [("bf16", 2, 259, 136, 264, "mk", "kn", True, False, False),
            ("bf16", 1, 136, 259, 200, "km", "nk", False, False, False),
            ("f32", 1, 131, 260, 164, "mk", "nk", False, True, False),
            ("f32", 2, 68, 132, 100, "km", "kn", True, True, False)],     # tf32 scalar fragment loads
    "simt": [("f32", 2, 131, 136, 76, "mk", "kn", True, False, False),    # float4 along k / n
             ("f32", 1, 140, 72, 100, "km", "nk", False, False, False),   # float4 along m / k
             ("f32", 1, 37, 45, 67, "mk", "kn", False, False, True),      # scalar loads
             ("bf16", 1, 40, 30, 41, "km", "kn", True, False, False)],
    "wgmma": [("bf16", 2, 259, 136, 456, "mk", "kn", True, False, False),   # A k-major, B n-major
              ("bf16", 1, 136, 300, 200, "km", "nk", False, False, False),  # A m-major, B k-major
              ("bf16", 2, 72, 64, 64, "km", "kn", True, False, False),      # both m / n-major
              ("bf16", 1, 130, 264, 520, "mk", "nk", False, False, False),  # both k-major
              ("bf16", 140, 16, 24, 72, "mk", "kn", True, False, False)],   # 140 tiles on 132 CTAs
}


@pytest.mark.parametrize("kernel,case", [(k, c) for k, cases in CONFIG_CASES.items() for c in cases],
                         ids=lambda x: x if isinstance(x, str) else gemm_case_id(x))
def test_gemm_tile_configurations_match_numpy(emulated, tmp_path, kernel, case):
    listed = subprocess.run([str(emulated["gemm_check"]), "gemm-configs", kernel], capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    names = listed.stdout.splitlines()
    assert names, names
    for index, name in enumerate(names):
        try:
            check_gemm(emulated, tmp_path, case, kernel, index)
        except AssertionError as e:
            raise AssertionError(f"{kernel} configuration {index} ({name}): {e}") from None


def assert_checks_pass(stdout):
    """The summary line of a program's --check: some checks ran and none failed."""
    passed, failed = (int(w) for w in stdout.strip().splitlines()[-1].split()[::2])
    assert failed == 0 and passed > 0, stdout[-4000:]


# The row kernels (nn.cu) against rows_check's float64 reference: every row kind (warp and block
# registers, streamed), with and without vector loads, float32 and float64.
@pytest.mark.parametrize("op", ["softmax", "log_softmax", "layer_norm", "layer_norm_backward", "cross_entropy",
                                "cross_entropy_backward"])
def test_row_kernels_match_float64(emulated, op):
    assert_checks_pass(run(emulated["rows_check"], "--check", op))


# attention_check's own checks (what benchmarks/gpu_session.sh runs on a GPU first), on each path.
@pytest.mark.parametrize("group", ["f32", "tf32", "bf16"])
def test_attention_check_program_passes(emulated, group):
    assert_checks_pass(run(emulated["attention_check"], "--check", group))
