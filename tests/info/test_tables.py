"""The vectorised n-gram table gives exactly the model's own next-token distributions."""

from __future__ import annotations

import numpy as np
import pytest

from lmcore.data.tokenizers import train_tokenizer
from lmcore.info.tables import NGramTable, _history, probs_of, reference_probs
from lmcore.models.ngram import NGramConfig, NGramLM

TRAIN = "the cat sat on the mat. the dog sat on the log. 猫坐在垫子上 🐈\n" * 15


@pytest.mark.parametrize("smoothing", ["kn", "mle", "addk", "stupid"])
@pytest.mark.parametrize("order", [1, 2, 4, 6])
def test_batch_equals_the_reference_bit_for_bit(order, smoothing):
    tok = train_tokenizer("char", TRAIN)
    model = NGramLM.from_tokenizer(tok, TRAIN, NGramConfig(order=order, smoothing=smoothing))
    rng = np.random.default_rng(order)
    ids = tok.encode(TRAIN[:200]) + [int(i) for i in rng.integers(5, tok.vocab_size, 60)]
    contexts = [ids[:t] for t in range(len(ids))]  # short ones (with <s>) and unseen ones
    batch = probs_of(model, [_history(model, c) for c in contexts])
    ref = np.stack([reference_probs(model, c) for c in contexts])
    assert np.array_equal(batch, ref)
    table = NGramTable(model, max_rows=7)  # clearing on the way changes nothing
    assert all(np.array_equal(table.probs(c), r) for c, r in zip(contexts, ref, strict=True))
    assert table.fingerprint() == model.fingerprint()
