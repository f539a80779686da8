"""'How this is computed': every experiment page names real functions in real files."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from apptest import ROOT, open_page

from lmcore.app.provenance import locate

PAGES = [f"pages/{n}" for n in ("1_Corpus_and_tokenizers.py", "2_N-gram_models.py",
                                "3_Transformer.py", "4_Objectives.py", "5_FlashAttention.py",
                                "6_Long_texts.py", "7_Information.py")]


def _calls(page: str) -> list[ast.Call]:
    tree = ast.parse((Path(ROOT) / page).read_text(encoding="utf-8"))
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and getattr(n.func, "id", None) == "how_computed"]


@pytest.mark.parametrize("page", PAGES)
def test_every_section_names_functions_that_exist_where_it_says(page):
    calls = _calls(page)
    assert len(calls) >= 2, f"{page}: an expander per experiment section"
    for call in calls:
        for arg in call.args:
            if isinstance(arg, ast.Constant):  # 'module:name': found in the file it names
                name, path, line = locate(arg.value)
                assert (Path(ROOT) / path).is_file(), path
                assert line is not None, f"{page}: {arg.value} not defined in {path}"


def test_locate_points_at_the_definition():
    from lmcore.longtext.strategies import evaluate_ids

    name, path, line = locate(evaluate_ids)
    assert (name, path) == ("lmcore.longtext.strategies.evaluate_ids",
                            "lmcore/longtext/strategies.py")
    source = (Path(ROOT) / path).read_text(encoding="utf-8").splitlines()
    assert source[line - 1].startswith("def evaluate_ids(")
    assert locate("lmcore.longtext.strategies:evaluate_ids") == (name, path, line)
    assert locate("lmcore.models.ngram:NGramLM.top_next")[2] is not None  # its class's line


def test_the_expander_is_drawn_with_file_and_line():
    at = open_page(PAGES[0])
    boxes = [e for e in at.expander if e.label == "How this is computed"]
    assert len(boxes) >= 2
    text = " ".join(c.value for c in boxes[0].children.values() if c.type == "markdown")
    assert "`lmcore.data.corpus.load_text` in `lmcore/data/corpus.py:" in text
    assert "lmcore corpus info FILE" in text
