"""The Markdown a user reads: every relative link and image points at a file of the repository, every
``#anchor`` at a heading of its target; the README stays a short guide without internal history."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.DOTALL | re.MULTILINE)


def markdown_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.split()
    return sorted(ROOT / p for p in out if (ROOT / p).is_file())


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text without markup, lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", path.read_text()).splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[str]:
    text = FENCE.sub("", path.read_text())
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    return [m.group(1) for m in LINK.finditer(text)]


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    broken = []
    for target in links(path):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...: not checked here
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists() or root not in dest.parents:
            broken.append(f"{target} (no such file in the repository)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {dest.name})")
    return broken


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_anchors_resolve(path):
    assert not broken_links(path), f"{path.relative_to(ROOT)}: " + "; ".join(broken_links(path))


def test_the_link_checker_sees_broken_links(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other page\n\n## Same\n\n## Same\n")
    page = tmp_path / "page.md"
    page.write_text("# A title\n\n## Run `x` here: *now*\n\n[ok](#run-x-here-now) [bad](#nope) ![img](missing.png)\n"
                    "[a](docs/other.md#same-1) [b](docs/other.md#same-2) [c](https://example.org/#x) [d](../outside.md)\n"
                    "```\n[not a link](#in-code)\n```\n")
    (tmp_path.parent / "outside.md").write_text("# Outside\n")
    assert anchors(page) == {"a-title", "run-x-here-now"}
    assert broken_links(page, tmp_path) == ["#nope (no heading #nope in page.md)", "missing.png (no such file in the repository)",
                                            "docs/other.md#same-2 (no heading #same-2 in other.md)",
                                            "../outside.md (no such file in the repository)"]


def test_readme_is_a_short_guide_without_internal_history():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    assert readme.split("\n## ")[0].count("pip install -r requirements.txt && python") == 2  # the two commands first
    user_facing = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
                   *[p for p in markdown_files() if p.is_relative_to(ROOT / "results")]]
    for path in user_facing:
        found = re.search(r"\b[Ii]ssues? \d+|\b[Rr]ounds? (one|two|three|four|\d+)\b", path.read_text())
        assert not found, f"{path.relative_to(ROOT)}: {found.group(0)!r}"
