"""Score a text longer than the model's context four ways, in bits per character.

A model with a window of W tokens cannot see a T-token text at once (T > W). The strategies:

- truncation: score only the first W tokens (cheap, and says nothing about the rest);
- disjoint chunks: cut the text into W-token pieces and score each from scratch, so the first
  tokens of every piece are predicted with almost no context;
- sliding window, stride S (Hugging Face's "perplexity of fixed-length models"): windows of W
  tokens start every S tokens and only the tokens not scored by the previous window are scored,
  so every token gets at least W - S tokens of context; S = W is disjoint chunks, S = 1 the
  best the model can do, at W/S times the cost;
- full: one pass over all T tokens with the tiled (FlashAttention) kernel, whose memory grows
  linearly with T, possible only when the model's positions reach T (learned positional
  embeddings stop at the model's context).

Every window is scored as a text of its own through the model's start-of-text convention (a
Transformer's BOS, an n-gram's <s>), so a token's context is exactly the window tokens before
it. Every token is scored at most once and the bits are divided by the characters those
tokens cover, so strategies are comparable. Memory is the process RSS sampled while the
strategy runs.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from lmcore.models.eval_mode import eval_mode
from lmcore.models.lm import LN2, LanguageModel
from lmcore.train.memory import RSSSampler, rss_bytes

if TYPE_CHECKING:
    from lmcore.data.tokenizers import Tokenizer

StrategyName = Literal["truncation", "disjoint", "sliding", "full"]
STRATEGIES: tuple[str, ...] = ("truncation", "disjoint", "sliding", "full")


@dataclass(frozen=True)
class Window:
    """One forward pass: tokens [begin, end) go in, tokens [score_from, end) are scored."""

    index: int
    begin: int
    score_from: int
    end: int

    @property
    def scored(self) -> int:
        return self.end - self.score_from

    @property
    def context(self) -> int:
        return self.score_from - self.begin


@dataclass(frozen=True)
class WindowScore:
    """What one window contributed: tokens, characters and bits of its scored part."""

    index: int
    begin: int
    score_from: int
    end: int
    char_start: int  # characters [char_start, char_end) are the scored tokens' text
    char_end: int
    tokens: int
    chars: int
    bits: float
    seconds: float  # wall time of this window
    t_end: float  # seconds since the strategy started, when this window finished
    rss: int  # process RSS in bytes right after the window

    @property
    def bits_per_char(self) -> float:
        return self.bits / self.chars if self.chars else float("nan")

    @property
    def bits_per_token(self) -> float:
        return self.bits / self.tokens if self.tokens else float("nan")


@dataclass
class StrategyResult:
    """Bits per character over the characters actually scored, with time and memory."""

    strategy: str
    window: int
    stride: int | None
    attention: str | None
    total_tokens: int  # tokens in the whole text
    total_chars: int
    windows: list[WindowScore] = field(default_factory=list)
    seconds: float = 0.0
    rss_start: int = 0
    peak_rss: int = 0
    memory: tuple[list[float], list[int]] = ((), ())  # (seconds, RSS bytes) samples
    complete: bool = True  # False when stopped early

    @property
    def bits(self) -> float:
        return float(sum(w.bits for w in self.windows))

    @property
    def tokens_scored(self) -> int:
        return sum(w.tokens for w in self.windows)

    @property
    def chars_scored(self) -> int:
        return sum(w.chars for w in self.windows)

    @property
    def bits_per_char(self) -> float:
        c = self.chars_scored
        return self.bits / c if c else float("nan")

    @property
    def bits_per_token(self) -> float:
        n = self.tokens_scored
        return self.bits / n if n else float("nan")

    @property
    def peak_extra_rss(self) -> int:
        """Peak RSS during the run above the RSS when it started (bytes)."""
        return max(0, self.peak_rss - self.rss_start)

    @property
    def coverage(self) -> float:
        """Share of the text's characters that were scored."""
        return self.chars_scored / self.total_chars if self.total_chars else 0.0

    def summary(self) -> dict:
        """One table row."""
        return {"strategy": self.strategy, "window": self.window, "stride": self.stride,
                "attention": self.attention, "bits_per_char": self.bits_per_char,
                "bits_per_token": self.bits_per_token, "tokens_scored": self.tokens_scored,
                "chars_scored": self.chars_scored, "coverage": self.coverage,
                "windows": len(self.windows), "seconds": self.seconds,
                "peak_extra_mb": self.peak_extra_rss / 2**20,
                "peak_rss_mb": self.peak_rss / 2**20, "complete": self.complete}


# --- which windows each strategy runs -----------------------------------------------------

def plan_windows(n_tokens: int, strategy: str, window: int,
                 stride: int | None = None) -> list[Window]:
    """The forward passes of a strategy over `n_tokens` tokens with a `window`-token model."""
    if window < 1:
        raise ValueError(f"the window must be at least 1 token, got {window}")
    if strategy == "truncation":
        return [Window(0, 0, 0, min(window, n_tokens))] if n_tokens else []
    if strategy == "full":
        return [Window(0, 0, 0, n_tokens)] if n_tokens else []
    if strategy == "disjoint":
        stride = window
    elif strategy != "sliding":
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if stride is None or not 1 <= stride <= window:
        raise ValueError(f"the stride must be between 1 and the window ({window}) tokens, "
                         f"got {stride}: a larger stride would skip tokens")
    out: list[Window] = []
    prev_end = 0
    for begin in range(0, n_tokens, stride):  # Hugging Face's fixed-length perplexity loop
        end = min(begin + window, n_tokens)
        out.append(Window(len(out), begin, prev_end, end))
        prev_end = end
        if end == n_tokens:
            break
    return out


def plan_work(windows: Sequence[Window]) -> list[int]:
    """Cumulative token positions the model reads after each window: the honest measure of
    progress (a sliding window with stride C/4 reads each token about 4 times, truncation
    once), so a progress bar and its ETA move at the speed the work does."""
    out, total = [], 0
    for w in windows:
        total += w.end - w.begin
        out.append(total)
    return out


# --- how a model scores a window --------------------------------------------------------

def max_window(model: LanguageModel) -> int | None:
    """The most tokens `model` scores in one pass (None: no limit of its own, e.g. an n-gram).

    A Transformer of context C reads [BOS] + ids[:-1] to score ids, so C tokens per pass.
    """
    net = getattr(model, "model", None)
    ctx = getattr(getattr(net, "config", None), "context", None)
    return int(ctx) if ctx is not None else None


def attention_of(model: LanguageModel) -> str | None:
    """The attention implementation a Transformer model runs ('tiled', 'sdpa', 'naive')."""
    return getattr(getattr(getattr(model, "model", None), "config", None), "attention", None)


def with_attention(model: LanguageModel, impl: str | None) -> LanguageModel:
    """The same Transformer (same weights) running attention `impl`; other models unchanged.

    The network is copied, so a model another page or job is using is never modified.
    """
    net = getattr(model, "model", None)
    if impl is None or net is None or attention_of(model) is None or attention_of(model) == impl:
        return model
    from lmcore.models.attention import IMPLS

    if impl not in IMPLS:
        raise ValueError(f"attention must be one of {', '.join(IMPLS)}, got {impl!r}")
    twin = copy.copy(model)
    twin.model = copy.deepcopy(net)
    twin.model.config.attention = impl
    twin.config = twin.model.config
    for module in twin.model.modules():
        if hasattr(module, "impl"):
            module.impl = impl
    return twin


def window_logprobs(model: LanguageModel, ids: Sequence[int], n_context: int, *,
                    head_rows: int = 1024) -> np.ndarray:
    """Natural-log probabilities of ids[n_context:] with the window read as a text of its own.

    Any model goes through the contract's `token_logprobs`. A Transformer is run directly,
    with the same numbers: [BOS] + ids[:-1] through the network once, then the output head
    and log-softmax only on the scored positions, `head_rows` at a time, so a full pass over
    T tokens never holds a (T, vocabulary) matrix and its memory is the attention's and the
    activations', which is what the strategies compare.
    """
    ids = [int(i) for i in ids]
    net = getattr(model, "model", None)
    bos = getattr(model, "bos_id", None)
    if net is None or bos is None or not hasattr(net, "hidden") or not hasattr(net, "lm_head"):
        return np.asarray(model.token_logprobs(ids), dtype=np.float64)[n_context:]
    out = np.empty(len(ids) - n_context, dtype=np.float64)
    if not len(out):
        return out
    device = next(net.parameters()).device
    x = torch.tensor([[bos] + ids[:-1]], dtype=torch.long, device=device)  # (1, T)
    target = torch.tensor(ids, dtype=torch.long, device=device)  # (T,)
    with eval_mode(net), torch.no_grad():
        h = net.hidden(x, mask="causal")[0]  # (T, C)
        for a in range(n_context, len(ids), head_rows):
            b = min(a + head_rows, len(ids))
            lp = torch.log_softmax(net.lm_head(h[a:b]).double(), dim=-1)  # (rows, V)
            out[a - n_context:b - n_context] = \
                lp.gather(1, target[a:b, None])[:, 0].cpu().numpy()
    return out


def char_bounds(offsets: Sequence[tuple[int, int]], n_chars: int) -> np.ndarray:
    """(T+1,) character boundaries: token t owns characters [b[t], b[t+1]); b[0]=0, b[T]=n.

    Characters between tokens (e.g. whitespace a tokenizer drops) belong to the next token, so
    the characters of any partition of the tokens add up to the whole text.
    """
    starts = np.array([s for s, _ in offsets], dtype=np.int64) if len(offsets) else \
        np.zeros(0, dtype=np.int64)
    b = np.empty(len(starts) + 1, dtype=np.int64)
    b[:-1] = np.maximum.accumulate(np.clip(starts, 0, n_chars)) if len(starts) else starts
    if len(starts):
        b[0] = 0
    b[-1] = n_chars
    return b


# --- running a strategy -----------------------------------------------------------------

def evaluate_ids(model: LanguageModel, ids: Sequence[int], bounds: np.ndarray, strategy: str, *,
                 window: int | None = None, stride: int | None = None,
                 attention: str | None = "tiled",
                 on_window: Callable[[WindowScore], None] | None = None,
                 on_memory: Callable[[float, int], None] | None = None,
                 stop: threading.Event | None = None,
                 sample_interval: float = 0.02) -> StrategyResult:
    """Run `strategy` over token `ids` whose characters are delimited by `bounds`.

    `on_window(WindowScore)` is called after each window (in this thread); `on_memory(seconds,
    rss_bytes)` receives the RSS samples as they are taken, from a relay thread, so it must be
    thread-safe (a job's `ctx.log` is). `stop` ends the run after the current window.
    """
    ids = list(ids)
    n = len(ids)
    limit = max_window(model)
    if window is None and strategy == "full":
        window = max(n, 1)
    if window is None:
        if limit is None:
            raise ValueError("this model has no context limit of its own: give a window size")
        window = limit
    if limit is not None and strategy != "full" and window > limit:
        raise ValueError(f"a window of {window} tokens exceeds the model's context of "
                         f"{limit} tokens")
    if strategy == "full" and limit is not None and n > limit:
        raise ValueError(
            f"a full-length pass needs the model to reach all {n:,} tokens, but its positions "
            f"stop at {limit:,} (learned positional embeddings): use the sliding window, or a "
            f"shorter text / a model with a longer context")
    plan = plan_windows(n, strategy, window, stride)
    result = StrategyResult(strategy=strategy, window=n if strategy == "full" else window,
                            stride={"disjoint": window, "sliding": stride}.get(strategy),
                            attention=None, total_tokens=n, total_chars=int(bounds[-1]))
    model = with_attention(model, attention)
    result.attention = attention_of(model)
    sampler = RSSSampler(interval=sample_interval)
    t0 = time.perf_counter()
    result.rss_start = rss_bytes()
    done = threading.Event()
    relay = None
    sampler.start()
    if on_memory is not None:  # stream samples while a long window runs, not only after it
        relay = threading.Thread(target=_relay, args=(sampler, on_memory, done),
                                 name="lmcore-rss-relay", daemon=True)
        relay.start()
    try:
        for w in plan:
            if stop is not None and stop.is_set():
                result.complete = False
                break
            t_w = time.perf_counter()
            lp = window_logprobs(model, ids[w.begin:w.end], w.context)
            bits = float(-lp.sum() / LN2)
            if not math.isfinite(bits):
                raise ValueError(f"the model gave a scored token probability 0 in tokens "
                                 f"{w.score_from}-{w.end}: use a smoothed model")
            now = time.perf_counter()
            c0, c1 = int(bounds[w.score_from]), int(bounds[w.end])
            ws = WindowScore(index=w.index, begin=w.begin, score_from=w.score_from, end=w.end,
                             char_start=c0, char_end=c1, tokens=w.scored, chars=c1 - c0,
                             bits=bits, seconds=now - t_w, t_end=now - t0, rss=rss_bytes())
            result.windows.append(ws)
            if on_window is not None:
                on_window(ws)
    finally:
        sampler.stop()
        done.set()
        if relay is not None:
            relay.join()
    result.seconds = time.perf_counter() - t0
    times, rss = sampler.samples()
    result.memory = (times, rss)
    result.peak_rss = max([result.rss_start, *rss])
    return result


def _relay(sampler: RSSSampler, on_memory: Callable[[float, int], None],
           done: threading.Event, every: float = 0.1) -> None:
    """Pass new RSS samples to `on_memory` every `every` seconds until `done` (a thread)."""
    sent = 0
    while True:
        finished = done.wait(every)
        times, rss = sampler.samples()
        sent = min(sent, len(times))  # the sampler thins old samples on very long runs
        for t, r in zip(times[sent:], rss[sent:], strict=True):
            on_memory(t, r)
        sent = len(times)
        if finished:
            return


def evaluate(model: LanguageModel, tokenizer: Tokenizer, text: str, strategy: str, *,
             window: int | None = None, stride: int | None = None,
             attention: str | None = "tiled", **kwargs) -> StrategyResult:
    """Tokenize `text` and run `strategy` over it (see `evaluate_ids` for the options)."""
    if not text:
        raise ValueError("the text is empty: nothing to score")
    ids, offsets = tokenizer.encode_offsets(text)
    if not ids:
        raise ValueError("the tokenizer produced no tokens for this text")
    return evaluate_ids(model, ids, char_bounds(offsets, len(text)), strategy, window=window,
                        stride=stride, attention=attention, **kwargs)


def stride_sweep(model: LanguageModel, tokenizer: Tokenizer, text: str,
                 strides: Sequence[int], *,
                 window: int | None = None, attention: str | None = "tiled",
                 stop: threading.Event | None = None,
                 on_result: Callable[[StrategyResult], None] | None = None,
                 ) -> list[StrategyResult]:
    """Bits/char of the sliding window at each stride: smaller strides give more context."""
    ids, offsets = tokenizer.encode_offsets(text)
    bounds = char_bounds(offsets, len(text))
    out = []
    for s in sorted(set(int(s) for s in strides), reverse=True):
        if stop is not None and stop.is_set():
            break
        r = evaluate_ids(model, ids, bounds, "sliding", window=window, stride=s,
                         attention=attention, stop=stop)
        out.append(r)
        if on_result is not None:
            on_result(r)
    return out


def token_bits(model: LanguageModel, ids: Sequence[int], *, window: int | None = None,
               stride: int | None = None) -> np.ndarray:
    """(T,) bits of every token under the sliding window (one value per token, any length)."""
    limit = max_window(model)
    window = window or limit or max(len(ids), 1)
    stride = stride or max(1, window // 2)
    out = np.zeros(len(ids), dtype=np.float64)
    for w in plan_windows(len(ids), "sliding", window, min(stride, window)):
        lp = window_logprobs(model, list(ids[w.begin:w.end]), w.context)
        out[w.score_from:w.end] = -lp / LN2
    return out

