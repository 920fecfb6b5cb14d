"""A real headless Chromium (Debian's chromium + chromium-driver) driven by selenium, for tests of
HTML reports. Nothing is downloaded: the browser and driver binaries are given explicitly, so
selenium's driver manager never runs.

Missing browser: the tests skip, unless MTKIT_REQUIRE_BROWSER=1 (scripts/test.sh sets it after
installing the browser), where they fail.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1000")


def _need(what: str) -> None:
    msg = (f"{what}; install Debian's chromium and chromium-driver (apt-get install -y chromium "
           "chromium-driver; scripts/test.sh does this)")
    if os.environ.get("MTKIT_REQUIRE_BROWSER") == "1":
        pytest.fail(msg)
    pytest.skip(msg)


def binaries() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        _need("headless Chromium or chromedriver not found")
    return browser, driver


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """A selenium Chrome driver on a fresh profile that records the browser console."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (mtkit[test]) is not installed")
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = binaries()
    os.environ.setdefault("SE_OFFLINE", "true")  # never let selenium's manager reach the network
    profile = tempfile.mkdtemp(prefix="mtkit-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console_errors(driver, settle: float = 1.0) -> list[str]:
    """Console messages at level SEVERE (uncaught exceptions, console.error, failed loads) of the
    loaded page; the log reaches the driver asynchronously, so it is collected for ``settle`` seconds
    after the page has loaded."""
    deadline = time.monotonic() + 10
    while driver.execute_script("return document.readyState") != "complete" and time.monotonic() < deadline:
        time.sleep(0.05)
    entries = []
    end = time.monotonic() + settle
    while True:
        entries += driver.get_log("browser")
        if time.monotonic() >= end:
            break
        time.sleep(0.1)
    return [e["message"] for e in entries if e["level"] == "SEVERE"]


def page_url(path: Path) -> str:
    return path.resolve().as_uri()
