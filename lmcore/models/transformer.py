"""A GPT-style Transformer (nanoGPT's layout) whose every design choice is a config value.

`Transformer` maps token ids (B, T) to next-token logits (B, T, V). Activation, norm kind and
position, residual connections, attention implementation (naive / sdpa / tiled, see
`attention.py`) and the attention mask (causal / prefix / bidirectional, see `masks.py`) are
fields of `TransformerConfig`, so the lab's comparisons change one field and nothing else.
`TransformerLM` wraps a model and its tokenizer in the lmcore LanguageModel contract.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lmcore.models.attention import IMPLS, attention, naive_attention
from lmcore.models.eval_mode import eval_mode
from lmcore.models.lm import LanguageModel, Score, TextTokenizer, score_ids
from lmcore.models.masks import MASK_KINDS

ACTIVATIONS = ("relu", "gelu", "swiglu", "tanh", "sigmoid")
NORMS = ("layernorm", "rmsnorm")
NORM_POSITIONS = ("pre", "post")


INT_FIELDS = ("vocab_size", "context", "n_layer", "n_head", "n_embd")
BOOL_FIELDS = ("residual", "tie_weights", "bias", "nsp_head")


class ConfigError(ValueError):
    """A Transformer config value of the wrong type or out of range; the message names the field."""


def _kind(value: object) -> str:
    return f"{value!r} ({type(value).__name__})"


@dataclass
class TransformerConfig:
    """Everything that defines the network's shape and wiring."""

    vocab_size: int
    context: int = 256  # longest input, in tokens (learned absolute positions)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128  # model width; must divide by n_head
    mlp_ratio: float = 4  # MLP hidden width = mlp_ratio * n_embd
    activation: str = "gelu"  # relu | gelu | swiglu | tanh | sigmoid
    norm: str = "layernorm"  # layernorm | rmsnorm
    norm_position: str = "pre"  # pre (GPT-2) | post (original Transformer, BERT)
    residual: bool = True
    dropout: float = 0.0
    tie_weights: bool = True  # output head shares the token embedding matrix
    attention: str = "sdpa"  # sdpa | naive | tiled
    mask: str = "causal"  # causal | prefix | bidirectional
    bias: bool = True  # biases in Linear layers and LayerNorm
    nsp_head: bool = False  # a 2-way classifier on position 0 ([CLS]): next-sentence prediction

    def __post_init__(self) -> None:
        """Check every field's type and range (a config may come from JSON or a form)."""
        for name in INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ConfigError(f"{name} must be a whole number, got {_kind(value)}")
            setattr(self, name, int(value))  # numpy integers become plain ints (JSON-safe)
            if value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value}")
        if self.n_embd % self.n_head:
            raise ConfigError(
                f"width n_embd={self.n_embd} must be a multiple of n_head={self.n_head}")
        for name in ("mlp_ratio", "dropout"):
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                    or not math.isfinite(value)):
                raise ConfigError(f"{name} must be a finite number, got {_kind(value)}")
        if not self.mlp_ratio > 0:
            raise ConfigError(f"mlp_ratio must be positive, got {self.mlp_ratio}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must lie in [0, 1), got {self.dropout}")
        for name in BOOL_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise ConfigError(f"{name} must be true or false, got {_kind(value)}")
        for name, allowed in (("activation", ACTIVATIONS), ("norm", NORMS),
                              ("norm_position", NORM_POSITIONS), ("attention", IMPLS),
                              ("mask", MASK_KINDS)):
            value = getattr(self, name)
            if not isinstance(value, str) or value not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, "
                                  f"got {_kind(value)}")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def mlp_hidden(self) -> int:
        return max(1, int(round(self.mlp_ratio * self.n_embd)))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TransformerConfig:
        """Rebuild from `to_dict()`; unknown or missing keys are an error (not silently dropped)."""
        if not isinstance(d, dict):
            raise ConfigError(f"a Transformer config must be a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in set(d) - known)
        if unknown:
            raise ConfigError(f"unknown Transformer config keys: {', '.join(unknown)}")
        if "vocab_size" not in d:
            raise ConfigError("vocab_size is missing from the Transformer config")
        return cls(**d)


def make_norm(config: TransformerConfig) -> nn.Module:
    """LayerNorm (optionally without bias) or RMSNorm over the width."""
    if config.norm == "rmsnorm":
        return nn.RMSNorm(config.n_embd, eps=1e-5)
    return nn.LayerNorm(config.n_embd, bias=config.bias)


class KVCache:
    """Keys and values of every layer for the tokens seen so far, appended step by step.

    With a `capacity` (the most tokens it will hold, e.g. the model's context), each layer's
    keys and values are written into buffers allocated once, instead of concatenated into a
    new tensor every step (which copies the whole cache each time)."""

    def __init__(self, n_layer: int, capacity: int | None = None):
        self.k: list[torch.Tensor | None] = [None] * n_layer  # each (B, H, T_seen, D)
        self.v: list[torch.Tensor | None] = [None] * n_layer
        self.capacity = capacity
        self._kbuf: list[torch.Tensor | None] = [None] * n_layer  # each (B, H, capacity, D)
        self._vbuf: list[torch.Tensor | None] = [None] * n_layer

    @property
    def length(self) -> int:
        return 0 if self.k[0] is None else int(self.k[0].shape[2])

    def append(self, layer: int, k: torch.Tensor,
               v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add this step's (B, H, T_new, D) keys/values; return everything cached so far."""
        seen = 0 if self.k[layer] is None else self.k[layer].shape[2]
        end = seen + k.shape[2]
        if self.capacity is not None and end <= self.capacity:
            if self._kbuf[layer] is None:
                B, H, _, D = k.shape
                self._kbuf[layer] = k.new_empty(B, H, self.capacity, D)
                self._vbuf[layer] = v.new_empty(B, H, self.capacity, D)
            self._kbuf[layer][:, :, seen:end] = k
            self._vbuf[layer][:, :, seen:end] = v
            k, v = self._kbuf[layer][:, :, :end], self._vbuf[layer][:, :, :end]
        elif self.k[layer] is not None:
            k = torch.cat([self.k[layer], k], dim=2)
            v = torch.cat([self.v[layer], v], dim=2)
        self.k[layer], self.v[layer] = k, v
        return k, v

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.k + self.v if t is not None)


class SelfAttention(nn.Module):
    """Multi-head self-attention; the mask kind and implementation come per call."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.n_head, self.impl = config.n_head, config.attention
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, *, causal: bool, prefix_len: torch.Tensor | None,
                key_padding_mask: torch.Tensor | None, cache: KVCache | None = None,
                layer: int = 0,
                want_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, T, C) output and, with `want_weights`, the (B, H, T, Tk) weights (else None)."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, D)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, D)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, D)
        if cache is not None:
            k, v = cache.append(layer, k, v)  # (B, H, T_seen, D); queries are the last T
        kw = dict(causal=causal, prefix_len=prefix_len, key_padding_mask=key_padding_mask)
        weights = None
        if want_weights:
            y, weights = naive_attention(q, k, v, return_weights=True, **kw)  # (B, H, T, Tk)
        else:
            y = attention(q, k, v, impl=self.impl, **kw)  # (B, H, T, D)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.resid_dropout(self.c_proj(y)), weights


class MLP(nn.Module):
    """Position-wise feed-forward: Linear, activation, Linear (SwiGLU gates with a 2nd Linear)."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        hidden = config.mlp_hidden
        self.activation = config.activation
        width = 2 * hidden if config.activation == "swiglu" else hidden  # value + gate
        self.c_fc = nn.Linear(config.n_embd, width, bias=config.bias)
        self.c_proj = nn.Linear(hidden, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def act(self, h: torch.Tensor) -> torch.Tensor:
        if self.activation == "swiglu":
            value, gate = h.chunk(2, dim=-1)
            return value * F.silu(gate)
        return {"relu": F.relu, "gelu": F.gelu, "tanh": torch.tanh,
                "sigmoid": torch.sigmoid}[self.activation](h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class Block(nn.Module):
    """One Transformer layer: attention then MLP, each with optional residual and pre/post norm."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.pre = config.norm_position == "pre"
        self.residual = config.residual
        self.ln_1 = make_norm(config)
        self.attn = SelfAttention(config)
        self.ln_2 = make_norm(config)
        self.mlp = MLP(config)

    def _sub(self, x, fn, norm):
        """x + f(norm(x)) (pre) or norm(x + f(x)) (post); without residual the x + is dropped."""
        if self.pre:
            out = fn(norm(x))
            return x + out if self.residual else out
        out = fn(x)
        return norm(x + out if self.residual else out)

    def forward(self, x: torch.Tensor, **attn_kw) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, T, C) output and the attention weights (None unless asked for)."""
        weights = []

        def attn(h):
            y, w = self.attn(h, **attn_kw)
            weights.append(w)
            return y

        x = self._sub(x, attn, self.ln_1)
        x = self._sub(x, self.mlp, self.ln_2)
        return x, weights[0]


def init_module(module: nn.Module) -> None:
    """GPT-2's initialisation of one layer: N(0, 0.02) weights and embeddings, zero biases."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)


def init_weights(model: nn.Module, depth: int) -> None:
    """`init_module` on every layer, then each residual projection (c_proj) at std
    0.02 / sqrt(2 · depth), GPT-2's scaling by the number of residual blocks."""
    model.apply(init_module)
    for name, p in model.named_parameters():
        if name.endswith("c_proj.weight"):
            nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * depth))


class Transformer(nn.Module):
    """Token ids (B, T) to next-token logits (B, T, V); mask kind from config or per call."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.context, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        # post-norm layers already end in a norm; pre-norm needs one before the head
        self.ln_f = make_norm(config) if config.norm_position == "pre" else nn.Identity()
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.wte.weight
        self.nsp: nn.Linear | None = None
        init_weights(self, config.n_layer)
        if config.nsp_head:  # BERT's next-sentence head, made last: other weights match a
            self.nsp = nn.Linear(config.n_embd, 2)  # model without it under the same seed
            init_module(self.nsp)

    def num_parameters(self, non_embedding: bool = False) -> int:
        """Distinct parameters (a tied matrix counted once); optionally without embeddings.

        `non_embedding=True` drops the position table and, when untied, the token table (both
        are lookups, not matmuls), which is the N in the FLOPs formula.
        """
        seen, n = set(), 0
        for p in self.parameters():  # parameters() already yields a shared tensor once
            if id(p) not in seen:
                seen.add(id(p))
                n += p.numel()
        if non_embedding:
            n -= self.wpe.weight.numel()
            if not self.config.tie_weights:
                n -= self.wte.weight.numel()
        return n

    def flops_per_token(self, training: bool = True, T: int | None = None) -> int:
        """FLOPs per token at sequence length T (default: context), PaLM's count.

        PaLM (Chowdhery et al. 2022, Appendix B): forward 2N (one multiply-add per matmul
        weight) + 4·L·T·d (Q·Kᵀ and P·V, each 2·T·d per layer); training (backward ≈ 2×
        forward) 6N + 12·L·T·d. Kaplan et al. (2020) count the attention term as 2·L·T·d.
        N = `num_parameters(non_embedding=True)`; norms, softmax and the mask are ignored.
        """
        T = self.config.context if T is None else int(T)
        N = self.num_parameters(non_embedding=True)
        L, d = self.config.n_layer, self.config.n_embd
        fwd = 2 * N + 4 * L * T * d
        return 3 * fwd if training else fwd

    def _mask_args(self, mask: str | None, prefix_len: torch.Tensor | None, B: int,
                   device: torch.device) -> tuple[bool, torch.Tensor | None]:
        kind = self.config.mask if mask is None else mask
        if kind not in MASK_KINDS:
            raise ValueError(f"mask must be one of {', '.join(MASK_KINDS)}, got {kind!r}")
        if kind == "prefix":
            if prefix_len is None:
                raise ValueError("mask='prefix' needs prefix_len: one prefix length per sample")
            prefix_len = torch.as_tensor(prefix_len, dtype=torch.long, device=device)
            if prefix_len.dim() == 0:
                prefix_len = prefix_len.expand(B)
            return True, prefix_len
        if prefix_len is not None:
            raise ValueError(f"prefix_len only applies to mask='prefix', not {kind!r}")
        return kind == "causal", None

    def hidden(self, idx: torch.Tensor, *, mask: str | None = None,
               prefix_len: torch.Tensor | None = None,
               key_padding_mask: torch.Tensor | None = None, cache: KVCache | None = None,
               return_attention: bool = False,
               ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor | None]]:
        """Final hidden states (B, T, C) before the output head (and attention weights)."""
        if idx.dim() != 2:
            raise ValueError(f"token ids must be shaped (B, T), got {tuple(idx.shape)}")
        B, T = idx.shape
        past = cache.length if cache is not None else 0
        if past + T > self.config.context:
            raise ValueError(f"{past + T} tokens exceed the model's context of "
                             f"{self.config.context}: use the last {self.config.context}")
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= self.config.vocab_size):
            raise ValueError(f"token ids must lie in 0..{self.config.vocab_size - 1}, got "
                             f"{int(idx.min())}..{int(idx.max())}")
        causal, prefix_len = self._mask_args(mask, prefix_len, B, idx.device)
        pos = torch.arange(past, past + T, device=idx.device)  # (T,)
        x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, C)
        weights = []
        for i, block in enumerate(self.h):
            x, w = block(x, causal=causal, prefix_len=prefix_len,
                         key_padding_mask=key_padding_mask, cache=cache, layer=i,
                         want_weights=return_attention)
            weights.append(w)
        x = self.ln_f(x)  # (B, T, C)
        return (x, weights) if return_attention else x

    def forward(self, idx: torch.Tensor, *, mask: str | None = None,
                prefix_len: torch.Tensor | None = None,
                key_padding_mask: torch.Tensor | None = None, cache: KVCache | None = None,
                return_attention: bool = False,
                ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor | None]]:
        """Logits (B, T, V); with `return_attention` also a list of (B, H, T, Tk) per layer.

        `mask` overrides the config's kind for this call; `prefix_len` (B,) goes with 'prefix'.
        `cache` appends this call's keys/values and offsets positions by what it holds.
        Attention weights are computed with the naive implementation (it materialises them).
        """
        out = self.hidden(idx, mask=mask, prefix_len=prefix_len,
                          key_padding_mask=key_padding_mask, cache=cache,
                          return_attention=return_attention)
        if return_attention:
            h, weights = out
            return self.lm_head(h), weights
        return self.lm_head(out)  # (B, T, V)


    def nsp_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, 2) is-next / not-next logits from the [CLS] position of `hidden` (B, T, C)."""
        if self.nsp is None:
            raise ValueError("this model has no next-sentence head: set nsp_head=True")
        return self.nsp(hidden[:, 0])


def state_fingerprint(model: nn.Module, extra: dict | None = None) -> str:
    """sha256 over every state-dict tensor's name, dtype, shape and bytes, plus `extra` JSON."""
    h = hashlib.sha256()
    h.update(json.dumps(extra or {}, sort_keys=True).encode())
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


class TransformerLM(LanguageModel):
    """A Transformer speaking the lmcore contract: BOS prepended, sliding window past context.

    The context used for a target at position p of [BOS] + ids is deterministic: the whole
    prefix while it fits in the model's context C, then windows that advance by `stride`
    (each target sees between C - stride + 1 and C tokens). `next_logprobs` and the batched
    `token_logprobs` use the same windows, so they agree. stride=1 is "always the last C".
    A prefix-LM model is read left to right here (prefix of length 0 = causal); a bidirectional
    (masked-LM) model has no left-to-right probabilities and is refused.
    """

    def __init__(self, model: Transformer, tokenizer: TextTokenizer | None = None, *,
                 bos_id: int | None = None,
                 stride: int | None = None, batch_size: int = 16):
        if model.config.mask == "bidirectional":
            raise ValueError("a bidirectional (masked-LM) model has no next-token "
                             "probabilities; score it with pseudo-log-likelihood instead")
        self.model = model
        self.tokenizer = tokenizer
        self.config = model.config
        self.vocab_size = model.config.vocab_size
        if bos_id is None:
            bos_id = getattr(tokenizer, "bos_id", 2)
        self.bos_id = int(bos_id)
        C = model.config.context
        self.stride = max(1, C // 2) if stride is None else int(stride)
        if not 1 <= self.stride <= C:
            raise ValueError(f"stride must lie in 1..{C} (the context), got {stride}")
        self.batch_size = batch_size

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        """float64 log-probs (B, T, V) of a batch of windows, in eval mode without grad."""
        with eval_mode(self.model), torch.no_grad():
            logits = self.model(x, mask="causal")
        return torch.log_softmax(logits.double(), dim=-1)

    def _window_start(self, p: int) -> int:
        """Start of the window whose last input predicts position p of [BOS] + ids."""
        C, S = self.config.context, self.stride
        return 0 if p <= C else -(-(p - C) // S) * S

    def next_logprobs(self, context: Sequence[int]) -> np.ndarray:
        full = [self.bos_id] + [int(i) for i in context]
        p = len(full)
        s = self._window_start(p)
        device = next(self.model.parameters()).device
        x = torch.tensor([full[s:p]], dtype=torch.long, device=device)  # (1, T)
        return self._run(x)[0, -1].cpu().numpy()

    def token_logprobs(self, ids: Sequence[int]) -> np.ndarray:
        full = [self.bos_id] + [int(i) for i in ids]
        n = len(full) - 1  # targets are positions 1..n
        if n <= 0:
            return np.zeros(0, dtype=np.float64)
        C = self.config.context
        windows = []  # (start, first target, last target): inputs full[start:last]
        lo = 1
        while lo <= n:
            s = self._window_start(lo)
            hi = min(s + C, n)  # every target in lo..hi has this same window start
            windows.append((s, lo, hi))
            lo = hi + 1
        out = np.empty(n, dtype=np.float64)
        device = next(self.model.parameters()).device
        by_len: dict[int, list] = {}
        for w in windows:
            by_len.setdefault(w[2] - w[0], []).append(w)
        target = torch.tensor(full, dtype=torch.long)
        for length, ws in by_len.items():
            for i in range(0, len(ws), self.batch_size):
                chunk = ws[i:i + self.batch_size]
                x = torch.stack([target[s:s + length] for s, _, _ in chunk]).to(device)
                lp = self._run(x).cpu()  # (b, length, V)
                for row, (s, lo, hi) in enumerate(chunk):
                    pos = torch.arange(lo, hi + 1)  # targets
                    out[lo - 1:hi] = lp[row, pos - 1 - s, target[pos]].numpy()
        return out

    def fingerprint(self) -> str:
        return state_fingerprint(self.model, {"config": self.config.to_dict(),
                                              "bos": self.bos_id, "stride": self.stride})

    def num_parameters(self) -> int:
        return self.model.num_parameters()

    def score_text(self, text: str) -> Score:
        """Held-out bits (per token, per char, per byte) of `text` under this model."""
        if self.tokenizer is None:
            raise ValueError("this TransformerLM has no tokenizer: use score_ids on token ids")
        return score_ids(self, self.tokenizer.encode(text), text)
