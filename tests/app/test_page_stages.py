"""AppTest of the Training stages page: pretrain, SFT and DPO at a tiny budget, to the end."""

from __future__ import annotations

import pytest
from apptest import assert_no_exception, error_texts, join_jobs, open_page

from lmcore.runs.store import RunStore

PAGE = "pages/9_Training_stages.py"
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _done(at) -> None:
    join_jobs(300)
    at.run()
    assert_no_exception(at)
    assert not error_texts(at), error_texts(at)


def _text(at) -> str:
    return "\n".join(m.value for m in at.markdown) + "\n".join(c.value for c in at.caption)


def test_page_explains_the_stages_and_shows_the_loss_mask():
    at = open_page(PAGE)
    assert not error_texts(at)
    text = _text(at)
    assert "Rafailov et al. 2023" in text and "RLHF with PPO" in text
    # [BOS] <|user|> "reverse: word" (13) <|assistant|>, then "drow" and <|end|> as targets
    assert "5 of 21 tokens are targets" in text
    assert "Nothing to start from yet" in "\n".join(i.value for i in at.info)


def test_three_stages_run_in_turn_and_are_recorded():
    at = open_page(PAGE)
    at.number_input(key="stg.p.layers").set_value(1)
    at.number_input(key="stg.p.width").set_value(16)
    at.number_input(key="stg.p.steps").set_value(3)
    at.run()
    at.button(key="stg.p.go").click().run()
    assert_no_exception(at)
    _done(at)
    # 30 steps at a high rate: enough for the tiny model to close its answers with <|end|>
    # (DPO needs the SFT model's own finished answers to make pairs)
    at.number_input(key="stg.sft.steps").set_value(30)
    at.number_input(key="stg.sft.lr").set_value(1e-2).run()
    assert "pretrained model trained above" in at.selectbox(key="stg.sft.start").value
    at.button(key="stg.s.go").click().run()
    _done(at)
    assert "after SFT" in _text(at) or at.dataframe  # the before/after table
    at.number_input(key="stg.dpo.steps").set_value(2).run()
    assert "instruction-tuned model trained above" in at.selectbox(key="stg.dpo.start").value
    at.button(key="stg.d.go").click().run()
    _done(at)
    text = _text(at)
    assert "held-out pairs" in text or any("held-out pairs" in str(d.value.columns.tolist())
                                           for d in at.dataframe)
    stages = sorted(r.config.get("stage") for r in RunStore().list())
    assert stages == ["dpo", "pretrain", "sft"]
    html = "\n".join(m.value for m in at.markdown)
    assert "held-out instruction" in html and "after DPO" in html
