"""An encoder-decoder Transformer (T5/BART family) built from the decoder's own pieces.

The encoder is a stack of the same `Block`s run with a bidirectional mask over the (corrupted)
source; the decoder is a stack of `DecoderBlock`s: the same causal self-attention and MLP plus
a cross-attention sublayer whose queries come from the decoder and whose keys and values come
from the encoder's output. One token table serves the encoder input, the decoder input and
(tied) the output head, as in T5. With `n_layer` = L in the config the model has ceil(L/2)
encoder and max(1, floor(L/2)) decoder layers, so a comparison at one config spends about the
same depth; cross-attention adds 4·C² weights per decoder layer, reported as the parameter
count. The decoder's position table has context + 1 rows: it reads [BOS] then the whole
window of `context` tokens, one more than a decoder-only model reads.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from lmcore.models.attention import attention
from lmcore.models.eval_mode import eval_mode
from lmcore.models.transformer import Block, TransformerConfig, init_weights, make_norm


class CrossAttention(nn.Module):
    """Decoder queries over encoder keys/values; no causal mask, encoder padding hidden."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.n_head, self.impl = config.n_head, config.attention
        self.c_q = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.c_kv = nn.Linear(config.n_embd, 2 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor,
                memory_mask: torch.Tensor | None) -> torch.Tensor:
        B, T, C = x.shape
        S = memory.shape[1]
        H = self.n_head
        q = self.c_q(x).view(B, T, H, C // H).transpose(1, 2)  # (B, H, T, D)
        k, v = self.c_kv(memory).split(C, dim=2)
        k = k.view(B, S, H, C // H).transpose(1, 2)  # (B, H, S, D)
        v = v.view(B, S, H, C // H).transpose(1, 2)  # (B, H, S, D)
        y = attention(q, k, v, impl=self.impl, causal=False,
                      key_padding_mask=memory_mask)  # (B, H, T, D)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class DecoderBlock(Block):
    """Causal self-attention, then cross-attention to the encoder, then the MLP."""

    def __init__(self, config: TransformerConfig):
        super().__init__(config)
        self.ln_x = make_norm(config)
        self.cross = CrossAttention(config)

    def forward(self, x: torch.Tensor, memory: torch.Tensor = None,  # type: ignore[override]
                memory_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self._sub(x, lambda h: self.attn(h, causal=True, prefix_len=None,
                                             key_padding_mask=None)[0], self.ln_1)
        x = self._sub(x, lambda h: self.cross(h, memory, memory_mask), self.ln_x)
        return self._sub(x, self.mlp, self.ln_2)


class EncoderDecoder(nn.Module):
    """Source ids (B, S) and decoder input ids (B, T) to next-token logits (B, T, V)."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        self.n_enc = max(1, math.ceil(config.n_layer / 2))
        self.n_dec = max(1, config.n_layer // 2)
        C = config.n_embd
        self.wte = nn.Embedding(config.vocab_size, C)
        self.wpe_enc = nn.Embedding(config.context, C)
        self.wpe_dec = nn.Embedding(config.context + 1, C)
        self.drop = nn.Dropout(config.dropout)
        # one list, encoder layers first: parameters are named h.0, h.1, .. like the decoder's
        self.h = nn.ModuleList([Block(config) for _ in range(self.n_enc)]
                               + [DecoderBlock(config) for _ in range(self.n_dec)])
        self.ln_enc = make_norm(config) if config.norm_position == "pre" else nn.Identity()
        self.ln_f = make_norm(config) if config.norm_position == "pre" else nn.Identity()
        self.lm_head = nn.Linear(C, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied, as T5
        init_weights(self, self.n_enc + self.n_dec)

    @property
    def enc(self) -> list[Block]:
        return list(self.h[: self.n_enc])

    @property
    def dec(self) -> list[DecoderBlock]:
        return list(self.h[self.n_enc:])

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _check(self, ids: torch.Tensor, limit: int, what: str) -> None:
        if ids.dim() != 2:
            raise ValueError(f"{what} ids must be shaped (B, T), got {tuple(ids.shape)}")
        if ids.shape[1] > limit:
            raise ValueError(f"{ids.shape[1]} {what} tokens exceed the limit of {limit}")
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.config.vocab_size):
            raise ValueError(f"token ids must lie in 0..{self.config.vocab_size - 1}")

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor | None = None,
               return_attention: bool = False
               ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, S) source ids (True in `src_mask` = real token) -> (B, S, C) memory (and, when
        asked, each encoder layer's (B, H, S, S) attention weights)."""
        self._check(src, self.config.context, "source")
        pos = torch.arange(src.shape[1], device=src.device)
        x = self.drop(self.wte(src) + self.wpe_enc(pos))  # (B, S, C)
        weights = []
        for block in self.enc:
            x, w = block(x, causal=False, prefix_len=None, key_padding_mask=src_mask,
                         want_weights=return_attention)
            weights.append(w)
        x = self.ln_enc(x)
        return (x, weights) if return_attention else x

    def decode(self, tgt: torch.Tensor, memory: torch.Tensor,
               src_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) decoder input ids (starting with [BOS]) -> (B, T, V) logits."""
        self._check(tgt, self.config.context + 1, "decoder")
        pos = torch.arange(tgt.shape[1], device=tgt.device)
        x = self.drop(self.wte(tgt) + self.wpe_dec(pos))  # (B, T, C)
        for block in self.dec:
            x = block(x, memory, src_mask)
        return self.lm_head(self.ln_f(x))  # (B, T, V)

    def forward(self, src: torch.Tensor, tgt: torch.Tensor,
                src_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(tgt, self.encode(src, src_mask), src_mask)


@torch.no_grad()
def generate_encdec(model: EncoderDecoder, prompt: list[int], n: int, *, temperature: float = 1.0,
                    top_k: int | None = None, seed: int = 0, mask_id: int = 4,
                    bos_id: int = 2) -> list[int]:
    """Continue `prompt` the way the model learned to fill a masked tail: the encoder reads
    prompt + [MASK] once, the decoder starts from [BOS] + prompt and samples token by token,
    re-running the whole decoder each step (no cache). The prompt is cut to its last
    context - 1 tokens and generation stops at the decoder's context + 1 positions. The ids
    of [MASK] and [BOS] default to lmcore's tokenizers' (4 and 2)."""
    if n < 1:
        raise ValueError(f"ask for at least one token, got {n}")
    C = model.config.context
    prompt = list(prompt)[-(C - 1):] if C > 1 else []
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    with eval_mode(model):
        memory = model.encode(torch.tensor([prompt + [mask_id]], device=device))
        dec = [bos_id] + prompt
        new: list[int] = []
        while len(new) < n and len(dec) <= C:
            logits = model.decode(torch.tensor([dec], device=device), memory)[0, -1].float()
            if temperature <= 0:
                tok = int(logits.argmax())
            else:
                logits = logits / temperature
                if top_k is not None and top_k < logits.numel():
                    cut = torch.topk(logits, top_k).values[-1]
                    logits = logits.masked_fill(logits < cut, float("-inf"))
                tok = int(torch.multinomial(torch.softmax(logits, -1).cpu(), 1, generator=gen))
            new.append(tok)
            dec.append(tok)
    return new
