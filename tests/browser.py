"""Headless Chromium for the tests that look at a page (the MLflow UI, report.html): Debian's
chromium and chromium-driver through an explicit driver path, so Selenium Manager never runs and
nothing downloads a browser. Screenshots go to test-artifacts/ (or $LAB_TEST_ARTIFACTS)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from lab.config import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def require_chromium() -> None:
    """Skip without Debian's chromium + chromium-driver, or fail where CI demands them."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if not missing:
        return
    reason = f"{', '.join(missing)} absent: apt-get install -y chromium chromium-driver"
    if os.environ.get("LAB_REQUIRE_BROWSER") == "1":
        pytest.fail(f"LAB_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@contextmanager
def headless_chromium(width: int, height: int) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    require_chromium()
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never fetch anything
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield browser
    finally:
        browser.quit()


def artifacts_folder(name: str) -> Path:
    directory = Path(os.environ.get("LAB_TEST_ARTIFACTS", PROJECT_ROOT / "test-artifacts")) / name
    directory.mkdir(parents=True, exist_ok=True)
    return directory
