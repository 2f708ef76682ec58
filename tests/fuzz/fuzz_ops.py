"""A fuzzer of tapegrad's op surface: every public function of tg and tg.nn.functional and every
Tensor method and operator, called with random arguments (tensors of every dtype with 0 / 1 /
many elements, transposed, strided and expanded views of huge shapes, NaN and inf, ints from
-2**63 to 2**63 - 1, None, strings, lists, dtypes, devices), and the backward of what comes out.

A call may return or raise a Python exception; it must not kill the interpreter, hang, raise
SystemError, or let a bare C++ library message through (std::, vector::, basic_string, ...)
instead of one naming the op. Cases run in a worker process (restarted when one dies) whose
address space is capped, so a huge allocation fails with MemoryError instead of swapping. Each
case is one integer seed: the same seed makes the same call.

    python tests/fuzz/fuzz_ops.py --minutes 30            # a long run; findings at the end
    python tests/fuzz/fuzz_ops.py --cases 2000 --seed 5   # a fixed number of cases
    python tests/fuzz/fuzz_ops.py --show 123456           # print case 123456's call, then run it here
    python tests/fuzz/fuzz_ops.py --target checkpoints --cases 5000   # tg.load on damaged files
"""
import argparse
import math
import os
import random
import select
import subprocess
import sys
import time
import warnings

SKIPPED = {  # side effects outside the process or the worker's state, or not ops at all
    "save", "load", "set_num_threads", "manual_seed", "gradcheck", "from_dlpack", "share_memory_",
    "__setattr__", "__delattr__", "__getattribute__", "__init__", "__new__", "__init_subclass__",
    "__subclasshook__", "__class__", "__dir__", "__format__", "__sizeof__", "__reduce__", "__reduce_ex__",
    "__getstate__", "register_hook", "register_post_accumulate_grad_hook", "cuda", "to",
}
ACCEPTED = (ValueError, TypeError, IndexError, RuntimeError, NotImplementedError, MemoryError, ZeroDivisionError,
            OverflowError, AttributeError, KeyError, StopIteration, BufferError)
CPP_MESSAGES = ("std::", "vector::", "basic_string", "bad_alloc", "bad_array_new_length", "map::at", "stoi", "stol")
CASE_SECONDS = 30
MEMORY_CAP = 6 << 30

INTS = [-2 ** 63, -2 ** 62, -5, -2, -1, 0, 1, 2, 3, 7, 2 ** 31, 2 ** 40, 2 ** 62, 2 ** 63 - 1]
FLOATS = [math.nan, math.inf, -math.inf, 0.0, -0.0, 0.5, -1.5, 1e-300, 1e308]
STRINGS = ["", "mean", "sum", "none", "tanh", "nearest", "bilinear", "reflect", "ij,jk->ik", "i->", "x"]
SHAPES = [(), (0,), (1,), (3,), (2, 3), (0, 3), (3, 1, 2), (1, 1), (2, 3, 4), (1, 2, 3, 4), (2, 1, 4, 4)]


def surface(tg):
    """(name, callable) of every public function and Tensor method, sorted by name."""
    import inspect
    out = []
    for prefix, space in (("tg.", tg), ("F.", tg.nn.functional)):
        for name in dir(space):
            obj = getattr(space, name)
            if name.startswith("_") or name in SKIPPED or inspect.isclass(obj) or inspect.ismodule(obj) or not callable(obj):
                continue
            out.append((prefix + name, obj))
    for name in dir(tg.Tensor):
        if name in SKIPPED or (name.startswith("_") and not (name.startswith("__") and name.endswith("__"))):
            continue
        if callable(getattr(tg.Tensor, name, None)):
            out.append(("Tensor." + name, name))
    return out


TENSOR_NAMES = {"input", "x", "a", "b", "other", "self", "weight", "bias", "target", "q", "k", "v", "query", "key",
                "value", "tensor", "mask", "index", "indices", "src", "source", "condition", "end", "exponent",
                "grad_output", "logits", "attn_mask", "running_mean", "running_var", "repeats", "elements", "test"}


def kind_of(name, annotation="", default=None):
    """The kind of value a parameter takes, from its pybind11 annotation, else its name or default."""
    a = annotation
    if "Sequence[Tensor]" in a or "list[Tensor]" in a:
        return "tensors"
    if "Tensor" in a:
        return "tensor"
    if "Sequence[typing.SupportsInt" in a or "list[int]" in a:
        return "ints"
    for key, kind in (("SupportsInt", "int"), ("SupportsFloat", "float"), ("bool", "bool"), ("str", "str"),
                      ("dtype", "dtype"), ("int", "int"), ("float", "float")):
        if key in a:
            return kind
    if name in TENSOR_NAMES:
        return "tensor"
    if name in ("tensors", "inputs", "operands"):
        return "tensors"
    if name in ("size", "shape", "sizes", "dims", "normalized_shape", "kernel_size", "output_size", "pad"):
        return "ints"
    if name in ("dim", "dim0", "dim1", "groups", "k", "n", "diagonal", "offset", "num_classes"):
        return "int"
    if name == "dtype":
        return "dtype"
    if name == "device":
        return "device"
    if default is not None:
        return {bool: "bool", int: "int", float: "float", str: "str", tuple: "ints", list: "ints"}.get(type(default), "any")
    return "any"


def parameters(fn):
    """[(name, kind, optional)] of fn's parameters after self, or None when it takes *args (or
    nothing says what it takes). pybind11 functions: from the signature line of their docstring
    (an overloaded one's first overload); Python functions: inspect.signature."""
    import inspect
    import re
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        sig = None
    if sig is not None and not any(p.kind == p.VAR_POSITIONAL for p in sig.parameters.values()):
        return [(p.name, kind_of(p.name, "", None if p.default is p.empty else p.default), p.default is not p.empty)
                for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                and p.name != "self"]
    doc = getattr(fn, "__doc__", None) or ""
    lines = [l for l in doc.splitlines() if re.match(r"^(\d+\. )?\w+\(", l)]
    if not lines or "*args" in lines[0]:
        lines = [l for l in lines if "*args" not in l]
    if not lines:
        return None
    inside = re.match(r"^(?:\d+\. )?\w+\((.*)\)( ->.*)?$", lines[0])
    if not inside:
        return None
    out, depth, current = [], 0, ""
    for ch in inside.group(1) + ",":  # split on top-level commas
        depth += ch in "[(" and 1 or (ch in "])" and -1 or 0)
        if ch == "," and depth == 0:
            part = current.strip()
            current = ""
            if not part or part in ("/", "*") or part.startswith("self"):
                continue
            name, _, rest = part.partition(":")
            annotation, _, default = rest.partition("=")
            out.append((name.strip(), kind_of(name.strip(), annotation), bool(default.strip())))
        else:
            current += ch
    return out


class Case:
    """One random call, drawn from a seed; describe() and run() draw the same values."""

    def __init__(self, tg, seed):
        self.tg, self.rng, self.seed = tg, random.Random(seed), seed

    def tensor(self):
        tg, rng = self.tg, self.rng
        dtypes = [tg.float32, tg.float64, tg.bfloat16, tg.float16, tg.int64, tg.int32, tg.int16, tg.int8, tg.uint8, tg.bool]
        shape, dtype = rng.choice(SHAPES), rng.choice(dtypes)
        values = [rng.choice([rng.gauss(0, 3), rng.choice(FLOATS), rng.randint(-3, 3)]) for _ in range(math.prod(shape))]
        if not dtype.is_floating_point:
            values = [0 if not math.isfinite(v) else int(max(-100, min(100, v))) for v in values]
        t = tg.tensor(values, dtype=tg.float64).reshape(shape).to(dtype) if shape else tg.tensor(values[0]).to(dtype)
        kind = rng.randrange(6)
        if kind == 0 and t.ndim >= 2:
            t = t.transpose(0, 1)
        elif kind == 1 and t.ndim >= 1 and t.shape[-1] > 1:
            t = t[..., ::2]
        elif kind == 2:
            t = t.reshape(-1)[:1].expand(rng.choice([1, 5, 2 ** 40])) if t.numel() else t
        if dtype.is_floating_point and rng.random() < 0.3:
            t = t.detach().requires_grad_()
        return t

    def value(self, depth=0):
        """Anything: a tensor, a number, None, a string, a list, a dtype, a device."""
        rng = self.rng
        kind = rng.randrange(12 if depth == 0 else 8)
        if kind <= 2:
            return self.tensor()
        if kind == 3:
            return self.int()
        if kind == 4:
            return rng.choice(FLOATS)
        if kind == 5:
            return rng.choice([None, True, False])
        if kind == 6:
            return rng.choice(STRINGS)
        if kind == 7:
            return rng.choice([self.tg.float32, self.tg.int64, self.tg.bool, self.tg.bfloat16, "cpu", "cuda", "cuda:7"])
        if kind <= 9:
            return self.ints()
        if kind == 10:
            return tuple(self.value(depth + 1) for _ in range(rng.randrange(4)))
        return [self.tensor() for _ in range(rng.randrange(4))]

    def int(self):
        """Mostly small (valid dims and sizes), sometimes extreme."""
        return self.rng.choice([-2, -1, 0, 1, 1, 2, 2, 3] if self.rng.random() < 0.8 else INTS)

    def ints(self):
        return [self.int() for _ in range(self.rng.randrange(5))]

    def of_kind(self, kind):
        """A value of the parameter's kind most of the time, anything at all otherwise."""
        rng = self.rng
        if rng.random() < 0.15:
            return self.value()
        return {
            "tensor": self.tensor,
            "tensors": lambda: [self.tensor() for _ in range(rng.randrange(1, 4))],
            "int": self.int,
            "ints": self.ints,
            "float": lambda: rng.choice(FLOATS + [1.0, 2.0, 0.1]),
            "bool": lambda: rng.random() < 0.5,
            "str": lambda: rng.choice(STRINGS),
            "dtype": lambda: rng.choice([self.tg.float32, self.tg.float64, self.tg.int64, self.tg.bool, self.tg.uint8]),
            "device": lambda: rng.choice(["cpu", "cuda", "meta"]),
        }.get(kind, self.value)()

    def draw(self, targets):
        rng = self.rng
        self.name, self.target = rng.choice(targets)
        fn = getattr(self.tg.Tensor, self.target) if isinstance(self.target, str) else self.target
        params = parameters(fn)
        self.args, self.kwargs = [], {}
        if isinstance(self.target, str):  # a method: self first
            self.args.append(self.tensor())
        if params is None:  # *args or no signature: a few values of any kind
            self.args += [self.value() for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 4]))]
        else:
            positional = True
            for name, kind, optional in params:
                if optional and rng.random() < 0.6:
                    positional = False  # skipped: later ones go by keyword
                    continue
                value = self.of_kind(kind)
                if positional and (not optional or rng.random() < 0.5):
                    self.args.append(value)
                else:
                    positional = False
                    self.kwargs[name] = value
        self.then_backward = rng.random() < 0.5
        return self

    def describe(self):
        def show(v):
            if isinstance(v, self.tg.Tensor):
                return (f"<tensor {tuple(v.shape)} {v.dtype} stride={v.stride()}"
                        f"{' requires_grad' if v.requires_grad else ''}>")
            if isinstance(v, (list, tuple)):
                inner = ", ".join(show(x) for x in v)
                return f"[{inner}]" if isinstance(v, list) else f"({inner}{',' if len(v) == 1 else ''})"
            return repr(v)
        call = ", ".join([show(a) for a in self.args] + [f"{k}={show(v)}" for k, v in self.kwargs.items()])
        return f"case {self.seed}: {self.name}({call}){' then .sum().backward()' if self.then_backward else ''}"

    def run(self):
        """'returned' or the name of the exception raised (an accepted one)."""
        fn = getattr(self.args[0], self.target) if isinstance(self.target, str) else self.target
        args = self.args[1:] if isinstance(self.target, str) else self.args
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                out = fn(*args, **self.kwargs)
                repr(out)
                if self.then_backward:
                    for t in (out if isinstance(out, (tuple, list)) else [out]):
                        if isinstance(t, self.tg.Tensor) and t.requires_grad:
                            t.float().sum().backward()
                            break
                return "returned"
            except ACCEPTED as e:
                message = str(e)
                if any(m in message for m in CPP_MESSAGES):
                    return f"CPP-MESSAGE {type(e).__name__}: {message[:200]}"
                return type(e).__name__


class CheckpointCase:
    """One damaged checkpoint: a valid file from tg.save with a few random edits (the header
    length, bytes of the JSON, entries' dtype / shape / data_offsets, truncation, junk), loaded
    with tg.load, which must answer ValueError (or MemoryError) and nothing else."""

    def __init__(self, tg, seed, directory):
        self.tg, self.rng, self.seed, self.directory = tg, random.Random(seed), seed, directory

    def valid_file(self):
        import json
        tg = self.tg
        path = os.path.join(self.directory, "valid.safetensors")
        state = {"w": tg.arange(12).float().reshape(3, 4), "b": tg.ones(4, dtype=tg.bfloat16), "n": tg.tensor(7),
                 "mask": tg.tensor([True, False]), "nested": {"h": tg.zeros(2, dtype=tg.float64)}}
        tg.save(state, path, metadata={"note": "fuzz"})
        with open(path, "rb") as f:
            data = f.read()
        n = int.from_bytes(data[:8], "little")
        return data, n, json.loads(data[8:8 + n])

    def draw(self):
        import json
        rng = self.rng
        data, n, header = self.valid_file()
        edits = []
        for _ in range(rng.randint(1, 3)):
            kind = rng.randrange(7)
            names = [k for k in header if k != "__metadata__"]
            name = rng.choice(names)
            if kind < 4 and not isinstance(header[name], dict):
                continue  # an earlier edit replaced this entry
            if kind == 0:
                header[name]["dtype"] = rng.choice(["F32", "BF16", "I64", "X9", "", 5, None, "F8_E4M3"])
            elif kind == 1:
                header[name]["shape"] = rng.choice([[], [-1], [2 ** 62, 2 ** 62], [0, 2 ** 62], ["3"], [3.0], 3, None,
                                                    [2 ** 64], [1] * 70])
            elif kind == 2:
                offsets = header[name].get("data_offsets")
                if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)):
                    continue
                a, b = offsets
                header[name]["data_offsets"] = rng.choice([[b, a], [a, b + 1], [a + 1, b + 1], [0, 2 ** 63], [-8, b],
                                                           [a], [a, b, b], None, [a + 2, b + 2]])
            elif kind == 3:
                header[name] = rng.choice([None, [], {"dtype": "F32"}, {**header[name], "extra": 1}])
            elif kind == 4:
                header["__metadata__"] = rng.choice([None, [], {"k": 1}, {"__tapegrad_structure__": "{bad"},
                                                     {"__tapegrad_checksum__": "0" * 64}])
            else:
                edits.append(rng.choice(["length", "truncate", "append", "flip", "json"]))
            if kind < 5:
                edits.append(f"{kind}:{name}")
        text = json.dumps(header).encode()
        body = data[8 + n:]
        blob = bytearray(len(text).to_bytes(8, "little") + text + body)
        for edit in edits:
            if edit == "length":
                blob[:8] = rng.choice([0, 1, len(text) - 1, len(blob), 2 ** 63, 2 ** 64 - 1, 10 ** 9]).to_bytes(8, "little")
            elif edit == "truncate":
                del blob[rng.randrange(len(blob)):]
            elif edit == "append":
                blob += bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
            elif edit == "flip" and blob:
                blob[rng.randrange(len(blob))] ^= 1 << rng.randrange(8)
            elif edit == "json":
                blob[8:8 + len(text)] = rng.choice([b"[", b"{}", b"null", b"\xff" * len(text), b"{" * len(text)])[:len(text)].ljust(len(text), b" ")
        self.blob, self.edits = bytes(blob), edits
        return self

    def describe(self):
        return f"checkpoint case {self.seed}: edits {self.edits}, {len(self.blob)} bytes"

    def run(self):
        path = os.path.join(self.directory, "damaged.safetensors")
        with open(path, "wb") as f:
            f.write(self.blob)
        try:
            self.tg.load(path)
            return "returned"
        except (ValueError, MemoryError) as e:
            return type(e).__name__


def worker(target):
    """Runs the seeds read from stdin, one per line; answers 'done SEED OUTCOME' for each."""
    import resource
    import tempfile
    import tapegrad as tg
    # No cap under a sanitizer (it reserves terabytes of address space; tests/sanitize.sh caps
    # allocations instead) or with a GPU (its driver reserves address space for unified memory).
    if "san.so" not in os.environ.get("LD_PRELOAD", "") and not tg.cuda.is_available():
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    targets = surface(tg)
    directory = tempfile.mkdtemp(prefix="tapegrad-fuzz-")
    for line in sys.stdin:
        seed = int(line)
        try:
            case = Case(tg, seed).draw(targets) if target == "ops" else CheckpointCase(tg, seed, directory).draw()
            outcome = case.run()
        except BaseException as e:  # noqa: BLE001 -- an exception type the API should not raise
            outcome = f"WRONG-TYPE {type(e).__name__}: {str(e)[:200]}"
        sys.stdout.write(f"done {seed} {outcome}\n")
        sys.stdout.flush()


class Pool:
    """The worker process, restarted after a death or a hang."""

    def __init__(self, target):
        import tempfile
        self.proc, self.target = None, target
        self.stderr = tempfile.TemporaryFile(mode="w+")  # what a dying worker said (a sanitizer's report)

    def start(self):
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONFAULTHANDLER="0")
        self.stderr.seek(0)
        self.stderr.truncate()
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", self.target], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, text=True, bufsize=1, env=env)

    def last_words(self, lines=12):
        self.stderr.seek(0)
        said = [line.rstrip() for line in self.stderr.read().splitlines() if line.strip()]
        return "\n".join("      " + line[:200] for line in said[-lines:])

    def run(self, seed):
        """The outcome of `seed`, or 'DEATH signal N' / 'HANG'."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        self.proc.stdin.write(f"{seed}\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], CASE_SECONDS)
        line = self.proc.stdout.readline() if ready else None
        if line and line.startswith("done "):
            return line.split(" ", 2)[2].strip()
        self.proc.kill()
        code = self.proc.wait()
        self.proc = None
        return "HANG" if not ready else f"DEATH exit {code}\n{self.last_words()}"

    def close(self):
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait()
        self.stderr.close()


def fuzz(seeds, target="ops", deadline=None, progress=False):
    """Runs the cases of `target` ('ops' or 'checkpoints'); returns (counts of outcomes, findings
    as reproducer lines)."""
    import tempfile
    import tapegrad as tg
    targets = surface(tg)
    directory = tempfile.mkdtemp(prefix="tapegrad-fuzz-")
    pool, counts, findings = Pool(target), {}, []
    try:
        for n, seed in enumerate(seeds):
            if deadline is not None and time.time() > deadline:
                break
            outcome = pool.run(seed)
            kind = outcome.split(" ")[0] if outcome.split(" ")[0].isupper() else outcome
            counts[kind] = counts.get(kind, 0) + 1
            if outcome.split(" ")[0] in ("DEATH", "HANG", "WRONG-TYPE", "CPP-MESSAGE"):
                case = Case(tg, seed).draw(targets) if target == "ops" else CheckpointCase(tg, seed, directory).draw()
                findings.append(f"{outcome}\n    {case.describe()}")
            if progress and n % 500 == 0:
                print(f"{n} cases, {len(findings)} findings", flush=True)
    finally:
        pool.close()
    return counts, findings


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", choices=["ops", "checkpoints"], help=argparse.SUPPRESS)
    ap.add_argument("--target", choices=["ops", "checkpoints"], default="ops",
                    help="the op surface, or tg.load on damaged checkpoints")
    ap.add_argument("--minutes", type=float, default=None)
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0, help="the first case's seed")
    ap.add_argument("--show", type=int, default=None, help="print one case and run it in this process")
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker)
    if args.show is not None:
        import tapegrad as tg
        case = Case(tg, args.show).draw(surface(tg))
        print(case.describe(), flush=True)
        print("->", Case(tg, args.show).draw(surface(tg)).run())
        return 0
    deadline = time.time() + 60 * args.minutes if args.minutes else None
    count = 10 ** 12 if args.minutes else args.cases
    start = time.time()
    counts, findings = fuzz(range(args.seed, args.seed + count), args.target, deadline, progress=True)
    print(f"\n{sum(counts.values())} cases in {time.time() - start:.0f} s: " +
          ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])))
    print(f"{len(findings)} findings" + "".join("\n" + f for f in findings))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
