"""The run's outputs: one table row per case (printed as each case finishes), the failures and
extra facts under it, and the JSON record."""
import json
import os

from .limits import LABELS


def fmt_time(s):
    if s < 1e-6:
        return f"{s * 1e9:.0f} ns"
    if s < 1e-3:
        return f"{s * 1e6:.2f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.3f} s"


_UNITS = {"FLOP": "FLOP/s", "B": "B/s", "token": "tok/s"}


def fmt_rate(rate, unit):
    """1.23 GFLOP/s, 45.6 GB/s, 17.9 ktok/s, 1.02 TFLOP/s."""
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, "")):
        if rate >= scale or scale == 1:
            return f"{rate / scale:.3g} {prefix}{_UNITS.get(unit, unit + '/s')}"


class Table:
    """Columns: case, tapegrad's time, per peer its time and tapegrad / peer (below 1: tapegrad
    is faster), tapegrad's rate and its fraction of this machine's limit, the check."""

    def __init__(self, peers, case_width=44):
        self.peers = list(peers)
        self.width = case_width

    def print_header(self):
        head = f"{'case':{self.width}s} {'tapegrad':>10s}"
        head += "".join(f" {p:>10s} {'tg/' + p:>8s}" for p in self.peers)
        head += f" {'rate (tapegrad)':>16s} {'limit':>6s}  check"
        print(head)
        print("-" * len(head), flush=True)

    def print_row(self, row):
        def time_of(peer):
            t = row["peers"].get(peer)
            return fmt_time(t["seconds"]) if t else ("error" if peer in row["errors"] else "-")

        line = f"{row['case']:{self.width}s} {time_of('tapegrad'):>10s}"
        for p in self.peers:
            ratio = row["ratios"].get(p)
            line += f" {time_of(p):>10s} {f'{ratio:.2f}' if ratio is not None else '-':>8s}"
        rate = fmt_rate(row["rate"], row["unit"]) if "rate" in row else "-"
        frac = f"{100 * row['fraction_of_limit']:.0f}%" if "fraction_of_limit" in row else "-"
        check = row["check"].upper() if row["check"] in ("mismatch", "error") else row["check"]  # failures stand out
        line += f" {rate:>16s} {frac:>6s}  {check}"
        print(line, flush=True)


def print_limits(limits):
    for key, value in limits.items():
        unit = "B" if key == "bandwidth" else "FLOP"
        print(f"  limit {LABELS.get(key, key)}: {fmt_rate(value, unit)}")


def print_extras(rows):
    """Facts a case adds beyond its time, e.g. the masked-LM step's peak memory per framework."""
    for row in rows:
        for key, value in row.get("extra", {}).items():
            if isinstance(value, dict):
                value = ", ".join(f"{k} {v}" for k, v in value.items())
            print(f"{row['case']}: {key}: {value}")


def print_failures(rows):
    """Each mismatch (which case, which peer, by how much) and each error. Returns their count."""
    failed = [r for r in rows if r["check"] in ("mismatch", "error")]
    if failed:
        print(f"\n{len(failed)} case(s) FAILED their check or raised:")
    for row in failed:
        for m in row["mismatches"]:
            for problem in m["problems"]:
                print(f"  MISMATCH {row['case']}: {m['peer']} vs tapegrad: {problem}")
        for where, error in row["errors"].items():
            print(f"  ERROR {row['case']} ({where}): {error}")
    return len(failed)


def write_json(path, record):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(record, f, indent=2)
    print(f"(written to {path})")
