"""In Chromium: press Train on the Transformer page and watch the live chart fill with points."""

from __future__ import annotations

import pytest
from browserkit import exceptions_on, screenshot, wait_idle

pytestmark = pytest.mark.browser

_POINTS = """() => {
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    for (const t of (gd.data || [])) {
      if (t.name === 'train batch' && t.x && t.x.length >= 3) return true;
    }
  }
  return false;
}"""


def _set_number(page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    wait_idle(page)


def test_train_shows_live_points_then_finishes(page, server):
    page.goto(f"{server}/Transformer")
    wait_idle(page)
    for label, value in (("Layers", 1), ("Width (n_embd)", 16), ("Context (tokens)", 16),
                         ("Steps", 30), ("Evaluate every (steps)", 15)):
        _set_number(page, label, value)
    _train_and_wait(page)
    wait_idle(page)
    assert not exceptions_on(page), exceptions_on(page)
    assert "transformer" in page.locator('[data-testid="stSidebar"]').inner_text()
    screenshot(page, "transformer_trained")


def _train_and_wait(page) -> None:
    page.get_by_role("button", name="Train").click()
    # the chart gains points while the job runs (the fragment polls every 0.5 s)
    page.wait_for_function(_POINTS, timeout=120_000)
    screenshot(page, "transformer_training_live")
    assert not exceptions_on(page)
    try:
        page.wait_for_function(
            "() => document.body.innerText.includes('The model is now')", timeout=120_000)
    except Exception:  # say what the page shows instead (an error box, a waiting job, ...)
        screenshot(page, "transformer_not_finished")
        alerts = page.locator('[data-testid="stAlert"]').all_inner_texts()
        pytest.fail(f"the trained model never appeared; alerts on the page: {alerts}; "
                    f"exceptions: {exceptions_on(page)}")
