"""Every runnable Python block in README.md and docs/**/*.md runs, so the docs cannot rot.

The convention, for anyone writing docs:

* A fenced block whose info string starts with ``python`` (e.g. ```` ```python ````
  or ```` ```python title="worker.py" ````) is runnable.
* Put ``<!-- no-run -->`` on the line just before the fence (blank lines between
  are allowed) to show a block without running it: fragments, code needing a
  server, code that runs forever. Blocks in other languages (``console``,
  ``bash``, ``toml``, ``text``) never run.
* Each block runs in a fresh interpreter, so blocks share no names: each must
  import what it uses. The blocks of one file run in order, in one empty
  temporary working directory created for that file, so a later block sees the
  files (``sqlite:///jobs.db``) an earlier one wrote, as a reader following the
  page would.
* Two illustrative names are predefined, because examples use them as
  stand-ins for the reader's own code: ``send_email(to)`` (records the address
  and returns) and ``TemporaryError`` (an ``Exception`` subclass).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NO_RUN = "<!-- no-run -->"
_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*)$")

# Runs one block: defines the stand-in helpers, then executes the block's code
# so tracebacks point at "file.md:line".
_RUNNER = """
import sys

sent = []

def send_email(to):
    sent.append(to)

class TemporaryError(Exception):
    pass

source, label, first_line = sys.argv[1], sys.argv[2], int(sys.argv[3])
code = compile("\\n" * (first_line - 1) + open(source, encoding="utf-8").read(), label, "exec")
namespace = {
    "__name__": "__main__",
    "send_email": send_email,
    "TemporaryError": TemporaryError,
}
exec(code, namespace)
"""


@dataclass(frozen=True)
class Block:
    """One fenced Python block of a Markdown file."""

    path: Path
    line: int
    """1-based line of the first code line."""
    code: str
    runnable: bool

    @property
    def label(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def extract_blocks(path: Path) -> list[Block]:
    """The fenced ``python`` blocks of a Markdown file, runnable or not."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opened = _FENCE_OPEN.match(lines[i])
        if opened is None:
            i += 1
            continue
        indent, fence, info = opened["indent"], opened["fence"], opened["info"].strip()
        closing = re.compile(rf"^{re.escape(indent)}{fence[0]}{{{len(fence)},}}[ \t]*$")
        body: list[str] = []
        j = i + 1
        while j < len(lines) and closing.match(lines[j]) is None:
            line = lines[j]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            j += 1
        language = info.split(maxsplit=1)[0].lstrip(".{") if info else ""
        if language in ("python", "py"):
            previous = next((p.strip() for p in reversed(lines[:i]) if p.strip()), "")
            blocks.append(Block(path, i + 2, "\n".join(body) + "\n", previous != NO_RUN))
        i = j + 1
    return blocks


def markdown_files() -> list[Path]:
    """README.md and every page under docs/."""
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [f for f in files if f.is_file()]


PAGES = [f for f in markdown_files() if any(b.runnable for b in extract_blocks(f))]


def test_the_extractor_finds_blocks_and_honours_no_run(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Text\n\n```python\nx = 1\n```\n\n<!-- no-run -->\n\n```python\nforever()\n```\n"
        '\n```console\n$ ls\n```\n\n- item\n\n    ```python title="a.py"\n    y = 2\n    ```\n',
        encoding="utf-8",
    )
    blocks = extract_blocks(page)
    assert [(b.line, b.code, b.runnable) for b in blocks] == [
        (4, "x = 1\n", True),
        (10, "forever()\n", False),
        (20, "y = 2\n", True),
    ]


def test_the_docs_have_runnable_blocks() -> None:
    assert sum(1 for f in PAGES for b in extract_blocks(f) if b.runnable) >= 10


def run_block(block: Block, workdir: Path, scratch: Path) -> subprocess.CompletedProcess[str]:
    """Run one block in a fresh interpreter with ``workdir`` as working directory."""
    source = scratch / f"block_{block.line}.py"
    source.write_text(block.code, encoding="utf-8")
    # The checkout under test comes first, ahead of any installed localqueue.
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-c", _RUNNER, str(source), block.label, str(block.line)],
        cwd=workdir,
        env={**os.environ, "PYTHONPATH": pythonpath},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_blocks_run_in_order(page: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    for block in extract_blocks(page):
        if not block.runnable:
            continue
        done = run_block(block, workdir, tmp_path)
        assert done.returncode == 0, f"{block.label} failed:\n{done.stdout}\n{done.stderr}"


def test_the_readme_first_block_runs_as_pasted(tmp_path: Path) -> None:
    """No stand-ins: the first thing a reader copies must run in an empty folder."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = readme.split("```python\n", 1)[1].split("```", 1)[0]
    done = subprocess.run(
        [sys.executable, "-c", first],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "sending to user@example.com\n"
    assert (tmp_path / "jobs.db").exists()
