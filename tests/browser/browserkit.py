"""What browser tests share: waiting for a script run to finish, screenshots, exception blocks."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "screenshots"


def wait_idle(page, timeout: float = 90_000) -> None:
    """Wait until the script run has finished: the app is rendered and no 'Running' status."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    page.wait_for_selector("h1", timeout=timeout)
    page.wait_for_function(
        """() => !document.querySelector('[data-testid="stStatusWidget"]')
                 || !document.querySelector('[data-testid="stStatusWidget"]').innerText
                      .includes('Running')""", timeout=timeout)
    page.wait_for_timeout(500)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def exceptions_on(page) -> list[str]:
    return page.locator('[data-testid="stException"]').all_inner_texts()
