"""The walkthroughs in docs/ stay true: every link to a line of the code carries, as its title,
text that must be on that line, and the code a reader is asked to run runs.

When code moves, update the line numbers (found again from the titles):   python tests/test_docs.py
"""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
# [`text`](../path#L12 "text on that line")  or with 'single quotes'
LINK = re.compile(r"""\[(?P<text>[^\]]+)\]\(\.\./(?P<path>[^)#\s]+)#L(?P<line>\d+) (?P<q>["'])(?P<title>.+?)(?P=q)\)""")


def line_links(doc):
    return list(LINK.finditer(doc.read_text()))


def lines_containing(path, title):
    return [n for n, text in enumerate((ROOT / path).read_text().splitlines(), 1) if title in text]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_line_links_point_at_their_titles(doc):
    for link in line_links(doc):
        path, line, title = link["path"], int(link["line"]), link["title"]
        assert (ROOT / path).exists(), f"{doc.name}: {path} does not exist"
        lines = (ROOT / path).read_text().splitlines()
        assert line <= len(lines) and title in lines[line - 1], (
            f"{doc.name}: {path}:{line} does not contain {title!r} (found on {lines_containing(path, title)}); "
            "run python tests/test_docs.py")
        if re.fullmatch(r"`[^`]+:\d+`", link["text"]):  # a visible `path:line` agrees with the link
            assert link["text"] == f"`{path}:{line}`" or link["text"].endswith(f":{line}`"), link.group(0)


def test_the_walkthroughs_have_line_links():
    assert len(line_links(ROOT / "docs" / "autodiff.md")) >= 15
    assert len(line_links(ROOT / "docs" / "adding-an-op.md")) >= 5


def test_the_autodiff_walkthrough_check_runs(capsys):
    text = (ROOT / "docs" / "autodiff.md").read_text()
    section = text[text.index("## Check it yourself"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, "docs/autodiff.md", "exec"), {})
    assert "dL/dp, first rows:" in capsys.readouterr().out


def fix(doc):
    """Rewrites the line numbers of `doc`'s links from their titles."""
    def renumber(link):
        path, title, old = link["path"], link["title"], int(link["line"])
        found = lines_containing(path, title)
        if not found:
            raise SystemExit(f"{doc.name}: {title!r} is no longer in {path}; edit the link by hand")
        new = old if old in found else found[0]
        text = re.sub(r":\d+`$", f":{new}`", link["text"])
        return link.group(0).replace(f"[{link['text']}]", f"[{text}]", 1).replace(f"#L{old} ", f"#L{new} ", 1)
    doc.write_text(LINK.sub(renumber, doc.read_text()))


if __name__ == "__main__":
    for doc in DOCS:
        fix(doc)
        print("checked", doc.relative_to(ROOT))
