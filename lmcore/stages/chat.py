"""The chat template: special tokens the tokenizer learns, and the loss mask of an example.

An example is laid out as ``[BOS] <|user|> prompt <|assistant|> response <|end|>``. The three
chat tokens are added to the pretrained tokenizer as special tokens (they get the next free
ids; text that merely spells "<|user|>" still encodes as ordinary characters), and the model's
embedding table grows by three rows. Only the response and ``<|end|>`` are targets of the
instruction-tuning loss: the loss mask is 1 exactly there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tokenizers import Tokenizer as HFTokenizer

from lmcore.data.tokenizers import Tokenizer
from lmcore.models.transformer import Transformer

USER, ASSISTANT, END = "<|user|>", "<|assistant|>", "<|end|>"
CHAT_TOKENS = (USER, ASSISTANT, END)


@dataclass(frozen=True)
class Example:
    """One instruction and its checkable answer."""

    task: str
    prompt: str
    response: str


def has_chat_tokens(tok: Tokenizer) -> bool:
    return all(tok.token_to_id(t) is not None for t in CHAT_TOKENS)


def chat_tokenizer(tok: Tokenizer) -> Tokenizer:
    """`tok` with the chat tokens appended as special tokens (unchanged if it has them)."""
    if has_chat_tokens(tok):
        return tok
    hf = HFTokenizer.from_str(tok.to_json())
    hf.add_special_tokens(list(CHAT_TOKENS))
    return Tokenizer(hf, tok.kind)


def chat_ids(tok: Tokenizer) -> tuple[int, int, int]:
    """The ids of <|user|>, <|assistant|>, <|end|> in `tok`."""
    ids = tuple(tok.token_to_id(t) for t in CHAT_TOKENS)
    if any(i is None for i in ids):
        raise ValueError("this tokenizer has no chat tokens: instruction-tune (SFT) the model "
                         "first, or start from a model that was")
    return ids  # type: ignore[return-value]


def grow_vocab(model: Transformer, vocab_size: int, seed: int = 0) -> Transformer:
    """A copy of `model` whose token table has `vocab_size` rows; new rows start at the mean
    embedding plus small noise (so a new token starts as an "average" token, not a random one)."""
    old = model.config.vocab_size
    if vocab_size < old:
        raise ValueError(f"cannot shrink the vocabulary from {old} to {vocab_size}")
    cfg = type(model.config).from_dict({**model.config.to_dict(), "vocab_size": vocab_size})
    new = Transformer(cfg)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    gen = torch.Generator().manual_seed(seed)
    for key in ("wte.weight", "lm_head.weight"):
        w = state[key]  # (V_old, C)
        extra = w.mean(0, keepdim=True) + 0.02 * torch.randn(vocab_size - old, w.shape[1],
                                                              generator=gen, dtype=w.dtype)
        state[key] = torch.cat([w, extra], 0)  # (V_new, C)
    new.load_state_dict(state)
    return new.to(next(model.parameters()).device)


def prompt_ids(tok: Tokenizer, prompt: str) -> list[int]:
    """``[BOS] <|user|> prompt <|assistant|>``: what the model sees before it answers."""
    user, assistant, _ = chat_ids(tok)
    return [tok.bos_id, user, *tok.encode(prompt), assistant]


def encode_example(tok: Tokenizer, ex: Example) -> tuple[list[int], list[int]]:
    """Token ids of the whole example and its loss mask (1 on response tokens and <|end|>)."""
    head = prompt_ids(tok, ex.prompt)
    tail = [*tok.encode(ex.response), chat_ids(tok)[2]]
    return head + tail, [0] * len(head) + [1] * len(tail)


def pad_batch(rows: list[tuple[list[int], list[int]]], pad_id: int
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded (B, T) ids and (B, T) loss mask (padding is never a target)."""
    T = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), T), dtype=torch.bool)
    for i, (r, m) in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
        mask[i, :len(m)] = torch.tensor(m, dtype=torch.bool)
    return ids, mask


def mask_demo(ex: Example = Example("reverse", "reverse: word", "drow")
              ) -> tuple[list[str], list[int]]:
    """One example's tokens as shown and its loss mask, with a char tokenizer of its own
    characters plus the chat tokens (what the page draws to show the mask)."""
    from lmcore.data.tokenizers import train_tokenizer

    tok = chat_tokenizer(train_tokenizer("char", ex.prompt + ex.response))
    ids, mask = encode_example(tok, ex)
    return tok.token_strings(ids), mask
