"""The real app on a free port of 127.0.0.1 and headless Debian Chromium: shared by the browser tests and benchmarks."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium floods the closed network with refused connections.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


@dataclass
class AppServer:
    url: str
    runs: Path
    pid: int  # the app's process, e.g. to read its memory


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(runs: Path, env: dict[str, str] | None = None, start_timeout: float = 120) -> Iterator[AppServer]:
    """``python app.py`` with its own runs folder (log in runs/app.log), stopped on exit."""
    runs.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with open(runs / "app.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT,
                                env={**os.environ, **(env or {}), "SFT_STUDIO_RUNS": str(runs)},
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}/"
            _wait_until_serving(url, proc, runs / "app.log", start_timeout)
            yield AppServer(url, runs, proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_until_serving(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"the app exited while starting:\n{log.read_text()}")
            time.sleep(0.5)
    raise RuntimeError(f"the app did not start within {timeout:.0f} s")


def launch_chromium(playwright):
    """Headless Debian Chromium (Playwright's own browser downloads are unreachable here)."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError("Debian's chromium is not installed: run `make test` or `make browser`, which install it.")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)


def open_advanced(page) -> None:
    """Open the Train tab's Advanced section (the page shows base model, preset and schedule until asked)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(2):  # a click while the page is still wiring its events can be lost: click once more
        if page.locator("#lr").is_visible():
            return
        page.locator("#train-advanced").get_by_text("Advanced", exact=True).click()
        try:
            page.locator("#lr").wait_for(timeout=10_000)
        except PlaywrightTimeout:
            if attempt:
                raise
