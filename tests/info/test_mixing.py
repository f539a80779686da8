"""The mixing coder: exact round trips (the decoder rebuilds the mixer's state), the mixer
learns, the match model follows repeats, the primer is part of the model's identity."""

from __future__ import annotations

import numpy as np
import pytest

from lmcore.data.tokenizers import train_tokenizer
from lmcore.info.coding import CodingError, compress, decompress, encode
from lmcore.info.mixing import MatchModel, MixConfig, MixingLM, mixing_coder
from lmcore.models.ngram import NGramConfig, NGramLM

TRAIN = ("def area(r):\n    return 3.14159 * r * r  # 圆的面积\n"
         "The quick brown fox jumps over the lazy dog. 敏捷的狐狸 🦊\n") * 12
TEXT = ("def volume(r, h):\n    return area(r) * h  # 体积\n"
        "The lazy dog sleeps; the quick brown fox jumps over it again. 🦊🦊\n") * 3


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer("char", TRAIN + TEXT)


@pytest.fixture(scope="module")
def grams(tok):
    return [NGramLM.from_tokenizer(tok, TRAIN, NGramConfig(order=n)) for n in (2, 3)]


def test_round_trip_is_exact_and_deterministic(tok, grams):
    mix = mixing_coder(grams, tok.encode(TRAIN))
    data = compress(mix, TEXT)
    assert decompress(mix, data) == TEXT
    assert compress(mixing_coder(grams, tok.encode(TRAIN)), TEXT) == data  # a fresh coder too
    for text in ["", "a", "🦊🦊🦊", TEXT[:37]]:
        assert decompress(mix, compress(mix, text)) == text


def test_next_logprobs_agrees_with_token_logprobs_and_sums_to_one(tok, grams):
    mix = mixing_coder(grams, tok.encode(TRAIN))
    ids = tok.encode(TEXT[:120])
    batch = mix.token_logprobs(ids)
    ctx: list[int] = []
    for t, x in enumerate(ids):
        lp = mix.next_logprobs(ctx)
        assert np.exp(lp).sum() == pytest.approx(1.0, abs=1e-9)
        assert lp[x] == batch[t]  # the same floats, not merely close
        ctx.append(x)
    # going back to an earlier context replays the mixer to the very same state
    assert mix.next_logprobs(list(ids[:5]))[ids[5]] == batch[5]


def test_the_mixer_beats_its_best_component_and_learning_helps(tok, grams):
    primer = tok.encode(TRAIN)
    text = TEXT * 2
    best = min(encode(m, text).ideal_bits for m in grams)
    learned = encode(mixing_coder(grams, primer), text).ideal_bits
    frozen = encode(mixing_coder(grams, primer, MixConfig(learning_rate=1e-9)), text).ideal_bits
    assert learned < best  # the online models and the match models add what the n-grams miss
    assert learned < frozen  # the weights learned as it coded are worth bits


def test_match_model_follows_the_last_repeat():
    m = MatchModel(3, 10)
    hist = [1, 2, 3, 4, 5, 1, 2, 3]
    m.prime(hist[:5])
    e, n = m.predict(hist)
    assert e == 4 and n == 3  # "1 2 3" was followed by 4
    m.update(e, n, 4)
    hist.append(4)
    assert m.predict(hist) == (5, 4)  # the match continues and grows
    f = m.features(5, 4)
    assert np.exp(f).sum() == pytest.approx(1.0) and f.argmax() == 5


def test_another_primer_is_another_model(tok, grams):
    data = compress(mixing_coder(grams, tok.encode(TRAIN)), TEXT)
    with pytest.raises(CodingError, match="another model"):
        decompress(mixing_coder(grams, tok.encode(TRAIN[:-1])), data)


def test_bad_settings_are_refused(tok, grams):
    with pytest.raises(ValueError, match="learning_rate"):
        MixConfig(learning_rate=0)
    with pytest.raises(ValueError, match="match lengths"):
        MixConfig(match_lengths=(0,))
    with pytest.raises(ValueError, match="primer token id"):
        MixingLM(grams, primer=[10 ** 6])
    with pytest.raises(ValueError, match="at least one"):
        mixing_coder([])


@pytest.fixture(scope="module")
def transformer(tok):
    import torch

    from lmcore.models.transformer import Transformer, TransformerConfig, TransformerLM
    from lmcore.train.data import TokenData
    from lmcore.train.objectives import CausalLM
    from lmcore.train.trainer import TrainConfig, train

    torch.manual_seed(0)
    net = Transformer(TransformerConfig(vocab_size=tok.vocab_size, context=16, n_layer=1,
                                        n_head=2, n_embd=16))
    done = train(net, CausalLM(), TokenData.from_text(tok, TRAIN, TEXT),
                 TrainConfig(steps=60, batch_size=8, eval_every=0, memory_every=0))
    assert done.status == "done", done.error
    return TransformerLM(net, tok)


def test_stepper_reads_the_transformers_windows_with_a_kv_cache(tok, transformer):
    from lmcore.info.streams import Stepper

    step = Stepper(transformer)
    ids = tok.encode(TEXT[:70])  # past the context (16): the window slides and refills
    ctx: list[int] = []
    for x in ids:
        ref = transformer.next_logprobs(ctx)
        assert np.allclose(step.next_logprobs(ctx), ref, atol=1e-5)
        assert np.array_equal(step.next_logprobs(ctx), step.next_logprobs(ctx))  # asked twice
        ctx.append(x)
    # several tokens at once, and a context that is not an extension, start over correctly
    assert np.allclose(step.next_logprobs(list(ids[:40])), transformer.next_logprobs(ids[:40]),
                       atol=1e-5)
    assert np.allclose(step.next_logprobs(ids[3:9]), transformer.next_logprobs(ids[3:9]),
                       atol=1e-5)
    assert step.fingerprint() == transformer.fingerprint()


def test_a_transformer_joins_the_mixer_exactly(tok, grams, transformer):
    import torch

    mix = mixing_coder(grams, tok.encode(TRAIN), transformer=transformer)
    data = compress(mix, TEXT)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the coder pins one thread itself: the same floats come back
    try:
        assert decompress(mixing_coder(grams, tok.encode(TRAIN), transformer=transformer),
                          data) == TEXT
    finally:
        torch.set_num_threads(threads)
    without = mixing_coder(grams, tok.encode(TRAIN))
    assert without.fingerprint() != mix.fingerprint()
    with pytest.raises(CodingError, match="another model"):
        decompress(without, data)
    # it is a predictor of its own: the mixer's code length changes
    assert encode(mix, TEXT).ideal_bits != encode(without, TEXT).ideal_bits


def test_a_transformer_on_another_vocabulary_is_refused(grams):
    import torch

    from lmcore.models.transformer import Transformer, TransformerConfig, TransformerLM

    other = train_tokenizer("char", "abc")
    torch.manual_seed(0)
    net = Transformer(TransformerConfig(vocab_size=other.vocab_size, context=8, n_layer=1,
                                        n_head=1, n_embd=8))
    with pytest.raises(ValueError, match="same tokenizer"):
        mixing_coder(grams, transformer=TransformerLM(net, other))
