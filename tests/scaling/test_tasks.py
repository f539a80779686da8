"""Generators give right answers, train and test never share a problem, seeds reproduce."""

from __future__ import annotations

import pytest
import torch

from lmcore.scaling.tasks import (
    KEYS,
    PAD,
    decode,
    encode,
    final_answer,
    ideal_mapping_accuracy,
    is_held_out,
    long_addition,
    long_addition_problem,
    mapping,
    operands,
    pack,
    repeated_segments,
    scratchpad,
)
from lmcore.scaling.tasks import addition as addition_problems


def test_addition_answers_are_right_and_reversed():
    for p in addition_problems(4, 300, "train", seed=1):
        a, b = p.prompt.rstrip("=").split("+")
        assert len(a) == len(b) == 4 and len(p.answer) == 5
        assert int(p.answer[::-1]) == int(a) + int(b)


def test_addition_train_and_test_are_disjoint_and_seeded():
    train = addition_problems(2, 2000, "train")
    test = addition_problems(2, 300, "test")
    assert not {p.prompt for p in train} & {p.prompt for p in test}
    keys = [f"{int(a)}+{int(b)}" for a, b in (p.prompt.rstrip("=").split("+") for p in test)]
    assert all(is_held_out(k) for k in keys)
    assert addition_problems(2, 50, "test", seed=4) == addition_problems(2, 50, "test", seed=4)
    assert addition_problems(2, 50, "test", seed=4) != addition_problems(2, 50, "test", seed=5)


def test_scratchpad_and_final_answer():
    assert scratchpad(357, 468, 3) == "512180"  # 7+8=15, 5+6+1=12, 3+4+1=8
    for pad in (False, True):
        for p in long_addition([1, 2, 3, 4], None, 300, pad, "test"):
            a, b = operands(p.prompt)
            assert len(p.prompt) == 2 * 4 + 2  # both operands in columns 4 wide
            assert p.prompt.index("+") == 4 and (p.length == 1 or p.prompt.lstrip(PAD)[0] != "0")
            assert final_answer(p.answer) == str(a + b)
            assert len(str(a)) == len(str(b)) == p.length
            if pad:
                digits = p.answer.split(">")[0][::2]  # sum digits, least significant first
                assert digits[::-1].lstrip("0") == str(a + b)[-p.length:].lstrip("0")
    assert final_answer("512180>825.") == "825" and final_answer("825.") == "825"


def test_long_addition_aligns_every_length_in_the_same_columns():
    probs = long_addition([1, 3, 5], None, 60, True, "train", seed=1, width=6)
    assert {len(p.prompt) for p in probs} == {14} and {p.length for p in probs} == {1, 3, 5}
    for p in probs:  # units digits at the same two positions, whatever the length
        a, b = operands(p.prompt)
        assert (p.prompt[5], p.prompt[12]) == (str(a)[-1], str(b)[-1])
        assert p.prompt[:6].count(PAD) == 6 - p.length
    assert long_addition_problem(357, 468, 3, False).prompt == "357+468="  # no width: as is
    with pytest.raises(ValueError, match="column width"):
        long_addition([1, 4], None, 5, False, width=3)


def test_long_addition_same_operands_with_and_without_scratchpad():
    plain = long_addition([1, 2, 3], [1, 1, 1], 100, False, "train", seed=2)
    pad = long_addition([1, 2, 3], [1, 1, 1], 100, True, "train", seed=2)
    assert [p.prompt for p in plain] == [p.prompt for p in pad]
    test = long_addition([1, 2, 3], [1, 1, 1], 200, True, "test", seed=2)
    assert not {p.prompt for p in pad} & {p.prompt for p in test}


def test_repeated_segments_repeat_and_split():
    r = repeated_segments(200, 24, 32, 3, 10, "train", seed=0)
    for ids, L, a, b in zip(r.ids, r.seg_len, r.first_at, r.again_at, strict=True):
        L, a, b = int(L), int(a), int(b)
        assert 3 <= L <= 10 and 0 <= a and a + L <= b and b + L <= 24
        assert torch.equal(ids[a:a + L], ids[b:b + L])  # the segment occurs twice
        assert len(set(ids.tolist())) == 24 - L  # every other token once
        assert int(ids.max()) < 32
    gaps = {int(b - a) for a, b in zip(r.first_at, r.again_at, strict=True)}
    assert len(gaps) > 5  # no fixed distance back finds the copy
    t = repeated_segments(200, 24, 32, 3, 10, "test", seed=0)
    seqs = lambda r: {tuple(i.tolist()) for i in r.ids}  # noqa: E731
    assert not seqs(r) & seqs(t)
    rep, fresh = r.repeat_mask(), r.fresh_mask()  # column j is target position j + 1
    L0, b0 = int(r.seg_len[0]), int(r.again_at[0])
    assert rep[0].nonzero().flatten().tolist() == list(range(b0, b0 + L0 - 1))
    assert not (rep & fresh).any()
    assert (~(rep | fresh))[0].nonzero().flatten().tolist() == [b0 - 1]  # the copy's 1st token
    with pytest.raises(ValueError, match="fit twice"):
        repeated_segments(5, 20, 32, 4, 14)
    with pytest.raises(ValueError, match="vocabulary of at least 21"):
        repeated_segments(5, 24, 16, 3, 10)


def test_mapping_prompts_answer_from_the_mapping():
    probs = mapping(300, [0, 3, 8], "train", seed=0)
    for p in probs:
        shots, query = p.prompt.split("|")
        pairs = [s for s in shots.split(",") if s]
        assert len(pairs) == p.length and len({s[0] for s in pairs}) == len(pairs)
        q = query[0]
        assert query == q and q in KEYS and p.answer.isdigit()  # the answer follows the key
        shown = {s[0]: s[1] for s in pairs}
        if q in shown:
            assert shown[q] == p.answer
    test = mapping(300, [8], "test", seed=0)  # 8 shots show the whole mapping
    train8 = mapping(2000, [8], "train", seed=0)
    maps = lambda ps: {p.prompt.split("|")[0] for p in ps}  # noqa: E731
    assert not maps(test) & maps(train8)
    assert ideal_mapping_accuracy(0) == pytest.approx(0.1)
    assert ideal_mapping_accuracy(8) == pytest.approx(1.0)


def test_pack_puts_loss_on_the_answer_only():
    probs = addition_problems(2, 3, "train")
    x, y = pack(probs)
    p = probs[0]
    full = encode(p.prompt + p.answer)
    assert x[0, :len(full) - 1].tolist() == full[:-1]
    targets = y[0][y[0] != -100].tolist()
    assert decode(targets) == p.answer
    first = (y[0] != -100).nonzero()[0].item()
    assert first == len(p.prompt) - 1  # the input '=' predicts the first answer digit
    with pytest.raises(ValueError, match="not in the task vocabulary"):
        encode("A")


def test_bursty_prompts_and_value_targets():
    from lmcore.scaling.tasks import pack_values

    probs = mapping(200, [12], "train", seed=1, repeats=True)
    assert any(len({s[0] for s in p.prompt.split("|")[0].split(",") if s}) < 12 for p in probs)
    x, y = pack_values(probs[:1])
    p = probs[0]
    text = p.prompt + p.answer
    want = [c for j, c in enumerate(text) if j and c.isdigit() and text[j - 1] in KEYS]
    got = decode([int(t) for t in y[0] if t != -100])
    assert got == "".join(want) and want[-1] == p.answer  # the answer follows its key too
    with pytest.raises(ValueError, match="between 0 and 8"):
        mapping(5, [9])


def test_the_query_is_read_as_the_examples_are():
    """Every target, the examples' values and the answer alike, is predicted from a key: the
    look-up the repeated examples train is the one the query needs."""
    from lmcore.scaling.tasks import pack_values

    probs = mapping(50, [6], "train", seed=2, repeats=True)
    x, y = pack_values(probs)
    inputs = decode(x[y != -100].tolist())
    assert len(inputs) == int((y != -100).sum()) and set(inputs) <= set(KEYS)
    x, y = pack(probs)  # the answer alone: its input is the query key
    assert decode(x[y != -100].tolist()) == "".join(p.prompt[-1] for p in probs)
