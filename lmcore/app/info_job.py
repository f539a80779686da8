"""The Information page's jobs: real compression, the n-gram learning curve on a source with
a known entropy rate, and a Transformer learning that source.

Job bodies (module-level, `ctx` first, plain arguments) that run in a job's worker process.
The compression job gets the session's models themselves (lmcore's n-gram and Transformer
language models pickle with their tokenizers; the server pickles them, never a visitor).
"""

from __future__ import annotations

from typing import Any

from lmcore.info.comparison import CoderRow, CurvePoint, compression_table, learning_curve
from lmcore.info.convergence import Convergence, ConvergenceConfig, transformer_convergence


def run_compression(ctx: Any, *, text: str, models: dict[str, Any],
                    prime: str | None = None) -> list[CoderRow]:
    """Every compressor and every model on `text`, each decoded back and compared."""
    return compression_table(text, models, ctx.progress, ctx.stop, prime=prime)


def run_learning_curve(ctx: Any, *, train: str, test: str, sizes: list[int],
                       orders: list[int], entropy_rate: float | None,
                       code_chars: int) -> tuple[list[CurvePoint], float | None]:
    """KN char n-grams fitted on growing prefixes of `train`; returns (points, rate)."""
    points = learning_curve(train, test, sizes, orders, entropy_rate=entropy_rate,
                            code_chars=code_chars, progress=ctx.progress, stop=ctx.stop)
    return points, entropy_rate


def run_convergence(ctx: Any, *, train: str, test: str, entropy_rate: float | None,
                    config: ConvergenceConfig) -> Convergence:
    """A char Transformer trained on `train`, measured on `test` as it learns (live points)."""
    return transformer_convergence(train, test, entropy_rate, config, progress=ctx.progress,
                                   stop=ctx.stop,
                                   on_point=lambda p: ctx.log("curve", **p.as_dict()))
