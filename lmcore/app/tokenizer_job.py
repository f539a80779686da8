"""The Corpus page's job: train the chosen tokenizers on the training split.

A job body (module-level, `ctx` first, plain arguments) run in a worker process, under the job
cap, the time limit and Stop like every other CPU-heavy action: BPE training on Chinese text
without spaces grows with the square of its length (a 400 KB upload held a core for about a
minute). Hugging Face's trainers cannot be interrupted inside one kind, so Stop takes effect
between kinds, and the kill after the grace period ends a kind that is still training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lmcore.data.tokenizers import Tokenizer, train_tokenizer


@dataclass
class TrainedTokenizers:
    """The tokenizers trained, in the order asked, and why any kind was refused."""

    tokenizers: dict[str, Tokenizer] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def run_tokenizers(ctx: Any, *, text: str, sizes: dict[str, int | None]) -> TrainedTokenizers:
    """Train each kind in `sizes` (kind -> vocabulary size, None where it does not apply);
    a kind refused (e.g. a vocabulary too small for its alphabet) does not stop the others."""
    out = TrainedTokenizers()
    for i, (kind, size) in enumerate(sizes.items()):
        if ctx.stop.is_set():
            break
        ctx.progress(i / max(len(sizes), 1), f"training {kind}…")
        try:
            out.tokenizers[kind] = train_tokenizer(kind, text, vocab_size=size)
        except ValueError as exc:  # bad settings for this kind: say why, go on
            out.errors[kind] = str(exc)
    return out
