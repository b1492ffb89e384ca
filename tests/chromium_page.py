"""Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``): no websocket
library and no network port, only the standard library. tests/test_report_html.py uses it to check what a reader
of report.html sees at 1400 px; run as a script it rewrites the report screenshots the README shows:

    .venv/bin/python tests/chromium_page.py     (from the repository root; needs chromium, e.g. Debian's)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WIDTH, HEIGHT = 1400, 1000  # the reviewer's window: the first screen is the first 1000 px
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-pipe")


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class ChromiumError(RuntimeError):
    pass


class Page:
    """One page of a headless Chromium at WIDTH x HEIGHT CSS pixels (device scale 1)."""

    def __init__(self, binary: str, timeout_s: float = 90.0) -> None:
        self.timeout_s = timeout_s
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def fds() -> None:
            """In the child: the protocol's pipe where Chromium expects it (it reads fd 3, writes fd 4). Both
            ends go above 9 first, so that neither is overwritten while the other moves; dup2 makes them
            inheritable, and every other descriptor of ours is not (PEP 446), so nothing else leaks."""
            read_end, write_end = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome_r, from_chrome_w))
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)
            os.close(read_end)
            os.close(write_end)

        self.proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={self.profile}",
                                      f"--window-size={WIDTH},{HEIGHT}", "about:blank"],
                                     close_fds=False, preexec_fn=fds, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride", {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1,
                                                         "mobile": False}, session=True)

    def _send(self, message: dict[str, Any]) -> None:
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_chrome], [], [], left)[0]:
                raise ChromiumError("no answer from chromium in time")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise ChromiumError("chromium closed its pipe: " + self.proc.stderr.read().decode()[-2000:]
                                    if self.proc.stderr else "")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict[str, Any] | None = None, session: bool = False) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        self._send(message)
        deadline = time.monotonic() + self.timeout_s
        while True:
            answer = self._receive(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise ChromiumError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def open(self, url: str) -> None:
        """Load ``url`` and wait for its load event and for every image to be decoded."""
        self.events.clear()
        self.call("Page.navigate", {"url": url}, session=True)
        deadline = time.monotonic() + self.timeout_s
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(self._receive(deadline))
        self.evaluate("Promise.all([...document.images].map(i => i.decode().catch(() => null)))")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, session=True)
        if "exceptionDetails" in result:
            raise ChromiumError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def console(self) -> list[str]:
        """Console messages and log entries the page produced (a page without script should produce none)."""
        out = []
        for e in self.events:
            if e.get("method") == "Runtime.consoleAPICalled":
                out.append(" ".join(str(a.get("value")) for a in e["params"].get("args", [])))
            elif e.get("method") == "Log.entryAdded":
                out.append(e["params"]["entry"].get("text", ""))
        return out

    def screenshot(self, path: Path, clip: dict[str, float] | None = None) -> None:
        """The first screen (WIDTH x HEIGHT), or the page region ``clip`` (x, y, width, height; page pixels)."""
        import base64

        params: dict[str, Any] = {"format": "png"}
        if clip is not None:
            params.update(clip={**clip, "scale": 1}, captureBeyondViewport=True)
        data = self.call("Page.captureScreenshot", params, session=True)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        with contextlib.suppress(ChromiumError):
            self.call("Browser.close")
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_chrome, self._from_chrome):
            os.close(fd)
        if self.proc.stderr:
            self.proc.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Page:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: what a reader sees, measured in the page: where the verdict table is, what sticks out, which figures loaded
MEASURE = """(() => {
  const table = document.querySelector('table[data-table="verdicts"]');
  const box = table ? table.getBoundingClientRect() : null;
  const rows = table ? [...table.querySelectorAll('tr')].map(r => r.getBoundingClientRect().bottom) : [];
  const wide = [...document.querySelectorAll('body *')].filter(e => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && (r.right > window.innerWidth + 0.5 || r.left < -0.5);
  }).map(e => e.tagName + (e.id ? '#' + e.id : '') + ' ' + Math.round(e.getBoundingClientRect().right));
  const images = [...document.images].map(i => ({alt: i.alt, complete: i.complete, natural: i.naturalWidth,
    shown: i.getBoundingClientRect().width, top: i.getBoundingClientRect().top + window.scrollY}));
  return {innerWidth: window.innerWidth, scrollWidth: document.documentElement.scrollWidth,
          verdictTop: box ? box.top + window.scrollY : null, verdictRows: rows.map(b => b + window.scrollY),
          wide: wide, images: images};
})()"""


def element_box(page: Page, selector: str) -> dict[str, float]:
    """Page coordinates of the first element matching ``selector``."""
    return page.evaluate(f"""(() => {{ const r = document.querySelector({json.dumps(selector)})
        .getBoundingClientRect(); return {{x: r.left + window.scrollX, y: r.top + window.scrollY,
        width: r.width, height: r.height}}; }})()""")


def write_screenshots(html: Path, docs: Path) -> tuple[Path, Path]:
    """The first screen of ``html`` and its Fig. 3, as PNG files under ``docs``."""
    binary = chromium_binary()
    if binary is None:
        raise ChromiumError("chromium is not installed")
    first, fig3 = docs / "report-first-screen.png", docs / "report-fig3.png"
    with Page(binary) as page:
        page.open(html.resolve().as_uri())
        page.screenshot(first)
        page.screenshot(fig3, element_box(page, 'figure[data-figure="fig3_footprint_vs_acts_per_param"]'))
    for path in (first, fig3):  # 256 colours are plenty for a page of text and flat plots: a third of the bytes
        from PIL import Image

        with Image.open(path) as im:
            small = im.convert("RGB").quantize(colors=256)
        small.save(path, optimize=True)
    return first, fig3


def main() -> int:
    """Build the report the README shows (the labelled synthetic GPU set beside the committed CPU run) and write
    its screenshots to docs/."""
    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    from harness.report.build import build

    with tempfile.TemporaryDirectory() as tmp:
        report = build([root / "tests/data/synthetic-gpu-results",
                        root / "benchmarks/results/bench-all-cpu-2026-11-29"], Path(tmp) / "report")
        for path in write_screenshots(report.html, root / "docs"):
            print(f"wrote {path.relative_to(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
