"""One budget, three objectives: the same backbone trained causal, prefix and masked, scored fairly.

`build_models` makes the three models from one config with identical initial weights;
`train_and_score` trains one with its objective under a shared `TrainConfig` (same steps,
batch, seed) and scores it with `fair_metrics`, plus the effective rank of its attention
maps; `work_plan` says how much work that is, for one progress bar with an ETA.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lmcore.train.fair_metrics import (
    EvalSet,
    Meter,
    Metric,
    ScoringStopped,
    disjoint_windows,
    eval_set,
    masked_inputs,
    model_device,
    score_models,
    uses_nsp,
)
from lmcore.train.objectives import make_objective

if TYPE_CHECKING:
    from lmcore.data.tokenizers import Tokenizer
    from lmcore.models.transformer import Transformer, TransformerConfig
    from lmcore.train.data import TokenData
    from lmcore.train.trainer import TrainConfig, TrainResult

MODEL_MASKS = {"causal": "causal", "prefix": "prefix", "masked": "bidirectional"}
ENCDEC = "encdec"  # the encoder-decoder: its own module, built from the same config
RANK_WINDOWS = 8  # held-out windows whose attention matrices are measured


def build_models(config: TransformerConfig, seed: int = 0, nsp: bool = False,
                 encdec: bool = False) -> dict[str, Transformer]:
    """The three backbones from one `TransformerConfig`, identical initial weights (seeded).

    Only the mask differs (and, with `nsp`, the masked model's extra [CLS] head, which is
    created last so every shared weight still starts equal). With `encdec` a fourth model,
    the encoder-decoder of `models/encoder_decoder.py`, is built from the same config and
    seed (its shapes differ, so its initial weights cannot be the same tensors).
    """
    from lmcore.models.transformer import Transformer, TransformerConfig

    models = {}
    for name, mask in MODEL_MASKS.items():
        cfg = TransformerConfig(**{**config.to_dict(), "mask": mask,
                                   "nsp_head": nsp and name == "masked"})
        torch.manual_seed(seed)
        models[name] = Transformer(cfg)
    if encdec:
        from lmcore.models.encoder_decoder import EncoderDecoder

        torch.manual_seed(seed)
        models[ENCDEC] = EncoderDecoder(TransformerConfig(**{**config.to_dict(),
                                                             "mask": "causal",
                                                             "nsp_head": False}))
    return models


@dataclass
class ObjectiveRun:
    """One trained objective with its fair held-out rows and attention effective ranks.

    `status` is 'stopped' when the stop event (a Stop button, a job's time limit) was set
    during training or scoring: then nothing is scored, `metrics` is empty and `ranks` None.
    """

    name: str
    model: Transformer
    result: TrainResult
    metrics: list[Metric]
    ranks: np.ndarray | None  # (L, H) mean effective rank per layer and head
    status: str = "done"


def _rank_inputs(name: str, data: TokenData, context: int,
                 nsp: bool) -> tuple[torch.Tensor, dict[str, Any]]:
    """Held-out windows (N, T) for the effective ranks, shaped as the model was trained."""
    if name == "masked":
        return masked_inputs(data.ids("valid"), context, RANK_WINDOWS * context, nsp).inputs, {}
    if name == ENCDEC:  # the encoder's self-attention over uncorrupted windows
        return disjoint_windows(data.ids("valid"), context, RANK_WINDOWS * context), {}
    win = disjoint_windows(data.ids("valid"), context, RANK_WINDOWS * context)
    if name == "prefix":  # half the window as prefix: both attention patterns in one matrix
        return win, {"mask": "prefix", "prefix_len": torch.full((len(win),), context // 2)}
    return win, {}


def work_plan(name: str, data: TokenData, train_config: TrainConfig, context: int,
              nsp: bool = False, max_tokens: int | None = None) -> tuple[int, int]:
    """(training, scoring) work of `train_and_score` in token positions through the model.

    A training step costs about three forward passes (forward + backward) of batch × window
    tokens; each held-out evaluation of the trainer two forward passes of `eval_tokens`;
    scoring is counted exactly. The page turns the two into one progress bar with an ETA.
    """
    tc = train_config
    window = make_objective(name).window(context)
    n_evals = 1 + ((tc.steps - 1) // tc.eval_every if tc.eval_every else 0)
    train_work = 3 * tc.steps * tc.batch_size * window + n_evals * 2 * tc.eval_tokens
    ev = EvalSet()
    max_tokens = tc.eval_tokens if max_tokens is None else max_tokens
    if name in ("causal", "prefix", ENCDEC):
        ev.lr = data.eval_windows(context + 1, max_tokens=max_tokens)
    else:
        ev.masked = masked_inputs(data.ids("valid"), context, max_tokens, nsp)
        if nsp:
            ev.nsp = disjoint_windows(data.ids("valid"), context, max_tokens)
    ranks = _rank_inputs(name, data, context, nsp)[0].numel()
    return train_work, ev.work([name]) + ranks


def train_and_score(name: str, model: Transformer, data: TokenData, train_config: TrainConfig,
                    *, tokenizer: Tokenizer, rate: float = 0.15, nsp: bool = False,
                    callback: Callable[[Any], None] | None = None,
                    stop: threading.Event | None = None) -> ObjectiveRun:
    """Train `model` with objective `name` on `data`, then score it fairly on held-out text.

    The held-out windows, prefix lengths and masking draws depend only on the seed in
    `train_config`, so three calls (one per objective) produce directly comparable rows.
    `callback` gets the trainer's events and then `Scoring` progress; once `stop` is set
    (before or during training or scoring) scoring is skipped and the run is 'stopped'.
    """
    from lmcore.train.effective_rank import attention_effective_ranks, encoder_effective_ranks
    from lmcore.train.trainer import train

    kw = ({"rate": rate, "nsp_weight": 1.0 if nsp else 0.0} if name == "masked"
          else {"rate": rate} if name == ENCDEC else {})
    result = train(model, make_objective(name, **kw), data, train_config, callback=callback,
                   stop=stop)
    if result.status == "failed":
        raise ValueError(f"{name} training failed: {result.error}")
    if result.status == "stopped" or (stop is not None and stop.is_set()):
        return ObjectiveRun(name, model, result, [], None, status="stopped")
    context = train_config.context or model.config.context
    ev = eval_set({name: model}, data, context, train_config.eval_tokens, train_config.seed,
                   "valid")
    win, mask_kw = _rank_inputs(name, data, context, uses_nsp(model))
    meter = Meter(ev.work([name]) + win.numel(), callback, stop)
    try:
        rows = score_models({name: model}, ev, tokenizer, train_config.seed, rate, meter)
        tick = meter.stage(f"{name}: attention effective rank")
        if name == ENCDEC:
            ranks = encoder_effective_ranks(model, win.to(model_device(model)))
        else:
            ranks = attention_effective_ranks(model, win.to(model_device(model)), **mask_kw)
        tick(win.numel())
    except ScoringStopped:
        return ObjectiveRun(name, model, result, [], None, status="stopped")
    return ObjectiveRun(name, model, result, rows, ranks)
