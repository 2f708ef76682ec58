"""GPU benchmarks, side by side with PyTorch CUDA in one run, with the fraction of the measured
hardware limit (issue: CUDA backend):

  limits     device-to-device copy bandwidth (PyTorch clone of 1e8 float32) and cuBLAS float32 /
             bfloat16 matmul rates (PyTorch at 4096^3)
  kernels    elementwise add at 1e8 elements, softmax and layer_norm rows, matmul 4096^3 in
             float32 / TF32 / bfloat16 with tapegrad's own kernels and with cuBLAS, attention
             forward + backward (batch 8, 16 heads, T 1024 and 4096, head dim 64 and 128)
  training   Adam over 100M parameters, the masked-LM training step of bench_train.py

Every case times a closure with the device synchronised before and after (wall clock over
enough calls to fill ~0.3 s); a case tapegrad cannot run yet prints its error instead of a time.

    python benchmarks/bench_cuda.py [--json out/bench_cuda.json] [--quick]
"""
import argparse
import time

import numpy as np

import tapegrad as tg
from harness import fmt_time

try:
    import torch
except ImportError:
    torch = None


def timed(fn, sync, min_time=0.3, repeat=5):
    """Seconds per call: the best of up to `repeat` runs of enough calls to last min_time / repeat.
    A call that alone outlasts min_time is timed twice, not `repeat` times (slow cases stay cheap)."""
    t0 = time.perf_counter()
    fn()  # warm-up: allocator, autotuning, first-launch costs
    sync()
    if time.perf_counter() - t0 >= min_time:
        repeat = 2
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        sync()
        first = time.perf_counter() - t0
        if first >= min_time / repeat or number >= 1 << 16:
            break
        number *= 2
    best = first / number
    for _ in range(repeat - 1):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        sync()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def tg_sync():
    tg.cuda.synchronize()


def torch_sync():
    torch.cuda.synchronize()


class Table:
    def __init__(self, only=()):
        self.rows = []
        self.only = only  # substrings of the case names to run (all when empty); the limits always run

    def wanted(self, case):
        return not self.only or case.startswith("limit") or any(s in case for s in self.only)

    def add(self, case, tg_fn=None, torch_fn=None, work=None, unit=None, limit=None):
        """work: bytes or flops per call; unit: 'GB/s' or 'TFLOP/s'; limit: the rate that counts
        as 100% (the measured copy bandwidth or cuBLAS rate)."""
        row = {"case": case}
        if not self.wanted(case):
            return row
        for name, fn, sync in (("tapegrad", tg_fn, tg_sync), ("torch", torch_fn, torch_sync)):
            if fn is None:
                continue
            try:
                row[name] = timed(fn, sync)
            except Exception as e:  # report, keep going: one missing kernel must not hide the rest
                row[name + "_error"] = f"{type(e).__name__}: {e}"[:120]
        if work and unit:
            scale = 1e9 if unit == "GB/s" else 1e12
            for name in ("tapegrad", "torch"):
                if name in row:
                    row[name + "_rate"] = work / row[name] / scale
            if limit and "tapegrad_rate" in row:
                row["fraction_of_limit"] = row["tapegrad_rate"] / limit
        row["unit"] = unit
        self.rows.append(row)
        self.print_row(row)
        return row

    @staticmethod
    def print_row(r):
        def cell(name):
            if name in r:
                rate = f" ({r[name + '_rate']:.1f} {r['unit']})" if name + "_rate" in r else ""
                return f"{fmt_time(r[name])}{rate}"
            return r.get(name + "_error", "-")
        ratio = f"{r['tapegrad'] / r['torch']:.2f}" if "tapegrad" in r and "torch" in r else "-"
        frac = f"{100 * r['fraction_of_limit']:.0f}%" if "fraction_of_limit" in r else "-"
        print(f"{r['case']:58s} {cell('tapegrad'):>32s} {cell('torch'):>32s} {ratio:>7s} {frac:>6s}", flush=True)


def limits(table, n):
    """The measured ceilings: copy bandwidth and cuBLAS matmul rates, through PyTorch."""
    x = torch.empty(n, device="cuda")
    copy = table.add("limit: device copy (torch clone, 1e8 f32)", torch_fn=lambda: x.clone(), work=8 * n, unit="GB/s")
    rates = {"copy_GBps": copy["torch_rate"]}
    for dtype, key in ((torch.float32, "f32"), (torch.bfloat16, "bf16")):
        a = torch.randn(4096, 4096, device="cuda", dtype=dtype)
        torch.backends.cuda.matmul.allow_tf32 = False
        r = table.add(f"limit: cuBLAS matmul 4096^3 {key} (torch)", torch_fn=lambda: a @ a, work=2 * 4096 ** 3,
                      unit="TFLOP/s")
        rates[key + "_TFLOPs"] = r["torch_rate"]
    del x
    torch.cuda.empty_cache()
    return rates


def kernels(table, lim, n):
    a, b = tg.randn(n, device="cuda"), tg.randn(n, device="cuda")
    ta, tb = torch.randn(n, device="cuda"), torch.randn(n, device="cuda")
    table.add("add, 1e8 float32", lambda: a + b, lambda: ta + tb, work=12 * n, unit="GB/s", limit=lim["copy_GBps"])
    del a, b, ta, tb
    for rows, cols in ((8192, 8192), (65536, 1024)):
        x, tx = tg.randn(rows, cols, device="cuda"), torch.randn(rows, cols, device="cuda")
        table.add(f"softmax rows ({rows}, {cols})", lambda: tg.softmax(x, -1), lambda: torch.softmax(tx, -1),
                  work=8 * rows * cols, unit="GB/s", limit=lim["copy_GBps"])
        table.add(f"layer_norm rows ({rows}, {cols})", lambda: tg.nn.functional.layer_norm(x, cols),
                  lambda: torch.nn.functional.layer_norm(tx, (cols,)), work=8 * rows * cols, unit="GB/s",
                  limit=lim["copy_GBps"])
    m = 4096
    flops = 2 * m ** 3
    for dtype_name, tf32 in (("float32", False), ("float32", True), ("bfloat16", False)):
        label = "tf32" if tf32 else dtype_name
        limit = lim["bf16_TFLOPs"] if dtype_name == "bfloat16" else lim["f32_TFLOPs"]
        try:
            x = tg.randn(m, m, device="cuda").to(getattr(tg, dtype_name))
        except Exception as e:
            table.rows.append({"case": f"matmul 4096^3 {label}", "tapegrad_error": str(e)[:120]})
            print(f"matmul 4096^3 {label}: {e}")
            continue
        tx = torch.randn(m, m, device="cuda", dtype=getattr(torch, dtype_name))
        torch.backends.cuda.matmul.allow_tf32 = tf32
        tg.cuda.allow_tf32(tf32)
        backends = ["own"] + (["cublas"] if tg.cuda.cublas_built() else [])
        for backend in backends:
            tg.cuda.set_matmul_backend(backend)
            table.add(f"matmul 4096^3 {label}, {backend}", lambda: x @ x, lambda: tx @ tx, work=flops,
                      unit="TFLOP/s", limit=limit)
    tg.cuda.allow_tf32(False)
    torch.backends.cuda.matmul.allow_tf32 = False
    for T in (1024, 4096):
        for D in (64, 128):
            for dtype_name in ("bfloat16", "float32"):
                attention(table, 8, 16, T, D, dtype_name)


def attention(table, B, H, T, D, dtype_name):
    case = f"attention fwd+bwd B{B} H{H} T{T} D{D} {dtype_name}" + (" (torch flash)" if dtype_name == "bfloat16" else "")
    if not table.wanted(case):
        return
    flops = 4 * B * H * T * T * D * 3.5  # forward 2 matmuls, backward 5 (FlashAttention's count)
    try:
        q, k, v = (tg.randn(B, H, T, D, device="cuda").to(getattr(tg, dtype_name)).requires_grad_() for _ in range(3))
        g = tg.randn(B, H, T, D, device="cuda").to(getattr(tg, dtype_name))

        def tg_step():
            q.grad = k.grad = v.grad = None
            tg.nn.functional.scaled_dot_product_attention(q, k, v).backward(g)
    except Exception as e:
        table.rows.append({"case": case, "tapegrad_error": str(e)[:120]})
        print(f"{case}: {e}")
        tg_step = None
    tq, tk, tv = (torch.randn(B, H, T, D, device="cuda", dtype=getattr(torch, dtype_name), requires_grad=True)
                  for _ in range(3))
    tgrad = torch.randn(B, H, T, D, device="cuda", dtype=getattr(torch, dtype_name))

    # The yardstick is PyTorch's flash backend (FlashAttention-2) for bfloat16; on Hopper its
    # default choice may be cuDNN's kernel instead. Float32 has no flash kernel: the default
    # (memory-efficient) one.
    from torch.nn.attention import SDPBackend, sdpa_kernel
    backends = [SDPBackend.FLASH_ATTENTION] if dtype_name == "bfloat16" else [SDPBackend.EFFICIENT_ATTENTION]

    def torch_step():
        tq.grad = tk.grad = tv.grad = None
        with sdpa_kernel(backends):
            torch.nn.functional.scaled_dot_product_attention(tq, tk, tv).backward(tgrad)

    table.add(case, tg_step, torch_step, work=flops, unit="TFLOP/s")


def training(table, lim, quick):
    n_params = 10_000_000 if quick else 100_000_000
    chunks = 10
    ps = [tg.randn(n_params // chunks, device="cuda").requires_grad_() for _ in range(chunks)]
    for p in ps:
        p.grad = tg.randn(n_params // chunks, device="cuda")
    opt = tg.optim.Adam(ps, lr=1e-3)
    tps = [torch.randn(n_params // chunks, device="cuda", requires_grad=True) for _ in range(chunks)]
    for p in tps:
        p.grad = torch.randn(n_params // chunks, device="cuda")
    topt = torch.optim.Adam(tps, lr=1e-3, fused=True)
    table.add(f"Adam step, {n_params / 1e6:.0f}M parameters", opt.step, topt.step, work=7 * 4 * n_params,
              unit="GB/s", limit=lim["copy_GBps"])
    del ps, tps, opt, topt
    import bench_train as bt  # the same model and batch as the CPU benchmark, on the GPU
    rng = np.random.default_rng(0)
    batch = bt.masked_batch(rng)
    try:
        tg_step = bt.tg_step_fn(batch, device="cuda")
    except Exception as e:
        tg_step = None
        print(f"masked-LM step: {e}")
    table.add("masked-LM step (bench_train.py's model)", tg_step, bt.torch_step_fn(batch, device="cuda"))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default=None)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke test)")
    ap.add_argument("--only", nargs="*", default=(), help="run the cases whose names contain one of these")
    args = ap.parse_args(argv)
    if not tg.cuda.is_available() or torch is None or not torch.cuda.is_available():
        raise SystemExit("bench_cuda.py needs a CUDA GPU, tapegrad built with CUDA, and PyTorch with CUDA")
    n = 10_000_000 if args.quick else 100_000_000
    print(f"device: {torch.cuda.get_device_name()} | matmul backend default: {tg.cuda.matmul_backend()} | "
          f"cuBLAS built: {tg.cuda.cublas_built()}")
    print(f"{'case':58s} {'tapegrad':>32s} {'torch':>32s} {'tg/torch':>7s} {'limit':>6s}")
    table = Table(args.only)
    lim = limits(table, n)
    kernels(table, lim, n)
    training(table, lim, args.quick)
    if args.json:
        import json
        import os
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "limits": lim, "rows": table.rows}, f, indent=2)


if __name__ == "__main__":
    main()
