"""Direct Preference Optimization (Rafailov et al. 2023) against a frozen reference model.

RLHF with PPO first fits a reward model to human preferences, then runs reinforcement learning
to maximise that reward while a KL penalty keeps the policy near the supervised model. DPO
shows that the optimum of that KL-regularised objective can be reached directly: with
log-ratios ``r(y) = beta * (log pi(y|x) - log pi_ref(y|x))`` (the "implicit reward"), minimise

    L = -log sigmoid(r(y_chosen) - r(y_rejected))

over preference pairs. No reward model, no sampling, no value network: a classification loss
on pairs, which is why a laptop can run it. `beta` sets how far the policy may move from the
reference (small beta: weak pull back, larger moves).

Pure DPO can lower the probability of the chosen answers too (only their difference to the
rejected ones is pushed up), and a tiny model then forgets its answers. `nll_weight` adds the
chosen responses' mean per-token negative log-likelihood to the loss, as RPO (Pang et al. 2024,
"Iterative Reasoning Preference Optimization") does; `nll_weight=0` is pure DPO.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from lmcore.data.tokenizers import Tokenizer
from lmcore.models.eval_mode import eval_mode
from lmcore.models.transformer import Transformer
from lmcore.stages.chat import Example, encode_example, pad_batch
from lmcore.stages.preferences import Pair
from lmcore.stages.sft import StageConfig, begin, check_fits, update


def dpo_loss(pol_chosen: torch.Tensor, pol_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean DPO loss and the per-pair reward margins, from (B,) sequence log-probabilities."""
    margin = beta * ((pol_chosen - ref_chosen) - (pol_rejected - ref_rejected))  # (B,)
    return -F.logsigmoid(margin).mean(), margin.detach()


def sequence_logprobs(model: Transformer, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B,) sum of log p(token) over the target positions where `mask` is 1 (the response)."""
    logp = torch.log_softmax(model(ids[:, :-1], mask="causal").float(), -1)  # (B, T-1, V)
    tok = logp.gather(-1, ids[:, 1:, None]).squeeze(-1)  # (B, T-1)
    return (tok * mask[:, 1:]).sum(1)


def response_lengths(tok: Tokenizer, pairs: list[Pair]) -> torch.Tensor:
    """(B,) tokens in each chosen response, <|end|> included."""
    return torch.tensor([len(tok.encode(p.chosen)) + 1 for p in pairs], dtype=torch.float32)


def pair_rows(tok: Tokenizer, pairs: list[Pair]) -> list[tuple[list[int], list[int]]]:
    """Chosen rows then rejected rows (2B of them), each with its response-only mask."""
    chosen = [encode_example(tok, Example(p.task, p.prompt, p.chosen)) for p in pairs]
    rejected = [encode_example(tok, Example(p.task, p.prompt, p.rejected)) for p in pairs]
    return chosen + rejected


def _pair_logprobs(model: Transformer, tok: Tokenizer, pairs: list[Pair]
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    ids, mask = pad_batch(pair_rows(tok, pairs), tok.pad_id)
    device = next(model.parameters()).device
    lp = sequence_logprobs(model, ids.to(device), mask.to(device))  # (2B,)
    return lp[:len(pairs)], lp[len(pairs):]


@torch.no_grad()
def preference_metrics(model: Transformer, reference: Transformer, tok: Tokenizer,
                       pairs: list[Pair], beta: float, batch: int = 64) -> dict[str, float]:
    """Held-out numbers: win rate (policy gives the chosen response the higher probability),
    mean implicit reward margin, and the per-token KL(policy || reference) on the chosen
    responses, in nats."""
    wins, margins, kl_sum, kl_n = 0, [], 0.0, 0
    with eval_mode(model), eval_mode(reference):
        for i in range(0, len(pairs), batch):
            part = pairs[i:i + batch]
            pw, pl = _pair_logprobs(model, tok, part)
            rw, rl = _pair_logprobs(reference, tok, part)
            wins += int((pw > pl).sum())
            margins += (beta * ((pw - rw) - (pl - rl))).tolist()
            ids, mask = pad_batch(pair_rows(tok, part)[:len(part)], tok.pad_id)
            lp = torch.log_softmax(model(ids[:, :-1], mask="causal").double(), -1)
            lq = torch.log_softmax(reference(ids[:, :-1], mask="causal").double(), -1)
            kl = (lp.exp() * (lp - lq)).sum(-1)  # (B, T-1): KL at each position
            keep = mask[:, 1:]
            kl_sum += float((kl * keep).sum())
            kl_n += int(keep.sum())
    n = len(pairs)
    return {"win_rate": wins / n if n else float("nan"),
            "margin": sum(margins) / n if n else float("nan"),
            "kl": kl_sum / kl_n if kl_n else float("nan")}


def train_dpo(model: Transformer, tok: Tokenizer, pairs: list[Pair], config: StageConfig,
              callback: Callable[[dict], None] | None = None,
              stop: threading.Event | None = None,
              evaluate: Callable[[int, Transformer], dict] | None = None) -> dict:
    """DPO-tune `model` in place against a frozen copy of itself taken now (the reference).

    Reports per step the loss, the batch's mean reward margin and reward accuracy;
    `evaluate(step, reference)` adds held-out numbers every `eval_every` steps and at the end.
    """
    if not pairs:
        raise ValueError("no preference pairs to tune on")
    check_fits(model, pair_rows(tok, pairs))
    reference = copy.deepcopy(model).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    emit = callback or (lambda d: None)
    sched, rng, opt = begin(model, config)
    t0 = time.perf_counter()
    step, loss_v = 0, float("nan")
    while step < config.steps and not (stop is not None and stop.is_set()):
        step += 1
        for g in opt.param_groups:
            g["lr"] = sched.lr_at(step)
        batch = [pairs[rng.randrange(len(pairs))] for _ in range(config.batch_size)]
        with torch.no_grad():
            ref_w, ref_l = _pair_logprobs(reference, tok, batch)
        pol_w, pol_l = _pair_logprobs(model, tok, batch)
        loss, margin = dpo_loss(pol_w, pol_l, ref_w, ref_l, config.beta)
        if config.nll_weight:
            nll = -(pol_w / response_lengths(tok, batch).to(pol_w.device)).mean()
            loss = loss + config.nll_weight * nll
        loss_v = update(model, opt, loss, step, "DPO")
        point = {"step": step, "steps": config.steps, "loss": loss_v,
                 "batch_margin": float(margin.mean()),
                 "batch_reward_acc": float((margin > 0).double().mean()),
                 "elapsed_s": time.perf_counter() - t0}
        if evaluate is not None and config.due(step):
            point.update(evaluate(step, reference))
        emit(point)
    status = "done" if step >= config.steps else "stopped"
    if status == "stopped" and evaluate is not None and step:
        emit({"step": step, "steps": config.steps, "loss": loss_v,
              "elapsed_s": time.perf_counter() - t0, **evaluate(step, reference)})
    return {"status": status, "steps": step, "loss": loss_v,
            "elapsed_s": time.perf_counter() - t0}
