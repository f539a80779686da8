"""A Transformer's token table as word vectors, and contextual vectors: the same word's hidden
states differ with the text around it while its static row does not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmcore.data.tokenizers import train_tokenizer
from lmcore.embed.contextual import contextual_vectors, occurrences
from lmcore.embed.token_table import token_name, token_vectors
from lmcore.models.transformer import Transformer, TransformerConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXT = ("the bank of the river was muddy. she put money in the bank. "
        "the river bank flooded. the bank gave her a loan. ") * 10


def _model(kind: str = "word"):
    tok = train_tokenizer(kind, TEXT)
    torch.manual_seed(0)
    net = Transformer(TransformerConfig(vocab_size=tok.vocab_size, context=32, n_layer=1,
                                        n_head=2, n_embd=16))
    return net, tok


def test_token_table_rows_are_the_embedding_rows():
    net, tok = _model("word")
    wv = token_vectors(net, tok, TEXT)
    i = tok.token_to_id("bank")
    assert np.allclose(wv.vectors[wv.index["bank"]], net.wte.weight[i].detach().numpy())
    assert wv.counts[wv.index["bank"]] == TEXT.count("bank")
    assert " " not in wv.index and "." not in wv.index  # only letter/digit tokens
    assert token_name("Ġcat") == token_name("##cat") == token_name("␣cat") == "cat"


def test_contextual_vectors_differ_static_rows_do_not():
    net, tok = _model("word")
    res = contextual_vectors(net, tok, TEXT, "bank", limit=4)
    assert len(res.snippets) == 4
    for snip, (s, e) in zip(res.snippets, res.spans, strict=True):
        assert snip[s:e] == "bank"
    assert res.static_cosine == pytest.approx(1.0)  # one row for every occurrence
    assert np.allclose(np.diag(res.cosine), 1.0)
    assert res.mean_cosine < 0.999  # the hidden states depend on the context
    # reference: the first occurrence's vector equals a direct forward pass of its tokens
    ids, offs = tok.encode_offsets(res.snippets[0])
    j = next(i for i, (a, b) in enumerate(offs) if (a, b) == res.spans[0])
    end = min(len(ids), j + 1 + 32 // 4)
    start = max(0, end - 32)
    with torch.no_grad():
        h = net.hidden(torch.tensor([ids[start:end]]), mask="causal")[0, j - start]
    assert np.allclose(res.vectors[0], h.double().numpy(), atol=1e-6)


def test_chinese_occurrences_and_missing_words():
    assert len(occurrences("我爱银行。银行很大。", "银行", 5)) == 2
    assert len(occurrences("bank banking bank", "bank", 5)) == 2  # whole words only
    with pytest.raises(ValueError, match="does not occur"):
        occurrences(TEXT, "zebra", 3)
