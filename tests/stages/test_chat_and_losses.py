"""The chat template's loss mask, the SFT loss and the DPO loss against hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from lmcore.data.tokenizers import train_tokenizer
from lmcore.models.transformer import Transformer, TransformerConfig
from lmcore.stages.chat import (
    CHAT_TOKENS,
    Example,
    chat_ids,
    chat_tokenizer,
    encode_example,
    grow_vocab,
    pad_batch,
)
from lmcore.stages.dpo import dpo_loss, sequence_logprobs
from lmcore.stages.sft import masked_nll, sft_loss

TEXT = "reverse upper count the vowels in next word after: abc def ghi jkl mno " * 20


@pytest.fixture(scope="module")
def tok():
    return chat_tokenizer(train_tokenizer("char", TEXT))


@pytest.fixture(scope="module")
def model(tok):
    torch.manual_seed(0)
    return Transformer(TransformerConfig(vocab_size=tok.vocab_size, context=48, n_layer=1,
                                         n_head=2, n_embd=16))


def test_chat_tokens_are_new_special_ids_never_matched_in_text(tok):
    ids = chat_ids(tok)
    assert len(set(ids)) == 3 and min(ids) >= 263 - 1
    assert tok.decode(list(ids)) == "".join(CHAT_TOKENS)
    # the literal text "<|end|>" is ordinary characters, not the special token
    assert chat_ids(tok)[2] not in tok.encode("<|end|>")


def test_loss_mask_covers_exactly_the_response_and_end(tok):
    ex = Example("upper", "upper: abc", "ABC")
    ids, mask = encode_example(tok, ex)
    user, assistant, end = chat_ids(tok)
    a = ids.index(assistant)
    assert ids[:2] == [tok.bos_id, user] and ids[-1] == end
    assert mask == [0] * (a + 1) + [1] * (len(ids) - a - 1)
    assert tok.decode([i for i, m in zip(ids, mask, strict=True) if m][:-1]) == "ABC"


def test_prompt_and_padding_never_contribute_to_the_sft_loss(tok, model):
    rows = [encode_example(tok, Example("upper", "upper: abc", "ABC")),
            encode_example(tok, Example("reverse", "reverse: jklmno", "onmlkj"))]
    ids, mask = pad_batch(rows, tok.pad_id)  # the first row is padded
    logits = model(ids[:, :-1]).detach().requires_grad_(True)
    loss = masked_nll(logits, ids, mask)
    loss.backward()
    g = logits.grad.abs().sum(-1)  # (B, T-1): gradient reaching each prediction
    targets = mask[:, 1:]
    assert torch.all(g[~targets] == 0), "a prompt or padding position got gradient"
    assert torch.all(g[targets] > 0)
    # the same number computed by hand in float64 over the response targets only
    lp = torch.log_softmax(logits.detach().double(), -1)
    total, n = 0.0, 0
    for b in range(ids.shape[0]):
        for t in range(ids.shape[1] - 1):
            if mask[b, t + 1]:
                total -= float(lp[b, t, ids[b, t + 1]])
                n += 1
    assert float(loss.detach()) == pytest.approx(total / n, rel=1e-5)
    assert float(sft_loss(model, ids, mask).detach()) == pytest.approx(float(loss.detach()),
                                                                 rel=1e-6)


def test_dpo_loss_matches_a_float64_hand_computation():
    pw = torch.tensor([-3.0, -5.5, -1.25], dtype=torch.float64)
    pl = torch.tensor([-4.0, -2.0, -6.0], dtype=torch.float64)
    rw = torch.tensor([-3.5, -5.0, -2.0], dtype=torch.float64)
    rl = torch.tensor([-3.0, -2.5, -5.0], dtype=torch.float64)
    beta = 0.3
    want = []
    for a, b, c, d in zip(pw.tolist(), pl.tolist(), rw.tolist(), rl.tolist(), strict=True):
        m = beta * ((a - c) - (b - d))
        want.append(-math.log(1.0 / (1.0 + math.exp(-m))))
    loss, margin = dpo_loss(pw, pl, rw, rl, beta)
    assert float(loss) == pytest.approx(sum(want) / 3, rel=1e-12)
    assert margin.tolist() == pytest.approx([0.3 * ((a - c) - (b - d)) for a, b, c, d in
                                             zip(pw.tolist(), pl.tolist(), rw.tolist(),
                                                 rl.tolist(), strict=True)])
    # equal policy and reference: margin 0, loss log 2
    z, _ = dpo_loss(pw, pl, pw, pl, beta)
    assert float(z) == pytest.approx(math.log(2.0))


def test_sequence_logprobs_sum_over_the_response_only(tok, model):
    ids, mask = pad_batch([encode_example(tok, Example("upper", "upper: abc", "ABC"))],
                          tok.pad_id)
    with torch.no_grad():
        lp = torch.log_softmax(model(ids[:, :-1]).double(), -1)[0]
        got = float(sequence_logprobs(model, ids, mask)[0])
    want = sum(float(lp[t, ids[0, t + 1]]) for t in range(ids.shape[1] - 1) if mask[0, t + 1])
    assert got == pytest.approx(want, rel=1e-5)


def test_grow_vocab_keeps_every_old_logit(model):
    small = Transformer(TransformerConfig(vocab_size=model.config.vocab_size - 3, context=48,
                                          n_layer=1, n_head=2, n_embd=16))
    big = grow_vocab(small, small.config.vocab_size + 3)
    x = torch.randint(0, small.config.vocab_size, (2, 10))
    with torch.no_grad():
        assert torch.allclose(big(x)[..., :small.config.vocab_size], small(x), atol=1e-6)
    with pytest.raises(ValueError, match="shrink"):
        grow_vocab(big, 5)
