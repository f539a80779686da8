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
    # the chart gains points (live every FIGURE_S seconds, and when the job ends)
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


_PROGRESS_MOTION = """() => {
  const track = document.querySelector('[data-testid="stProgressBarTrack"]');
  if (!track) return null;
  const moving = document.getAnimations().filter(a => a.effect && track.contains(a.effect.target));
  return {moving: moving.length, value: track.closest('[data-testid="stProgress"]').innerText};
}"""


def test_progress_bar_does_not_animate_while_a_job_runs(page, server):
    """Each panel tick sets a new value; a bar that glides there (30 frames a second for half
    of every second) costs the browser on the job's own cores (lmcore.app.frame)."""
    page.goto(f"{server}/Transformer")
    wait_idle(page)
    _set_number(page, "Steps", 400)
    page.get_by_role("button", name="Train").click()
    page.wait_for_selector('[data-testid="stProgressBarTrack"]', timeout=60_000)
    seen = []
    for _ in range(30):  # 3 s: the panel redraws every second
        state = page.evaluate(_PROGRESS_MOTION)
        if state is None:
            break  # the job ended
        seen.append(state)
        page.wait_for_timeout(100)
    assert len({s["value"] for s in seen}) >= 2, f"the bar never moved: {seen}"
    assert all(s["moving"] == 0 for s in seen), seen
    page.get_by_role("button", name="Stop").click()
    wait_idle(page)
