"""Preference pairs: two of the model's own answers to one prompt, ranked by a readable rule.

Real preference data is made this way: sample several responses from the instruction-tuned
model and let people pick the better one. Here a rule stands in for the raters:

1. ``correct``: a correct answer is preferred to an incorrect one;
2. ``closer``: of two wrong answers, the one fewer character edits away from the right answer
   is preferred.

Answers the rule cannot tell apart (equal) give no pair. Each pair keeps the rule that decided
it, so the page can show why `chosen` won.
"""

from __future__ import annotations

from dataclasses import dataclass

from lmcore.data.tokenizers import Tokenizer
from lmcore.models.transformer import Transformer
from lmcore.stages.chat import Example, prompt_ids
from lmcore.stages.respond import answer_batch

RULES = {
    "correct": "a correct answer is preferred to an incorrect one",
    "closer": "of two wrong answers, the one fewer character edits away from the right answer "
              "is preferred",
}


@dataclass(frozen=True)
class Pair:
    """A prompt with a preferred (`chosen`) and a dispreferred (`rejected`) response."""

    task: str
    prompt: str
    chosen: str
    rejected: str
    rule: str


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def judge(right: str, a: str, b: str) -> tuple[str, str, str] | None:
    """(chosen, rejected, rule) for answers `a` and `b` to a prompt whose answer is `right`;
    None when the rule prefers neither."""
    if a == b:
        return None
    if (a == right) != (b == right):
        return (a, b, "correct") if a == right else (b, a, "correct")
    if a == right:  # both right (cannot differ) — kept for clarity
        return None
    da, db = edit_distance(a, right), edit_distance(b, right)
    if da == db:
        return None
    return (a, b, "closer") if da < db else (b, a, "closer")


def rank_pair(ex: Example, answers: list[str]) -> Pair | None:
    """The pair (best, worst) of `answers` by the rule, or None if all tie."""
    ranked = sorted(set(answers), key=lambda s: (s != ex.response, edit_distance(s, ex.response),
                                                 s))
    if len(ranked) < 2:
        return None
    verdict = judge(ex.response, ranked[0], ranked[-1])
    if verdict is None:
        return None
    chosen, rejected, rule = verdict
    return Pair(ex.task, ex.prompt, chosen, rejected, rule)


def sample_pairs(model: Transformer, tok: Tokenizer, examples: list[Example], *, k: int = 4,
                 temperature: float = 1.0, seed: int = 0) -> list[Pair]:
    """Sample `k` answers per example from `model` and keep the rule-ranked (best, worst) pair.

    An answer that never closed with <|end|> is left out (it is not a response the model
    gave; the pair would put an <|end|> it never wrote into its tokens).
    """
    prompts = [ex.prompt for ex in examples for _ in range(k)]
    answers = answer_batch(model, tok, prompts, temperature=temperature, seed=seed)
    pairs = []
    for i, ex in enumerate(examples):
        room = model.config.context - len(prompt_ids(tok, ex.prompt)) - 1
        # a stray byte token decodes to U+FFFD, which re-encodes longer: keep what still fits
        texts = [a.text for a in answers[i * k:(i + 1) * k]
                 if a.ended and len(tok.encode(a.text)) <= room]
        pair = rank_pair(ex, texts)
        if pair is not None:
            pairs.append(pair)
    return pairs
