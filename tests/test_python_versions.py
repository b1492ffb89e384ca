"""The codebase as checked by ruff, and the prototxt reader on the oldest Python the project supports.

The reader's linear-time bound uses possessive quantifiers (Python 3.11); on 3.10 they become greedy
(``harness.ir.textformat._compile``). Here every zoo prototxt and a set of tricky inputs are read by a 3.10
interpreter and by this one, which must give the same fields and the same errors. Skips where no
Python 3.10 is installed (pyenv's is used where present)."""

from __future__ import annotations

import glob
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]

DUMP = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from harness.errors import HarnessError
from harness.ir.textformat import Message, parse_text

def dump(msg):
    return [[f.name, dump(f.value) if isinstance(f.value, Message) else repr(f.value)] for f in msg.fields]

out = []
for text in json.loads(sys.stdin.read()):
    try:
        out.append(dump(parse_text(text, "t.prototxt")))
    except HarnessError as exc:
        out.append(str(exc))
print(json.dumps(out))
"""

TRICKY = [
    'name: "a" # comment with { and "quotes"\nlayer { name: "b" }',
    'a: 1 # c\n# only a comment\nb: "x" "y"  # joined strings\n',
    'x: "unterminated\n', 'x: 08', 'x: 1f', 'x: -inf', 'x: 0x1F', 'x { y: [1, 2, 3] }', 'x: "\\8"',
    "s: '\\x41\\u00e9'", 'a { b { c { d: 1 } } }', 'name { }', 'x: 1e', 'x: .5', 'x: 5.',
]


def python310() -> str | None:
    pyenv = sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.10*/bin/python3.10")))
    return pyenv[0] if pyenv else shutil.which("python3.10")  # pyenv's shim runs the global version


def test_the_reader_reads_the_same_on_python_3_10() -> None:
    python = python310()
    if python is None:
        pytest.skip("no Python 3.10 here (python3.10 on PATH or under ~/.pyenv)")
    texts = [p.read_text() for p in sorted((ROOT / "prototxts").glob("*.prototxt"))] + TRICKY
    runs = [subprocess.run([exe, "-c", DUMP, str(ROOT)], input=json.dumps(texts), capture_output=True, text=True,
                           timeout=300, check=True).stdout for exe in (python, sys.executable)]
    old, new = (json.loads(r) for r in runs)
    assert len(old) == len(texts) and old == new


def test_ruff_is_clean() -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (the test extra has it)")
    proc = subprocess.run([ruff, "check", "harness", "tests", "benchmarks", "kernels_profiles"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
