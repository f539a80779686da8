"""ROUGE-1/2/L of a summary against a reference, with a tokenizer that works for Chinese.

`rouge-score`'s default tokenizer keeps only `[a-z0-9]` runs, so a Chinese summary scores 0
against anything. Here CJK ideographs, kana and hangul are one token per character (the usual
practice for Chinese ROUGE) and every other script is split into lower-cased word runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rouge_score import rouge_scorer
from rouge_score.tokenizers import Tokenizer as _RougeTokenizer

# One token per ideograph/kana/hangul syllable; otherwise runs of letters, digits and marks.
_CJK = (r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
        r"\U00020000-\U0002ffff")
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def tokenize(text: str) -> list[str]:
    """CJK characters one by one, other words lower-cased; punctuation and spaces dropped."""
    return _TOKEN.findall(text.lower())


class MixedScriptTokenizer(_RougeTokenizer):
    """The `rouge-score` tokenizer interface around `tokenize`."""

    def tokenize(self, text: str) -> list[str]:
        return tokenize(text)


@dataclass(frozen=True)
class Rouge:
    """Precision, recall and F1 of one ROUGE variant."""

    precision: float
    recall: float
    f1: float


def rouge(reference: str, summary: str) -> dict[str, Rouge]:
    """ROUGE-1, ROUGE-2 and ROUGE-L (LCS) of `summary` against `reference`."""
    if not tokenize(reference):
        raise ValueError("the reference summary has no words or characters to compare with")
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=MixedScriptTokenizer())
    scores = scorer.score(reference, summary)
    return {name: Rouge(s.precision, s.recall, s.fmeasure) for name, s in scores.items()}
