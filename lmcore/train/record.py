"""Record a training run's events in the run store (a trainer callback).

Step and Eval events are buffered and written every `flush_s` seconds (one transaction, which
also beats the run's heart); Done and Error finish the run with its final numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lmcore.runs.store import RunStore
from lmcore.train.trainer import Done, Error, Eval, Event, Step


def step_values(e: Step) -> dict[str, Any]:
    """The numbers of a Step event worth keeping (grad norms flattened per layer)."""
    d = {"loss": e.loss, "lr": e.lr, "grad_norm": e.grad_norm, "tokens_per_s": e.tokens_per_s,
         "elapsed_s": e.elapsed_s, "rss_mb": e.rss / 2**20, "clipped": e.clipped}
    if e.saved_bytes is not None:
        d["saved_mb"] = e.saved_bytes / 2**20
    if e.cuda_peak is not None:
        d["cuda_peak_mb"] = e.cuda_peak / 2**20
    d.update({f"grad_norm.{k}": v for k, v in e.grad_norms.items()})
    return d


def eval_values(e: Eval) -> dict[str, Any]:
    return {"train_loss": e.train_loss, "valid_loss": e.valid_loss,
            "bits_per_char": e.bits_per_char, "perplexity": e.perplexity}


class Recorder:
    """A trainer callback writing to `store` under `run_id`; chains to `then` if given."""

    def __init__(self, store: RunStore, run_id: str, flush_s: float = 2.0,
                 then: Callable[[Event], None] | None = None):
        self.store = store
        self.run_id = run_id
        self.flush_s = flush_s
        self.then = then
        self._buf: list[tuple[str, int, dict[str, Any]]] = []
        self._last = time.monotonic()

    def __call__(self, event: Event) -> None:
        if isinstance(event, Step):
            self._buf.append(("train", event.step, step_values(event)))
        elif isinstance(event, Eval):
            self._buf.append(("eval", event.step, eval_values(event)))
        elif isinstance(event, Done):
            self.flush()
            final = {"steps": event.step, "train_loss": event.train_loss,
                     "valid_loss": event.valid_loss, "bits_per_char": event.bits_per_char,
                     "perplexity": event.perplexity, "elapsed_s": event.elapsed_s}
            self.store.finish(self.run_id, event.status, final, checkpoint=event.checkpoint)
        elif isinstance(event, Error):
            self.flush()
            self.store.finish(self.run_id, "failed", {"steps": event.step},
                              error=event.message)
        if self._buf and time.monotonic() - self._last >= self.flush_s:
            self.flush()
        if self.then is not None:
            self.then(event)

    def flush(self) -> None:
        buf, self._buf = self._buf, []
        self.store.log_many(self.run_id, buf)
        self._last = time.monotonic()
