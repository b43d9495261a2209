"""Headless Chromium for the review page's tests, benchmark and screenshot.

Debian's `chromium` and `chromium-driver` packages, driven by Selenium (a dev dependency), with a
fresh profile and nothing that reaches the network on its own (no component updates, sync or
background requests). Audio may play without a click, as a listener's click would allow.
selenium is imported when a browser starts: importing this module is cheap.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
)
INSTALL_HINT = "apt-get install chromium chromium-driver, and pip install selenium"


def chromium_missing() -> str | None:
    """Why headless Chromium cannot be started here, or None when it can."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]
    if missing:
        return f"headless Chromium is not installed ({', '.join(missing)} missing): {INSTALL_HINT}"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return f"selenium is not installed: {INSTALL_HINT}"
    return None


def headless_chromium(profile: Path, window: tuple[int, int] = (1280, 1000)) -> Any:
    """A Selenium WebDriver on headless Chromium with a fresh profile in `profile` (emptied first)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    shutil.rmtree(profile, ignore_errors=True)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={window[0]},{window[1]}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
