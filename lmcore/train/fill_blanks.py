"""Fill in the blank: each objective's model completes a sentence with blanks its own way.

The masked model fills every blank at once from both sides (most confident first), the
prefix model left to right reading the text before a blank bidirectionally, the causal model
left to right from the text before each blank only: the same question shows what each mask
lets a model see.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from lmcore.data.tokenizers import BOS_ID, CLS_ID, MASK_ID, N_SPECIAL, SEP_ID
from lmcore.models.eval_mode import eval_mode
from lmcore.train.fair_metrics import model_logits, uses_nsp
from lmcore.train.objectives import vocab_size

if TYPE_CHECKING:
    from lmcore.data.tokenizers import Tokenizer


def _printable(s: str) -> bool:
    return bool(s) and "\ufffd" not in s and all(ch.isprintable() or ch in " \n\t" for ch in s)


def fillable_ids(tokenizer: Tokenizer, seen: torch.Tensor | None = None) -> torch.Tensor:
    """Bool (V,): ids a blank may be filled with: ordinary tokens that decode to printable text.

    Byte-fallback and byte-level pieces that are not a whole character decode to "\ufffd" and
    are left out; with `seen` (training ids) also every token never seen in training.
    """
    V = tokenizer.vocab_size
    ok = torch.tensor([i >= N_SPECIAL and _printable(tokenizer.decode([i])) for i in range(V)])
    if seen is not None:
        ok &= torch.bincount(seen.flatten().long(), minlength=V)[:V] > 0
    return ok


def _with_masks(tokenizer: Tokenizer, text: str, blank: str,
                ids: list[int]) -> tuple[list[int], list[int]]:
    """`ids` then the tokens of `text` with one [MASK] per `blank`; and the [MASK] positions."""
    if blank not in text:
        raise ValueError(f"type a sentence with at least one blank written as {blank!r}")
    pieces, holes = text.split(blank), []
    for i, piece in enumerate(pieces):
        ids += tokenizer.encode(piece)
        if i < len(pieces) - 1:
            holes.append(len(ids))
            ids.append(MASK_ID)
    return ids, holes


def _allowed_ids(model: torch.nn.Module, tokenizer: Tokenizer,
                 allowed: torch.Tensor | None) -> torch.Tensor:
    """Bool (V,): `allowed` (default `fillable_ids`) fitted to the model's vocabulary."""
    V = vocab_size(model)
    allowed = fillable_ids(tokenizer) if allowed is None else allowed.bool()
    allowed = torch.cat([allowed, torch.zeros(max(0, V - len(allowed)), dtype=torch.bool)])[:V]
    if not bool(allowed.any()):
        raise ValueError("no token of this vocabulary decodes to printable text to fill with")
    return allowed


@torch.no_grad()
def fill_blanks(model: torch.nn.Module, tokenizer: Tokenizer, text: str, kind: str,
                blank: str = "_",
                allowed: torch.Tensor | None = None) -> tuple[str, list[tuple[str, float]]]:
    """Fill each `blank` (one token each) with the model's most likely token; greedy.

    masked: all blanks become [MASK] and are filled most-confident first, using both sides
    (a model with a next-sentence head reads the sentence as [CLS] A [SEP] B [SEP], as it was
    trained). prefix: left to right, the text before a blank read bidirectionally as the
    prefix. causal: left to right from the text before each blank only. Only `allowed` ids
    (default `fillable_ids(tokenizer)`) can fill a blank; probabilities are renormalised over
    them. Returns the filled text and (token, probability) for each blank in text order.
    """
    ids, holes = _with_masks(tokenizer, text, blank, [BOS_ID] if kind != "masked" else [])
    allowed = _allowed_ids(model, tokenizer, allowed)
    text_pos = list(range(1 if kind != "masked" else 0, len(ids)))  # positions of the text
    if kind == "masked" and uses_nsp(model):  # [CLS] A [SEP] B [SEP]
        la = len(ids) // 2
        ids = [CLS_ID] + ids[:la] + [SEP_ID] + ids[la:] + [SEP_ID]
        shift = [j + 1 if j < la else j + 2 for j in range(len(ids) - 3)]
        holes = [shift[j] for j in holes]
        text_pos = shift
    C = model.config.context
    if len(ids) > C:
        raise ValueError(f"the sentence is {len(ids)} tokens, longer than the model's context "
                         f"of {C}: shorten it")
    probs: dict[int, float] = {}
    with eval_mode(model):
        x = torch.tensor([ids])
        todo = list(holes)
        while todo:
            if kind == "masked":
                p = torch.softmax(model_logits(model, x, mask="bidirectional")[0], -1)  # (T, V)
                p[:, ~allowed] = 0  # fill with printable text, never a special token
                best = max(todo, key=lambda j: float(p[j].max()))
                tok = int(p[best].argmax())
                pos, prob = best, float(p[best, tok] / p[best].sum())
            else:
                pos = todo[0]
                ctx = x[:, :pos]  # everything before the blank
                kw = ({"mask": "prefix", "prefix_len": torch.tensor([pos])} if kind == "prefix"
                      else {"mask": "causal"})
                p = torch.softmax(model_logits(model, ctx, **kw)[0, -1], -1)  # (V,)
                p[~allowed] = 0
                tok = int(p.argmax())
                prob = float(p[tok] / p.sum())
            x[0, pos] = tok
            probs[pos] = prob
            todo.remove(pos)
    out = [int(x[0, j]) for j in text_pos]
    shown = tokenizer.token_strings([int(x[0, j]) for j in holes])
    return tokenizer.decode(out), [(s, probs[j]) for s, j in zip(shown, holes, strict=True)]


@torch.no_grad()
def fill_blanks_encdec(model: torch.nn.Module, tokenizer: Tokenizer, text: str,
                       blank: str = "_", allowed: torch.Tensor | None = None
                       ) -> tuple[str, list[tuple[str, float]]]:
    """The encoder-decoder's way: the encoder reads the sentence with a [MASK] per blank (both
    sides of every blank), the decoder rewrites it left to right, copying known tokens and
    choosing the most likely allowed token at each blank."""
    ids, holes = _with_masks(tokenizer, text, blank, [])
    allowed = _allowed_ids(model, tokenizer, allowed)
    C = model.config.context
    if len(ids) > C:
        raise ValueError(f"the sentence is {len(ids)} tokens, longer than the model's context "
                         f"of {C}: shorten it")
    out = list(ids)
    probs = []
    with eval_mode(model):
        memory = model.encode(torch.tensor([ids]))
        for j in holes:
            dec = torch.tensor([[BOS_ID] + out[:j]])
            p = torch.softmax(model.decode(dec, memory)[0, -1].float(), -1)  # (V,)
            p[~allowed] = 0
            tok = int(p.argmax())
            out[j] = tok
            probs.append(float(p[tok] / p.sum()))
    shown = tokenizer.token_strings([out[j] for j in holes])
    return tokenizer.decode(out), list(zip(shown, probs, strict=True))


def make_blanks(text: str, n: int = 3, blank: str = "_", seed: int = 0) -> str:
    """`text` with `n` letters (chosen with `seed`, not the first) replaced by `blank`."""
    letters = [i for i, ch in enumerate(text) if ch.isalpha() and i > 0]
    if not letters:
        return text + blank
    g = torch.Generator().manual_seed(seed)
    picks = sorted(letters[int(j)] for j in torch.randperm(len(letters), generator=g)[:n])
    chars = list(text)
    for i in picks:
        chars[i] = blank
    return "".join(chars)
