"""Headless Chromium (Debian's chromium + chromium-driver) through Selenium: the review page's tests, its
benchmark and the README screenshot. No download: the driver is the system's, named explicitly."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
DRIVER = "/usr/bin/chromedriver"
INSTALL = "apt-get update && apt-get install -y chromium chromium-driver (make setup does this where it can)"


def find_chromium() -> tuple[str, str] | None:
    binary = next((b for b in CHROMIUM if Path(b).exists()), None) or shutil.which("chromium")
    driver = DRIVER if Path(DRIVER).exists() else shutil.which("chromedriver")
    return (binary, driver) if binary and driver else None


def chromium(download_dir: str | Path | None = None, width: int = 1400, height: int = 1000):
    """A headless Chromium WebDriver that keeps the console log and (optionally) downloads into a folder."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    found = find_chromium()
    if found is None:
        raise RuntimeError(f"no Chromium/ChromeDriver on this machine: {INSTALL}")
    options = Options()
    options.binary_location = found[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(found[1]), options=options)
    if download_dir is not None:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(download_dir)})
    return driver


@contextmanager
def serve(folder: str | Path):
    """`python -m http.server` for a folder, on a free loopback port, for the duration of the block."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def screenshot(page: str | Path, png: str | Path, order: str = "natural", width: int = 1400, height: int = 900) -> Path:
    """A PNG of a review page as headless Chromium shows it (served over loopback, as a reviewer would)."""
    import time

    page = Path(page).resolve()
    root = Path.cwd().resolve()
    driver = chromium(width=width, height=height)
    try:
        with serve(root) as url:
            driver.get(f"{url}/{page.relative_to(root).as_posix()}")
            for _ in range(200):
                if driver.execute_script("return document.body.dataset.ready") == "1":
                    break
                time.sleep(0.05)
            if order != "natural":
                from selenium.webdriver.support.ui import Select

                Select(driver.find_element("id", "order")).select_by_value(order)
            time.sleep(0.3)  # the frame image
            driver.save_screenshot(str(png))
    finally:
        driver.quit()
    return Path(png)


if __name__ == "__main__":  # python -m chimera.review.browser reports/review.html docs/review.png [worst]
    import sys

    print(screenshot(sys.argv[1], sys.argv[2], *(sys.argv[3:4] or ["natural"])))
