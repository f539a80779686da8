"""The Information page's noisy-channel jobs: the code-rate sweep and LM decoding of text.

Module-level bodies taking `ctx` first and plain arguments only (the job contract), so they can
run in a worker process.
"""

from __future__ import annotations

from typing import Any

from lmcore.data.tokenizers import train_tokenizer
from lmcore.info.channel import Channel, text_to_bits
from lmcore.info.codes import CodeRun, default_family, rate_sweep
from lmcore.info.noisy_channel import NoisyChannelResult, noisy_channel_table
from lmcore.models.ngram import NGramLM
from lmcore.models.ngram_vocab import tokenizer_vocab


def run_code_sweep(ctx: Any, *, text: str, kind: str, p: float, seed: int = 0) -> list[CodeRun]:
    """Send the text's UTF-8 bits through the channel with every code of the default sweep."""
    return rate_sweep(text_to_bits(text), Channel(kind, p), default_family(), seed=seed,
                      progress=ctx.progress, stop=ctx.stop)


def run_noisy_channel(ctx: Any, *, train_text: str, held_text: str, error_rate: float,
                      orders: list[int], beam: int = 8, seed: int = 0) -> NoisyChannelResult:
    """Fit KN char n-grams on the training text, corrupt the held-out text, decode per order."""
    ctx.progress(0.0, "fitting the character n-grams")
    tok = train_tokenizer("char", train_text)
    grid = NGramLM.fit_grid([tok.encode(train_text)], tokenizer_vocab(tok), orders=orders,
                            smoothings=["kn"], tokenizer=tok, stop=ctx.stop)
    models = {n: grid[("kn", n)] for n in orders if ("kn", n) in grid}
    return noisy_channel_table(models, held_text, error_rate, seed=seed, beam=beam,
                               progress=lambda f, m: ctx.progress(0.1 + 0.9 * f, m),
                               stop=ctx.stop)
