"""Matrix multiplication: square sgemm and dgemm 64..2048 and the masked-LM step's float32
shapes (M x K x N: the feed-forward layers 2048x128x512 and 2048x512x128, the output layer over
the masked positions 307x128x8192). Compute-bound: 2 M K N FLOPs against the FMA peak."""
from ..case import Case
from ..peers import as_tg, as_torch, has_torch, rng

# unit roundoff per dtype: float32 2^-24, float64 2^-53
_ROUNDOFF = {"float32": 2.0 ** -24, "float64": 2.0 ** -53}


def tolerance(dtype, k):
    """Entries of A B with standard normal inputs have size ~sqrt(K), and a K-term float sum
    carries ~u K of rounding in any order: atol 8 u K bounds two libraries' difference."""
    u = _ROUNDOFF[dtype]
    return dict(rtol=8 * u, atol=8 * u * k)


def gemm(m, k, n, dtype="float32", name=None):
    def setup():
        r = rng()
        a, b = r.standard_normal((m, k)).astype(dtype), r.standard_normal((k, n)).astype(dtype)
        at, bt = as_tg(a), as_tg(b)
        peers = {"tapegrad": lambda: at @ bt, "numpy": lambda: a @ b}
        if has_torch():
            ao, bo = as_torch(a), as_torch(b)
            peers["torch"] = lambda: ao @ bo
        return peers
    prefix = "sgemm" if dtype == "float32" else "dgemm"
    name = name or f"{prefix} {m}x{k}x{n} (MxKxN)"
    return Case(name, "gemm", setup, work=2 * m * k * n, unit="FLOP",
                limit="flops_f32" if dtype == "float32" else "flops_f64", settle=0.3, **tolerance(dtype, k))


def cases(quick):
    sizes = (64, 128, 256) if quick else (64, 128, 256, 512, 1024, 2048)
    out = [gemm(s, s, s, dtype, name=f"{'sgemm' if dtype == 'float32' else 'dgemm'} {s}^3")
           for dtype in ("float32", "float64") for s in sizes]
    return out + [gemm(m, k, n) for m, k, n in ((2048, 128, 512), (2048, 512, 128), (307, 128, 8192))]

