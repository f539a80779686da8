"""A fast CLI: `lmcore corpus info`, `tokenize` and every `ngram` command never import torch.

Each command runs in a fresh interpreter that then lists the heavy packages it imported;
torch alone costs several seconds of start-up on the machines lmcore runs on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "numpy", "pandas", "langchain", "streamlit", "plotly", "scipy", "sklearn",
         "safetensors", "tqdm")
PROBE = (
    "import json, sys\n"
    "from lmcore.cli import main\n"
    "code = main(sys.argv[1:])\n"
    f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
    "print('HEAVY ' + json.dumps(heavy), file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def _imported(*args: str, cwd: Path) -> list[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), LMCORE_HOME=str(cwd / "home"))
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                         cwd=cwd, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stderr.splitlines() if x.startswith("HEAVY "))
    return json.loads(line[len("HEAVY "):])


@pytest.fixture(scope="module")
def texts(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("startup")
    (d / "train.txt").write_text("the cat sat on the mat\nthe dog sat on the log\n" * 20,
                                 encoding="utf-8")
    (d / "test.txt").write_text("the cat sat on the log\n", encoding="utf-8")
    return d


@pytest.mark.parametrize("args,allowed", [
    (["corpus", "info", "train.txt"], set()),
    (["tokenize", "--kind", "char", "train.txt"], set()),
    (["ngram", "train", "train.txt", "-o", "m.arpa", "--eval", "test.txt"], {"numpy"}),
    (["ngram", "train", "train.txt", "--tokenizer", "char", "-o", "c.arpa"], {"numpy"}),
])
def test_light_commands_import_no_heavy_package_they_do_not_use(args, allowed, texts):
    assert set(_imported(*args, cwd=texts)) <= allowed


def test_ngram_eval_imports_no_torch(texts):
    _imported("ngram", "train", "train.txt", "-o", "e.arpa", cwd=texts)
    assert set(_imported("ngram", "eval", "e.arpa", "test.txt", cwd=texts)) <= {"numpy"}


def test_the_check_can_fail_all_commands_together_do_import_torch(texts):
    """Loading every command (what `lmcore --help` does) brings `train` and with it torch."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    code = "import sys\nfrom lmcore.cli import build_parser\nbuild_parser()\nprint(sorted(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=texts, env=env, timeout=120)
    assert "'torch'" in out.stdout, out.stderr
