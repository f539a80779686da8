"""Sampling from a Transformer with temperature, top-k and top-p, reusing a KV cache.

Why a decoder generates cheaply: with a causal mask, the keys and values of tokens already
seen never change, so each new token needs one query row against the cached keys (O(T) work)
instead of re-encoding the whole prefix (O(T²)). With learned absolute positions the cache is
valid only while the text fits in the context; past it every step re-encodes the last window,
exactly what generation without a cache does, so both paths give the same tokens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from lmcore.models.eval_mode import eval_mode
from lmcore.models.lm import TextTokenizer
from lmcore.models.transformer import KVCache, Transformer


@dataclass
class Generation:
    """Sampled ids and, per new token, the model's probability of it (for display)."""

    ids: torch.Tensor  # (B, T + n) prompt then new tokens
    new: torch.Tensor  # (B, n)
    probs: torch.Tensor  # (B, n) p(token | everything before), temperature 1, unfiltered
    logits: torch.Tensor | None = None  # (B, n, V) raw logits of each step (when kept)
    cached_steps: int = 0  # steps that reused the KV cache (one query row each)


def filter_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> torch.Tensor:
    """(B, V) logits scaled by 1/temperature with tokens outside top-k / top-p set to -inf."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 to sample (0 means greedy), got {temperature}")
    z = logits / temperature
    if top_k is not None and 0 < top_k < z.shape[-1]:
        kth = torch.topk(z, top_k, dim=-1).values[..., -1:]  # (B, 1)
        z = z.masked_fill(z < kth, float("-inf"))
    if top_p is not None and 0 < top_p < 1:
        sorted_z, order = torch.sort(z, dim=-1, descending=True)
        cum = torch.softmax(sorted_z, dim=-1).cumsum(-1)
        drop = cum - torch.softmax(sorted_z, dim=-1) >= top_p  # mass before it already >= p
        sorted_z = sorted_z.masked_fill(drop, float("-inf"))
        z = torch.full_like(z, float("-inf")).scatter(-1, order, sorted_z)
    return z


def _check(model: Transformer, idx: torch.Tensor, n: int, top_k, top_p) -> torch.Tensor:
    if model.config.mask == "bidirectional":
        raise ValueError("a bidirectional (masked-LM) model cannot generate left to right: "
                         "every position sees the future; train a causal or prefix model")
    if not isinstance(idx, torch.Tensor):
        idx = torch.tensor(idx, dtype=torch.long)
    if idx.dim() == 1:
        idx = idx[None]
    if idx.dim() != 2 or idx.shape[1] == 0:
        raise ValueError("the prompt must hold at least one token (e.g. BOS), shaped (B, T)")
    if n < 0:
        raise ValueError(f"the number of tokens to generate must be >= 0, got {n}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must lie in (0, 1], got {top_p}")
    return idx.to(next(model.parameters()).device)


@torch.no_grad()
def generate_tokens(model: Transformer, idx: torch.Tensor, n: int, *, temperature: float = 1.0,
                    top_k: int | None = None, top_p: float | None = None, seed: int = 0,
                    use_cache: bool = True, keep_logits: bool = False,
                    step_seconds: list[float] | None = None) -> Generation:
    """Append `n` sampled tokens to each row of `idx` (B, T); temperature 0 is greedy.

    `step_seconds`: when given, each step's wall time (model call and sampling) is appended.
    """
    idx = _check(model, idx, n, top_k, top_p)
    C = model.config.context
    gen = torch.Generator(device=idx.device).manual_seed(seed)
    cache = KVCache(model.config.n_layer) if use_cache else None
    probs, all_logits, cached_steps = [], [], 0
    with eval_mode(model):
        for step in range(n):
            t0 = time.perf_counter()
            if cache is not None and idx.shape[1] <= C:
                if step == 0:
                    logits = model(idx, mask="causal", cache=cache)[:, -1]  # prefill
                else:
                    logits = model(idx[:, -1:], mask="causal", cache=cache)[:, -1]
                    cached_steps += 1
            else:  # no cache, or the text outgrew the context: re-encode the last window
                logits = model(idx[:, -C:], mask="causal")[:, -1]  # (B, V)
            if keep_logits:
                all_logits.append(logits.clone())
            if temperature == 0:
                nxt = logits.argmax(-1, keepdim=True)  # (B, 1)
            else:
                z = filter_logits(logits.float(), temperature, top_k, top_p)
                nxt = torch.multinomial(torch.softmax(z, -1), 1, generator=gen)  # (B, 1)
            probs.append(torch.softmax(logits.float(), -1).gather(-1, nxt))
            idx = torch.cat([idx, nxt], dim=1)
            if step_seconds is not None:
                step_seconds.append(time.perf_counter() - t0)
    B = idx.shape[0]
    new = idx[:, idx.shape[1] - n:] if n else idx[:, :0]
    return Generation(
        ids=idx, new=new,
        probs=torch.cat(probs, 1) if probs else torch.zeros(B, 0),
        logits=torch.stack(all_logits, 1) if keep_logits and all_logits else None,
        cached_steps=cached_steps)


def generate(model: Transformer, idx: torch.Tensor, n: int, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, seed: int = 0,
             use_cache: bool = True) -> torch.Tensor:
    """(B, T + n) ids: the prompt followed by `n` sampled tokens (nanoGPT's `generate`)."""
    return generate_tokens(model, idx, n, temperature=temperature, top_k=top_k, top_p=top_p,
                           seed=seed, use_cache=use_cache).ids


def generate_text(model: Transformer, tokenizer: TextTokenizer, prompt: str, n: int, *,
                  temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None, seed: int = 0,
                  use_cache: bool = True) -> tuple[str, list[tuple[str, float]]]:
    """Continue `prompt` (BOS prepended); return the new text and (token, probability) pairs."""
    ids = [tokenizer.bos_id] + tokenizer.encode(prompt)
    device = next(model.parameters()).device
    out = generate_tokens(model, torch.tensor([ids], device=device), n, temperature=temperature,
                          top_k=top_k,
                          top_p=top_p, seed=seed, use_cache=use_cache)
    new = out.new[0].tolist()
    shown = tokenizer.token_strings(new) if hasattr(tokenizer, "token_strings") else [
        tokenizer.decode([i]) for i in new]
    return tokenizer.decode(new), list(zip(shown, out.probs[0].tolist(), strict=True))


@dataclass
class CacheTiming:
    """The same sampled tokens with and without the KV cache, timed step by step.

    `seconds[label][i]` is the median over repeats of step i's wall time ('cache' or
    'no cache'); step i reads a prefix of `prompt_tokens + i` tokens.
    """

    generation: Generation  # the cached run's tokens and probabilities
    prompt_tokens: int
    context: int
    seconds: dict[str, list[float]] = field(default_factory=dict)
    identical: bool = True  # both paths sampled the same tokens (they must)

    def total(self, label: str, steps: int | None = None) -> float:
        """Seconds for the first `steps` tokens (all by default)."""
        return sum(self.seconds[label][:steps])

    def speedup(self, steps: int | None = None) -> float:
        """Time without the cache over time with it, for the first `steps` tokens."""
        return self.total("no cache", steps) / max(self.total("cache", steps), 1e-12)

    def within_context(self) -> int:
        """How many of the steps ran with a valid cache (the text still within the context)."""
        return max(0, min(len(self.seconds.get("cache", [])),
                          self.context - self.prompt_tokens + 1))


def time_kv_cache(model: Transformer, idx: torch.Tensor, n: int, *, temperature: float = 1.0,
                  seed: int = 0, repeats: int = 3,
                  on_run: Callable[[str, int], None] | None = None) -> CacheTiming:
    """Generate `n` tokens with the KV cache and without, `repeats` times each (alternating,
    so a busy machine slows both alike), and keep the median time of every step.

    Why per step: without a cache step i re-encodes all tokens so far (work grows with i),
    with it step i runs one query row (work nearly flat), so the speed-up grows with length,
    up to the context, past which both re-encode the last window. `on_run(label, repeat)` is
    called before each run (progress).
    """
    runs: dict[str, list[list[float]]] = {"cache": [], "no cache": []}
    outs: dict[str, Generation] = {}
    for r in range(max(1, repeats)):
        for use, label in ((True, "cache"), (False, "no cache")):
            if on_run is not None:
                on_run(label, r)
            times: list[float] = []
            outs[label] = generate_tokens(model, idx, n, temperature=temperature, seed=seed,
                                          use_cache=use, step_seconds=times)
            runs[label].append(times)
    median = {label: [sorted(col)[len(col) // 2] for col in zip(*rows, strict=True)]
              for label, rows in runs.items()}
    return CacheTiming(generation=outs["cache"], prompt_tokens=int(idx.shape[1]),
                       context=model.config.context, seconds=median,
                       identical=torch.equal(outs["cache"].ids, outs["no cache"].ids))


def tokens_within_context(context: int, prompt_tokens: int) -> int:
    """The most tokens one can generate while the text still fits the context (at least 1)."""
    return max(1, context - prompt_tokens + 1)
