"""In Chromium, the lessons hold where a student reads them: the page's own text and charts.

- the token sample of a Chinese text shows every character once, whatever the tokenizer;
- the KV cache is faster at the Objectives page's default generation length;
- Long texts never shows results of the previous corpus under the new one's name;
- a log axis labels real values (no plotly minor digits '2 3 4 5' beside '10').
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browserkit import exceptions_on, screenshot, wait_idle

pytestmark = pytest.mark.browser

ZH = ("北京是中国的首都，也是一座历史悠久的城市。我们希望明天会更好！"
      "Beijing is the capital of China; tokenizers must not repeat 字.\n") * 40


def _number(page, label: str, value: int | float) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    wait_idle(page)


def _choose(page, label: str, option: str) -> None:
    """Pick `option` in the Streamlit select box labelled `label` (retried: a click that lands
    while the script reruns can leave the list closed)."""
    for attempt in range(3):
        wait_idle(page)
        page.get_by_label(label, exact=True).first.click()
        try:
            page.get_by_role("option", name=option, exact=True).first.click(timeout=15_000)
            break
        except Exception:
            page.keyboard.press("Escape")
            if attempt == 2:
                raise
    wait_idle(page)


def _main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def test_chinese_token_sample_shows_each_character_once(page, server, tmp_path: Path):
    page.goto(f"{server}/Corpus_and_tokenizers")
    wait_idle(page)
    page.get_by_text("Upload a file").first.click()
    wait_idle(page)
    f = tmp_path / "zh.txt"
    f.write_text(ZH, encoding="utf-8")
    page.locator('input[type="file"]').first.set_input_files(str(f))
    page.get_by_text("Using zh.txt").wait_for(timeout=60_000)
    wait_idle(page)
    page.get_by_role("button", name="Train tokenizers").click()
    page.get_by_text("Current tokenizer (used by the other pages)").wait_for(timeout=120_000)
    wait_idle(page)
    for kind in ("byte", "char", "bpe", "unigram"):  # byte tripled every Chinese character,
        # BPE doubled or tripled some, char with byte fallback repeated partial ones
        _choose(page, "Current tokenizer (used by the other pages)", kind)
        try:
            page.wait_for_function(  # the choice took: the token-frequency chart is this kind's
                """k => [...document.querySelectorAll('.js-plotly-plot')].some(gd =>
                     ((gd.layout.title || {}).text || '').includes(`Token frequency (${k})`))""",
                arg=kind, timeout=60_000)
        except Exception:
            titles = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')]
                                      .map(gd => JSON.stringify(gd.layout.title))""")
            pytest.fail(f"{kind}: chart titles {titles}")
        wait_idle(page)
        sample = page.get_by_label("Sample text coloured by token boundaries").input_value()
        assert re.search("[\u4e00-\u9fff]", sample), "the sample holds Chinese"
        shown = page.locator('div:has(> span[title^="token"])').first.inner_text()
        assert shown.replace("⏎", "") == sample, f"{kind}: {shown[:80]!r} vs {sample[:80]!r}"
        side = page.locator('[data-testid="stSidebar"]').inner_text()
        assert f"Tokenizer: {kind} (" in side, f"the sidebar names another tokenizer: {side}"
        assert not exceptions_on(page)
    page.locator('div:has(> span[title^="token"])').first.scroll_into_view_if_needed()
    screenshot(page, "token_sample_chinese_unigram")


def test_kv_cache_is_faster_at_the_default_length(page, server):
    page.goto(f"{server}/Objectives")
    wait_idle(page)
    # a tiny training budget; the model's shape and the generation defaults stay as shipped
    _number(page, "Steps", 4)
    _number(page, "Batch", 4)
    _number(page, "Held-out tokens scored", 64)
    page.get_by_role("button", name="Train the three").click()
    page.get_by_text("Why the decoder generates naturally").wait_for(timeout=300_000)
    wait_idle(page)
    assert page.get_by_label("Tokens", exact=True).input_value() == "64"  # fills context 64
    page.get_by_role("button", name="Generate with and without the KV cache").click()
    page.get_by_text("KV cache:").first.wait_for(timeout=180_000)
    wait_idle(page)
    said = _main_text(page)
    m = re.search(r"KV cache: ([0-9.]+)× faster for these (\d+) tokens", said)
    assert m, said[-2000:]
    screenshot(page, "objectives_kv_cache")
    print(m.group(0))
    assert int(m.group(2)) == 64 and "ran past the context" not in said
    assert float(m.group(1)) > 1.0, m.group(0)
    assert "Identical tokens: yes" in said


def test_long_texts_drops_results_of_the_previous_corpus(page, server):
    page.goto(f"{server}/Long_texts")
    wait_idle(page)
    _number(page, "Use the first N characters", 1500)
    _choose(page, "Model", "Fit a 3-gram now (instant)")
    page.get_by_role("tab", name="Strategies").click()
    page.get_by_role("button", name="Run strategies").click()
    page.get_by_text("Results on the first 1,500 characters").wait_for(timeout=180_000)
    page.get_by_text(re.compile(r"Context benefit: [+-]\d")).first.wait_for(timeout=180_000)
    wait_idle(page)
    screenshot(page, "longtext_results_builtin")
    page.get_by_text("Paste text").first.click()
    wait_idle(page)
    page.get_by_role("textbox", name="Paste text").fill("Rivers run to the sea and mountains stand. " * 120)
    page.get_by_role("button", name="Use this text").click()
    page.get_by_text("Using pasted text").first.wait_for(timeout=60_000)
    wait_idle(page)
    page.get_by_role("tab", name="Strategies").click()
    wait_idle(page)
    said = _main_text(page)
    assert "Run strategies" in said or "Train the tiny Transformer" in said  # the tab renders
    assert "Results on" not in said, said
    assert not re.search(r"Context benefit: [+-]\d", said)
    assert not exceptions_on(page)
    screenshot(page, "longtext_after_corpus_switch")


_TICKS = """() => {
  const out = [];
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const lay = gd._fullLayout;
    for (const k of Object.keys(lay)) {
      if (!/^[xy]axis\\d*$/.test(k) || lay[k].type !== 'log') continue;
      const ys = [];
      for (const t of gd.data) {
        const v = k.startsWith('y') ? t.y : t.x;
        if (v) for (const e of v) if (typeof e === 'number' && isFinite(e) && e > 0) ys.push(e);
      }
      const labels = Array.from(gd.querySelectorAll('.' + k.replace('axis', '') + 'tick text'))
                          .map(e => e.textContent);
      out.push({axis: k, labels, lo: Math.min(...ys), hi: Math.max(...ys)});
    }
  }
  return out;
}"""


def _value(label: str) -> float:
    label = label.replace(",", "").replace("\u2212", "-")
    scale = {"k": 1e3, "M": 1e6, "G": 1e9}.get(label[-1:], 1)
    return float(label.rstrip("kMG")) * scale


def test_log_axes_label_real_values(page, server):
    page.goto(f"{server}/N-gram_models")
    wait_idle(page)
    page.get_by_role("button", name="Fit all orders").click()
    try:
        page.get_by_text("Held-out perplexity in this fit").wait_for(timeout=300_000)
    except Exception:
        screenshot(page, "ngram_fit_not_finished")
        raise
    wait_idle(page)
    # Plotly draws after the script run ends (and later still on a busy machine): wait for
    # the chart itself, scrolled into view, before reading its axes
    try:
        for chart in page.locator('[data-testid="stPlotlyChart"]').all():
            chart.scroll_into_view_if_needed()
        page.wait_for_function(f"() => ({_TICKS})().some(a => a.labels.length > 0)",
                               timeout=60_000)
    except Exception:
        screenshot(page, "ngram_log_axis_missing")
    axes = page.evaluate(_TICKS)
    assert axes, "the perplexity chart has a log axis"
    screenshot(page, "ngram_log_axis")
    for ax in axes:
        assert ax["labels"], ax
        for label in ax["labels"]:  # every label is a value within reach of the data drawn
            v = _value(label)
            assert ax["lo"] / 3 <= v <= ax["hi"] * 3, (label, ax)
