"""Answer a prompt in the chat template (greedy), with each token's probability; exact match.

Greedy decoding makes a stage's answers deterministic, so "the model after SFT answers 12 of
40 held-out reversals" is a fact of the checkpoint, not of a sampling seed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import torch

from lmcore.data.tokenizers import Tokenizer
from lmcore.models.eval_mode import eval_mode
from lmcore.models.transformer import Transformer
from lmcore.stages.chat import Example, chat_ids, prompt_ids
from lmcore.stages.instructions import TASKS


@dataclass(frozen=True)
class Answer:
    """A greedy response: its text, its tokens as shown, and each token's probability."""

    text: str
    tokens: list[str]
    probs: list[float]
    ended: bool  # the model closed with <|end|> (else it ran out of tokens)


@torch.no_grad()
def answer_batch(model: Transformer, tok: Tokenizer, prompts: list[str], max_new: int = 16,
                 temperature: float = 0.0, seed: int = 0) -> list[Answer]:
    """Answers to `prompts`, batched by prompt length (no padding needed): greedy at
    temperature 0, else sampled (seeded) from the softmax at that temperature."""
    gen = torch.Generator().manual_seed(seed)
    end = chat_ids(tok)[2]
    device = next(model.parameters()).device
    groups: dict[int, list[int]] = defaultdict(list)
    heads = [prompt_ids(tok, p) for p in prompts]
    for i, h in enumerate(heads):
        groups[len(h)].append(i)
    out: list[Answer | None] = [None] * len(prompts)
    with eval_mode(model):
        for length, idx in groups.items():
            n = min(max_new, model.config.context - length)
            if n < 1:
                raise ValueError(f"a prompt of {length} tokens leaves no room to answer in the "
                                 f"model's context of {model.config.context}")
            x = torch.tensor([heads[i] for i in idx], dtype=torch.long, device=device)  # (B, T)
            new = torch.empty((len(idx), 0), dtype=torch.long, device=device)
            probs = torch.empty((len(idx), 0), dtype=torch.float64)
            for _ in range(n):
                logits = model(torch.cat([x, new], 1), mask="causal")[:, -1]  # (B, V)
                p = torch.softmax(logits.double(), -1)  # (B, V)
                if temperature > 0:
                    q = torch.softmax(logits.double().cpu() / temperature, -1)
                    nxt = torch.multinomial(q, 1, generator=gen)[:, 0].to(device)  # (B,)
                else:
                    nxt = p.argmax(-1)  # (B,)
                new = torch.cat([new, nxt[:, None]], 1)
                probs = torch.cat([probs, p.gather(1, nxt[:, None]).cpu()], 1)
                if bool((new == end).any(1).all()):
                    break
            for row, i in enumerate(idx):
                ids = new[row].tolist()
                ended = end in ids
                k = ids.index(end) + 1 if ended else len(ids)
                text = tok.decode(ids[:k - 1] if ended else ids, skip_special=True)
                out[i] = Answer(text, tok.token_strings(ids[:k]),
                                [float(v) for v in probs[row, :k]], ended)
    return out  # type: ignore[return-value]


def exact_match(model: Transformer, tok: Tokenizer, examples: list[Example]
                ) -> dict[str, float]:
    """Share of `examples` answered exactly right, per task and 'all' (greedy decoding)."""
    answers = answer_batch(model, tok, [ex.prompt for ex in examples])
    right: dict[str, list[bool]] = defaultdict(list)
    for ex, a in zip(examples, answers, strict=True):
        ok = a.ended and a.text == ex.response
        right[ex.task].append(ok)
        right["all"].append(ok)
    order = sorted(right, key=lambda t: (t == "all", t not in TASKS,
                                         TASKS.index(t) if t in TASKS else 0, t))
    return {t: sum(right[t]) / len(right[t]) for t in order}
