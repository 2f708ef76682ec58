"""The bfloat16 tensor-core attention kernels (csrc/kernels/cuda/attention_tc.cu) run on the CPU
through a lane-by-lane emulation of the sm_80 instructions they use (tests/cuda_emulator/:
ldmatrix, mma.sync, cp.async and the warp shuffles, from their PTX ISA definitions), against
tapegrad's CPU attention in float64 on the same bfloat16 inputs. No GPU is needed: this checks
the kernels' tiling, fragment layouts, masking, online softmax and gradients wherever the tests
run; benchmarks/gpu_session.sh checks them on the hardware."""
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import tapegrad as tg

ROOT = Path(__file__).resolve().parents[1]
EMULATOR = ROOT / "tests" / "cuda_emulator"
GXX = shutil.which("g++")
pytestmark = pytest.mark.skipif(GXX is None or not (ROOT / "csrc").is_dir(), reason="needs g++ and the source tree")


@pytest.fixture(scope="module")
def checker(tmp_path_factory):
    exe = tmp_path_factory.mktemp("emulator") / "attention_tc_check"
    cmd = [GXX, "-std=c++20", "-O2", "-pthread", "-DTG_WARP_EMULATOR", f"-I{EMULATOR / 'include'}", f"-I{EMULATOR}",
           f"-I{ROOT / 'csrc'}", str(EMULATOR / "attention_tc_check.cpp"), "-o", str(exe)]
    built = subprocess.run(cmd, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    return exe


def bf16(a):
    """float32 values rounded to bfloat16 (what the kernels read)."""
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


CASES = [  # N, L, S, E, Ev, causal, mask, dropout_p, scalar_loads
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
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "N{}-L{}-S{}-E{}-Ev{}{}-{}-p{}{}".format(
    *c[:5], "-causal" if c[5] else "", c[6] or "nomask", c[7], "-scalar" if c[8] else ""))
def test_tensor_core_attention_matches_float64(checker, tmp_path, case):
    N, L, S, E, Ev, causal, mask_kind, p, scalar_loads = case
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
    args = [tmp_path, N, L, S, E, Ev, int(causal), mask_row, mask_col, p, seed, int(scalar_loads)]
    ran = subprocess.run([str(checker)] + [str(x) for x in args], capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr
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
        lse = np.where(np.isinf(top), -np.inf, top + np.log(np.exp(scores - np.where(np.isinf(top), 0, top)[..., None]).sum(-1)))
    want = {"out": out.detach().numpy(), "lse": lse, "dq": qt.grad.numpy() if L * S else np.zeros_like(q),
            "dk": kt.grad.numpy() if L * S else np.zeros_like(k), "dv": vt.grad.numpy() if L * S else np.zeros_like(v)}
    for name, ref in want.items():
        ref = np.asarray(ref, np.float64).ravel()
        mine = got[name].astype(np.float64)
        assert mine.shape == ref.shape, name
        finite = np.isfinite(ref)
        assert np.array_equal(np.isfinite(mine), finite), f"{name}: infinities differ"
        if name == "lse":
            assert np.array_equal(mine[~finite], ref[~finite]), "lse of a row that sees nothing is -inf"
        if finite.any():
            scale = max(np.abs(ref[finite]).max(), 1e-3)
            err = np.abs(mine[finite] - ref[finite]).max() / scale
            assert err <= 2.5e-2, f"{name}: max error {err:.3g} of the largest value"
