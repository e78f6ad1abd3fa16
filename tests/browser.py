"""Headless Chromium, driven through the DevTools protocol (over aiohttp, which textual-serve brings).

`screenshot(url, path)` opens the served app, waits until its first bytes have reached the page
(textual-serve then hides its start dialog), optionally types into it, and saves a PNG.

The README's docs/browser.png: a run trained for 3 minutes (`rnn-tui train --data tinyshakespeare.txt
--layers 1 --hidden 128 --embedding 32 --batch-size 16 --seq-len 64 --threads 1 --max-minutes 3
--run-name shakespeare-1x128`), served with `rnn-tui serve --port 8770 -- --resume shakespeare-1x128
--max-minutes 8 --eval-every 100 --sample-every 100 --threads 1`, then
`screenshot("http://127.0.0.1:8770/?fontsize=14", Path("docs/browser.png"), ready=..., typed="ROMEO:")`
with `ready` waiting for two more evaluations in the run's events.jsonl.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def chromium() -> str | None:
    """The Chromium on this machine (Debian's `chromium` package), if any."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Page:
    """One tab, spoken to through its DevTools websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: object) -> dict:
        msg_id = next(self._ids)
        await self.ws.send_json({"id": msg_id, "method": method, "params": params})
        async for msg in self.ws:
            reply = msg.json()
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
        raise RuntimeError("the browser closed the page")

    async def evaluate(self, expression: str) -> object:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    async def until(self, expression: str, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not await self.evaluate(expression):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            await asyncio.sleep(0.1)


APP_SHOWN = (
    "document.body.classList.contains('-first-byte') && "
    "getComputedStyle(document.querySelector('.intro-dialog')).display === 'none'"
)


async def _screenshot(
    url: str,
    path: Path,
    *,
    size: tuple[int, int],
    ready: Callable[[], Awaitable[None]] | None,
    typed: str,
    timeout: float,
) -> None:
    profile = tempfile.mkdtemp(prefix="rnn-tui-chromium-")
    proc = subprocess.Popen(
        [
            chromium(),
            *FLAGS,
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            f"--window-size={size[0]},{size[1]}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError("Chromium did not start its DevTools server")
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            target = next(t for t in targets if t.get("type") == "page")
            async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = Page(ws)
                await page.call(
                    "Emulation.setDeviceMetricsOverride",
                    width=size[0],
                    height=size[1],
                    deviceScaleFactor=1,
                    mobile=False,
                )
                await page.call("Page.navigate", url=url)
                await page.until(APP_SHOWN, "the app's first screen in the page", timeout)
                if ready is not None:
                    await ready()
                if typed:  # into the terminal's keyboard (a click would move the app's focus)
                    await page.evaluate("document.querySelector('.xterm-helper-textarea').focus()")
                    await page.call("Input.insertText", text=typed)
                    if ready is not None:
                        await ready()
                shot = await page.call("Page.captureScreenshot", format="png")
                path.write_bytes(base64.b64decode(shot["data"]))
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(
    url: str,
    path: Path,
    *,
    size: tuple[int, int] = (1400, 860),
    ready: Callable[[], Awaitable[None]] | None = None,
    typed: str = "",
    timeout: float = 60.0,
) -> None:
    """Open `url` in headless Chromium and save a PNG of it once the app shows; `ready` waits for more."""
    asyncio.run(_screenshot(url, path, size=size, ready=ready, typed=typed, timeout=timeout))


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's header."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
