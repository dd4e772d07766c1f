"""A real headless Chromium for the HTML report's tests, driven by selenium.

The report's item viewer is JavaScript, so only a browser can tell whether filters work, whether
the page logs errors, and whether it really fetches nothing. Tests skip (with the reason) when
chromium, chromedriver or selenium is missing; ``make test`` installs all three.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
_CHROMIUM = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_SHOT_HEIGHT = 5000  # px; the top of a long section shows its look, the rest would only weigh


def _which(names: Sequence[str], env: str) -> str | None:
    """An explicit path from the environment wins, then the first name found on PATH."""
    explicit = os.environ.get(env)
    if explicit:
        return explicit if Path(explicit).is_file() else None
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def missing_reason() -> str | None:
    """Why a browser cannot start here, or None when chromium, chromedriver and selenium are all present."""
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (.venv/bin/pip install selenium)"
    if _which(_CHROMIUM, "ASSAY_CHROMIUM") is None:
        return "chromium is not installed (apt-get install chromium)"
    if _which(("chromedriver",), "ASSAY_CHROMEDRIVER") is None:
        return "chromedriver is not installed (apt-get install chromium-driver)"
    return None


def start_chrome() -> Any:
    """Headless Chromium with the browser console log kept, so tests can read page errors."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _which(_CHROMIUM, "ASSAY_CHROMIUM") or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
                "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=_which(("chromedriver",), "ASSAY_CHROMEDRIVER"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture(scope="module")
def chrome() -> Iterator[Any]:
    """One browser for the whole module: starting Chromium costs a second or two each time."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    driver = start_chrome()
    try:
        yield driver
    finally:
        driver.quit()


def console_entries(driver: Any) -> list[dict[str, Any]]:
    """The browser console since the last call (chromedriver empties the log on each read)."""
    return list(driver.get_log("browser"))


def assert_no_console_errors(driver: Any) -> None:
    severe = [e for e in console_entries(driver) if e.get("level") == "SEVERE"]
    assert not severe, "browser console errors:\n" + "\n".join(str(e.get("message")) for e in severe)


def output_dir() -> Path:
    """Where screenshots go: ``test-output/report/`` at the repository root, or ``$ASSAY_TEST_OUTPUT``."""
    override = os.environ.get("ASSAY_TEST_OUTPUT")
    path = Path(override) if override else ROOT / "test-output" / "report"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


def element_png(driver: Any, element: Any) -> bytes:
    """The element as PNG, even when it is taller than the window (cut at MAX_SHOT_HEIGHT).

    Selenium's element screenshot stops at the viewport's edge; Chromium's DevTools call can
    capture beyond it, given the element's box in page coordinates.
    """
    box = driver.execute_script("""
        const r = arguments[0].getBoundingClientRect();
        return {x: r.left + window.scrollX, y: r.top + window.scrollY, width: r.width, height: r.height};""", element)
    if not hasattr(driver, "execute_cdp_cmd") or box["width"] <= 0 or box["height"] <= 0:
        return element.screenshot_as_png
    clip = {**box, "height": min(box["height"], MAX_SHOT_HEIGHT), "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
    return base64.b64decode(shot["data"])


def save_section_screenshots(driver: Any, test_name: str, sections: Sequence[str]) -> list[Path]:
    """A screenshot of each whole ``<section id=...>``, named ``<test>-<section>.png``."""
    from selenium.webdriver.common.by import By

    out = output_dir()
    paths = []
    for section in sections:
        path = out / f"{_safe(test_name)}-{_safe(section)}.png"
        path.write_bytes(element_png(driver, driver.find_element(By.ID, section)))
        paths.append(path)
    return paths


def open_page(driver: Any, path: Path) -> None:
    """Load a local file and wait until the item viewer has rendered (its count is filled)."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(path.resolve().as_uri())
    WebDriverWait(driver, 10).until(lambda d: d.execute_script("return document.readyState") == "complete")
