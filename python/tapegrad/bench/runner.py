"""Running the cases: for each, its setup, the check (each peer once, compared with tapegrad),
then the timing, one case at a time so that a case's memory is gone before the next one starts.

A case that fails its check is still timed (its row says MISMATCH); the run's exit status is 1
when any case failed its check or raised, so CI notices without the table being cut short.
"""
import gc
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .case import Case, Peer
from .check import compare
from .peers import sync_for, to_numpy
from .report import Table, print_failures, print_extras, write_json
from .timing import measure


@dataclass
class Settings:
    device: str = "cpu"
    quick: bool = False
    min_time: float = 0.3  # seconds of calls per peer and case, unless the case sets its own
    repeat: int = 7
    limits: Dict[str, float] = field(default_factory=dict)
    peers: List[str] = field(default_factory=lambda: ["numpy"])  # the table's peer columns, in order

    @classmethod
    def for_run(cls, device, quick, limits, peers):
        return cls(device, quick, 0.03 if quick else 0.3, 3 if quick else 7, limits, peers)


def _describe(error):
    return f"{type(error).__name__}: {error}"[:300]


def _ordered(peers):
    """Tapegrad first: its result is the one every peer is compared with (and may be read by a
    peer's result, see Peer)."""
    peers = {name: p if isinstance(p, Peer) else Peer(p) for name, p in peers.items()}
    return dict(sorted(peers.items(), key=lambda item: item[0] != "tapegrad"))


def _check(case, peers, row):
    results = {}
    for name, peer in peers.items():
        try:
            out = peer.run()
            sync_for(name, case.device)()
            results[name] = to_numpy(peer.result(out) if peer.result else out)
        except Exception as e:  # recorded; the other peers still run
            row["errors"][name] = _describe(e)
    reference = results.pop("tapegrad", None)
    if reference is None:
        return
    row["compared_with"] = sorted(results)
    for name, arrays in results.items():
        problems = compare(reference, arrays, case.rtol, case.atol)
        if problems:
            row["mismatches"].append({"peer": name, "problems": problems})


def _rates(case, row, limits):
    if not case.work:
        return
    for name, t in row["peers"].items():
        t["rate"] = case.work / t["seconds"]
    mine = row["peers"].get("tapegrad")
    if mine:
        row["rate"] = mine["rate"]
        if limits.get(case.limit):
            row["fraction_of_limit"] = mine["rate"] / limits[case.limit]


def _time(case, peers, row, settings, min_time):
    time.sleep(case.settle)
    # NumPy last: its BLAS threads, spinning after its calls, then disturb no other peer
    for name in sorted(peers, key=lambda name: name == "numpy"):
        if name in row["errors"]:
            continue
        try:
            t = measure(peers[name].run, min_time, settings.repeat, sync_for(name, case.device))
            row["peers"][name] = {"seconds": t.seconds, "number": t.number, "repeat": t.repeat, "runs": t.runs}
        except Exception as e:
            row["errors"][name] = _describe(e)
    time.sleep(case.settle)
    mine = row["peers"].get("tapegrad")
    for name, t in row["peers"].items():
        if mine and name != "tapegrad":
            row["ratios"][name] = mine["seconds"] / t["seconds"]


def run_case(case: Case, settings: Settings) -> dict:
    """One row: the check's outcome, each peer's time, tapegrad / peer ratios, tapegrad's rate."""
    min_time = case.min_time if case.min_time is not None else settings.min_time
    row = {"case": case.name, "group": case.group, "device": case.device, "work": case.work, "unit": case.unit,
           "limit": case.limit or None, "min_time": min_time, "repeat": settings.repeat, "peers": {},
           "ratios": {}, "mismatches": [], "errors": {}}
    try:
        peers = _ordered(case.setup())
    except Exception as e:
        row["errors"]["setup"] = _describe(e)
        peers = {}
    _check(case, peers, row)
    if peers and "tapegrad" not in row["errors"]:  # timing peers against a failed tapegrad says nothing
        _time(case, peers, row, settings, min_time)
    del peers
    gc.collect()  # the case's tensors go now, before the next case allocates its own
    _rates(case, row, settings.limits)
    if case.extra is not None and "tapegrad" in row["peers"]:
        try:
            row["extra"] = case.extra()
        except Exception as e:
            row["errors"]["extra"] = _describe(e)
    # "unchecked": no peer to compare with (gelu, the tiny graph without PyTorch); not a failure
    row["check"] = ("error" if row["errors"] else "mismatch" if row["mismatches"] else
                    "ok" if row.get("compared_with") else "unchecked")
    return row


def run_and_report(cases: List[Case], settings: Settings, json_path: Optional[str] = None,
                   record: Optional[dict] = None) -> int:
    """Runs the cases, printing each row as it finishes; then the failures and the extras, and
    the JSON. Returns the exit status: 1 when a case mismatched or raised, else 0."""
    table = Table(settings.peers, max([len(c.name) for c in cases] + [30]))
    table.print_header()
    rows = []
    for case in cases:
        row = run_case(case, settings)
        rows.append(row)
        table.print_row(row)
    print_extras(rows)
    failed = print_failures(rows)
    if json_path:
        write_json(json_path, dict(record or {}, quick=settings.quick, default_min_time=settings.min_time,
                                   default_repeat=settings.repeat, limits=settings.limits, rows=rows))
    return 1 if failed else 0
