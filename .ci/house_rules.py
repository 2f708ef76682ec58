"""The house rules CI enforces (issue 14): no source file over 600 lines, and no block of code
written twice in csrc/.

  python .ci/house_rules.py            check; exit status 1 with the offending files / places
  python .ci/house_rules.py --repeats  list every repeated block in csrc/ (to review the baseline)

Source files are the tracked .py .cpp .h .cu .cuh .sh files and CMakeLists.txt outside tests/
(tests are long tables by design). A repeated block is a run of MIN_LINES or more code lines
(blank lines, comments, #include lines and lone braces ignored; whitespace normalised) that appears in two
places. The blocks csrc/ already had when the rule came in are listed, one per line, in
.ci/known_repeats.txt (a block's first line and its places); a block not listed fails the check.
"""
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 600
MIN_LINES = 6
SOURCE_SUFFIXES = {".py", ".cpp", ".h", ".cu", ".cuh", ".sh"}
KNOWN = ROOT / ".ci" / "known_repeats.txt"


def tracked_files():
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / line for line in out.splitlines() if line]


def is_source(path):
    rel = path.relative_to(ROOT).as_posix()
    return not rel.startswith("tests/") and (path.suffix in SOURCE_SUFFIXES or path.name == "CMakeLists.txt")


def code_lines(path):
    """(line number, normalised text) of the lines that carry code."""
    out = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        text = " ".join(line.split())
        if not text or text.startswith(("//", "#include")) or text in ("{", "}", "};", "});", ")"):
            continue
        out.append((number, text))
    return out


def repeated_blocks(files):
    """{first line of the block: sorted places "path:line"} for every window of MIN_LINES code
    lines seen in more than one place (overlapping windows of one long repeat are merged)."""
    places = defaultdict(list)
    for path in files:
        lines = code_lines(path)
        for i in range(len(lines) - MIN_LINES + 1):
            key = "\n".join(text for _, text in lines[i:i + MIN_LINES])
            places[key].append((path.relative_to(ROOT).as_posix(), lines[i][0]))
    blocks = {}
    seen = set()
    for key, where in places.items():
        if len(where) < 2:
            continue
        files_lines = tuple(sorted(where))
        # a long repeat gives one window per line: keep the first window of each run
        if any((f, n - 1) in seen for f, n in files_lines):
            seen.update(files_lines)
            continue
        seen.update(files_lines)
        blocks[key.splitlines()[0]] = [f"{f}:{n}" for f, n in files_lines]
    return blocks


def known_blocks():
    if not KNOWN.exists():
        return set()
    return {line.split(" @ ")[0] for line in KNOWN.read_text().splitlines() if line and not line.startswith("#")}


def main():
    files = [p for p in tracked_files() if p.is_file() and is_source(p)]
    failed = False
    for path in files:
        n = len(path.read_text(errors="replace").splitlines())
        if n > MAX_LINES:
            print(f"{path.relative_to(ROOT)}: {n} lines, over the budget of {MAX_LINES}: split it along its sections")
            failed = True
    csrc = [p for p in files if p.relative_to(ROOT).as_posix().startswith("csrc/")]
    blocks = repeated_blocks(csrc)
    if "--repeats" in sys.argv:
        for first, where in sorted(blocks.items()):
            print(f"{first} @ {' '.join(where)}")
        return 0
    known = known_blocks()
    for first, where in sorted(blocks.items()):
        if first not in known:
            print(f"repeated block ({MIN_LINES}+ lines) starting `{first}` at {', '.join(where)}: make one piece of "
                  "code serve")
            failed = True
    if not failed:
        print(f"house rules: {len(files)} source files within {MAX_LINES} lines; no new repeated block in csrc/ "
              f"({len(known)} known)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
