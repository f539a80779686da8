"""Online softmax trace: the tiled running max/sum/accumulator ends exactly at the plain softmax."""

from __future__ import annotations

import math
import re

import pytest
import torch

from lmcore.models.online_softmax import (
    naive_softmax,
    online_softmax_trace,
    overflow_demo,
    parse_logits,
    stable_softmax,
)


@pytest.mark.parametrize("T,block", [(1, 1), (10, 3), (16, 4), (7, 100)])
def test_trace_ends_at_plain_softmax(T, block):
    g = torch.Generator().manual_seed(T * 7 + block)
    x = torch.randn(5, T, generator=g, dtype=torch.float64) * 4
    v = torch.randn(T, 3, generator=g, dtype=torch.float64)
    tr = online_softmax_trace(x, v, block=block)
    assert len(tr.steps) == math.ceil(T / block)
    assert torch.allclose(tr.output, torch.softmax(x, -1) @ v, atol=1e-12)
    assert torch.allclose(tr.weights, torch.softmax(x, -1), atol=1e-12)
    assert tr.max_error < 1e-12
    last = tr.steps[-1]
    assert torch.equal(last.m, x.amax(-1))  # running max ends at the row max
    assert torch.allclose(last.l, torch.exp(x - x.amax(-1, keepdim=True)).sum(-1))


def test_each_step_rescales_the_old_state_by_alpha():
    x = torch.tensor([[0.0, 1.0, 5.0, 2.0, 9.0, 3.0]], dtype=torch.float64)
    tr = online_softmax_trace(x, block=2)
    for prev, step in zip(tr.steps, tr.steps[1:], strict=False):
        assert torch.equal(step.m_old, prev.m)
        assert torch.allclose(step.alpha, torch.exp(prev.m - step.m))
        assert torch.allclose(step.l, prev.l * step.alpha + step.p.sum(-1))
    assert tr.steps[0].alpha.item() == 0.0  # nothing accumulated before the first tile
    assert [s.m.item() for s in tr.steps] == [1.0, 5.0, 9.0]
    # identity values: the accumulator holds the unnormalised weights seen so far
    assert torch.allclose(tr.steps[1].acc[0, :4], torch.exp(x[0, :4] - 5.0))


def test_float16_naive_overflows_where_stable_does_not():
    x = torch.tensor([12.0, 11.0, 10.0, 2.0], dtype=torch.float16)
    assert torch.isinf(torch.exp(x)).any()
    assert torch.isnan(naive_softmax(x)).any()
    s = stable_softmax(x)
    assert torch.isfinite(s).all()
    assert torch.allclose(s.double(), torch.softmax(x.double(), -1), atol=1e-3)
    demo = overflow_demo([12.0, 11.0, 10.0, 2.0])
    assert math.isnan(demo["naive softmax"][0]) and math.isinf(demo["exp(x)"][0])
    assert abs(sum(demo["stable softmax"]) - 1) < 1e-3


def test_logits_beyond_float16_are_refused_not_shown_as_no_overflow():
    # 65504 is the largest float16: it is finite, exp overflows, the stable softmax works
    demo = overflow_demo([65504.0, 1.0])
    assert math.isnan(demo["naive softmax"][0]) and demo["stable softmax"] == [1.0, 0.0]
    # 65520 and up round to inf in float16 before any exp: both softmaxes would be NaN
    for bad, word in [([70000.0, 1.0], "70000 becomes inf"), ([1.0, -1e6], "-1e+06 becomes -inf"),
                      ([65520.0], "65520 becomes inf"), ([float("nan")], "nan is not a number")]:
        with pytest.raises(ValueError, match=re.escape(word)) as err:
            overflow_demo(bad)
        assert "between −65504 and 65504" in str(err.value)
    assert overflow_demo([1e6], dtype=torch.float32)["stable softmax"] == [1.0]


def test_float16_trace_stays_finite_and_close():
    x = (torch.randn(4, 12, generator=torch.Generator().manual_seed(0)) * 4 + 15).half()
    tr = online_softmax_trace(x, block=5)
    assert torch.isfinite(tr.output).all()
    assert tr.max_error < 1e-2
    assert torch.isnan(naive_softmax(x)).any()  # the textbook version fails on the same rows


def test_bad_inputs():
    with pytest.raises(ValueError, match="rows, T"):
        online_softmax_trace(torch.zeros(3))
    with pytest.raises(ValueError, match="block"):
        online_softmax_trace(torch.zeros(2, 3), block=0)
    with pytest.raises(ValueError, match="values"):
        online_softmax_trace(torch.zeros(2, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="floating"):
        online_softmax_trace(torch.zeros(2, 3, dtype=torch.long))


def test_parse_logits():
    assert parse_logits("12, 11 10,2") == [12.0, 11.0, 10.0, 2.0]
    with pytest.raises(ValueError, match="'abc' is not a number"):
        parse_logits("1, abc")
    with pytest.raises(ValueError, match="at least one"):
        parse_logits(" , ")
