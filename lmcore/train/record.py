"""Record a training run in the run store: its events (a trainer callback) and its model.

`Recorder`: Step and Eval events are buffered and written every `flush_s` seconds (one
transaction, which also beats the run's heart); Done and Error finish the run with its final
numbers. `train_recorded`: train, save the model and point the run at it, in one call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmcore.runs.store import RunStore
from lmcore.train.trainer import Done, Error, Eval, Event, Step

if TYPE_CHECKING:
    from torch.nn import Module

    from lmcore.data.corpus import Corpus
    from lmcore.data.tokenizers import Tokenizer
    from lmcore.train.data import TokenData
    from lmcore.train.trainer import TrainConfig, TrainResult


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


def train_recorded(model: Module, objective: Any, data: TokenData, config: TrainConfig,
                   recorder: Recorder, *, tokenizer: Tokenizer, corpus: Corpus,
                   out: str | Path, stop: threading.Event | None = None,
                   resume_from: str | Path | None = None, world: Any = None) -> TrainResult:
    """Train with every event recorded by `recorder`, save the model to `out`, point the run at it.

    The one train -> save -> record sequence of the app's training job and `lmcore train`.
    A refusal before the first step (`train` raises) finishes the run 'failed' and re-raises;
    a failure during training returns the 'failed' result (the Recorder has already finished
    the run) and saves nothing. A done or stopped run is saved as a safetensors checkpoint
    whose metadata names the run and the corpus it was trained on.
    """
    from lmcore.models.checkpoint import save_model
    from lmcore.train.trainer import train

    store, run_id = recorder.store, recorder.run_id
    try:
        result = train(model, objective, data, config, callback=recorder, stop=stop,
                       resume_from=resume_from, world=world)
    except Exception as exc:  # refused before the first step: the run did not happen
        store.finish(run_id, "failed", {}, error=str(exc))
        raise
    if result.status != "failed":
        save_model(out, model, tokenizer, extra={"run_id": run_id, "corpus": corpus.name,
                                                 "corpus_fingerprint": corpus.fingerprint,
                                                 **result.summary()})
        store.update(run_id, checkpoint=str(out))
    return result
