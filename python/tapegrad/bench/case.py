"""What a benchmark case is: a named piece of work that each peer library does its own way.

A case's setup builds the inputs and returns one callable per peer ("tapegrad", "numpy",
"torch"; a peer is left out where the library is absent or has no equivalent). The runner calls
each once and compares the results with tapegrad's (check.py), then times them (timing.py).
Setup runs only when the case runs, so listing the cases allocates nothing.
"""
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Union


@dataclass
class Peer:
    """run: the timed call. result(out): what the check compares, given run's return value
    (default: that value itself). Peers run in order, tapegrad first, so a peer's result may
    read tapegrad's state (the masked-LM case loads tapegrad's weights into the PyTorch model)."""
    run: Callable[[], Any]
    result: Optional[Callable[[Any], Any]] = None


@dataclass
class Case:
    name: str  # carries the sizes: "sgemm 256^3", "softmax rows (4096,1024)"
    group: str  # the op family: rows, reduce, elementwise, gemm, attention, training, overhead
    setup: Callable[[], Dict[str, Union[Peer, Callable[[], Any]]]]
    work: float = 0.0  # per timed call, in `unit`s; 0: no rate is reported
    unit: str = ""  # "FLOP", "B" (bytes moved) or "token"
    limit: str = ""  # the key in limits.py's table the rate is a fraction of ("" for none)
    rtol: float = 1e-5  # the check: |peer - tapegrad| <= atol + rtol * |peer|, elementwise
    atol: float = 1e-6
    min_time: Optional[float] = None  # seconds of calls per timing; None: the suite's default
    device: str = "cpu"
    extra: Optional[Callable[[], Dict[str, Any]]] = None  # after timing: more facts for the row
    # Seconds to wait after the check and after the timings. OpenBLAS's threads spin for ~0.2 s
    # after a call, on the cores the next library needs: without the wait, whatever runs next
    # (this case's tapegrad, the next case) is timed against them. Cases whose NumPy peer calls
    # the BLAS set it.
    settle: float = 0.0


def sci(n):
    """1000 -> "1e3", 10_000_000 -> "1e7", 2_500_000 -> "2.5e6": sizes in case names."""
    mantissa, exponent = f"{n:.1e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
