"""`rnn-tui serve`: the app in a browser through textual-serve, driven on loopback; and its stdout kept clean."""

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from rnn_tui.cli import exposure_warning
from tests import browser
from tests.conftest import TINY_FLAGS, cli_env, wait_for
from tests.helpers import assert_user_error, rnn_tui

ROOT = Path(__file__).resolve().parents[1]
DOCS_SHOT = os.environ.get("RNN_TUI_BROWSER_SHOT")  # where to keep a copy of the screenshot (the README's)
ANSI = re.compile(rb"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[PX^_][^\x1b]*\x1b\\|[@-Z\\-_])")
STARTUP = 180.0  # seconds: an app and its trainer start in a loaded machine, at nice 19


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def screen_text(data: bytes) -> str:
    """What the app drew, without its escape sequences: enough to find words in it."""
    return ANSI.sub(b"", data).decode("utf-8", "replace")


class Served:
    """`rnn-tui serve` in a subprocess, on loopback."""

    def __init__(self, tmp_path: Path, text_file: Path, *launch: str):
        self.port = free_port()
        self.checkpoints = tmp_path / "checkpoints"
        flags = ["--data", str(text_file), *TINY_FLAGS, "--checkpoint-dir", str(self.checkpoints), *launch]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rnn_tui", "serve", "--port", str(self.port), "--", *flags],
            cwd=tmp_path,
            env=cli_env(RNN_TUI_CACHE=str(tmp_path / "cache")),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        try:
            wait_for(self._answers, timeout=60, what="the server to answer")
        except BaseException:
            print(self.stop())  # not left running: the fixture that would stop it never got it
            raise

    def _answers(self) -> bool:
        assert self.proc.poll() is None, self.proc.stdout.read()
        try:
            with urllib.request.urlopen(self.url + "/", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def runs(self) -> list[Path]:
        return sorted(self.checkpoints.iterdir()) if self.checkpoints.is_dir() else []

    def apps(self) -> list[int]:
        """The apps the server runs now (one per open tab)."""
        pattern = f"^[^ ]*python[^ ]* -m rnn_tui launch .*{self.checkpoints}"  # not the shell that started it
        out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
        return [int(pid) for pid in out.stdout.split()]

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.stdout.read()


@pytest.fixture
def served(tmp_path, text_file):
    server = Served(tmp_path, text_file)
    yield server
    server.stop()


class Tab:
    """A browser tab, as textual-serve's page speaks to the server: a websocket with JSON and binary frames."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self.screen = bytearray()

    async def until(self, predicate, what: str, timeout: float = STARTUP) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = screen_text(bytes(self.screen))
            if predicate(text):
                return text
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"timed out waiting for {what}; the screen ends with {text[-400:]!r}"
            try:
                msg = await asyncio.wait_for(self.ws.receive(), min(remaining, 1.0))
            except TimeoutError:
                continue
            if msg.type == aiohttp.WSMsgType.BINARY:
                self.screen += msg.data
            else:
                assert msg.type == aiohttp.WSMsgType.TEXT, f"the app went away while waiting for {what}: {msg}"

    async def type(self, text: str) -> None:
        await self.ws.send_json(["stdin", text])


def state(text: str) -> str | None:
    """The newest state the header showed."""
    states = re.findall(r"rnn-tui ● (\w+)", text)
    return states[-1] if states else None


async def _two_tabs(served: Served) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(served.url + "/") as page:
            assert page.status == 200 and "rnn-tui" in await page.text()
        url = served.url.replace("http", "ws") + "/ws?width=120&height=36"
        async with http.ws_connect(url) as ws_a:
            a = Tab(ws_a)
            await a.until(lambda t: "Playground" in t and "Training" in t, "the first screen")
            await a.until(lambda t: state(t) == "training", "the trainer to start")
            # Runs without --run-name are named by the second they start in: a second tab waits for one.
            async with http.ws_connect(url) as ws_b:
                b = Tab(ws_b)
                await b.until(lambda t: "Playground" in t, "the second tab's screen")
                assert len(served.apps()) == 2  # each tab its own app
                start = len(screen_text(bytes(a.screen)))
                await a.type("zebra ")
                await a.until(lambda t: "zebra" in t[start:], "the typed prompt in the playground")
                await b.until(lambda t: state(t) == "training", "the second tab's trainer")
                assert "zebra" not in screen_text(bytes(b.screen))  # the other tab's app did not get the keys
    wait_for(lambda: not served.apps(), timeout=120, what="the apps to quit when their tabs closed")


@pytest.mark.process
def test_each_tab_gets_its_own_app_and_the_keys_reach_the_playground(served):
    asyncio.run(_two_tabs(served))
    # The trainers behave as in the terminal: when their app quits, they save first.
    runs = served.runs()
    assert len(runs) == 2 and all((run / "meta.json").exists() for run in runs), [list(r.iterdir()) for r in runs]
    assert all("rnn-tui trainer" in (run / "train.log").read_text() for run in runs)
    log = served.stop()  # the apps' stderr is in it: no traceback went through our code
    assert not re.search(r'File "[^"]*rnn_tui', log), log


@pytest.mark.process
@pytest.mark.skipif(browser.chromium() is None, reason="Chromium is not installed (Debian: apt-get install chromium)")
def test_the_app_in_headless_chromium(served, tmp_path):
    shot = tmp_path / "browser.png"

    async def training() -> None:  # the record has an evaluation after the app showed one before
        def evaluations() -> int:
            return sum(
                (run / "events.jsonl").read_text().count('"event": "eval"')
                for run in served.runs()
                if (run / "events.jsonl").exists()
            )

        seen = evaluations()
        deadline = time.monotonic() + STARTUP
        while evaluations() < seen + 2:
            assert time.monotonic() < deadline, "no evaluations arrived"
            await asyncio.sleep(0.2)

    browser.screenshot(served.url + "/?fontsize=14", shot, ready=training, typed="the cat ", timeout=STARTUP)
    data = shot.read_bytes()
    assert browser.png_size(data) == (1400, 860)
    if DOCS_SHOT:
        Path(DOCS_SHOT).write_bytes(data)


def test_listening_beyond_loopback_is_said_out_loud():
    assert exposure_warning("127.0.0.1", 8000) is None
    assert exposure_warning("::1", 8000) is None and exposure_warning("localhost", 8000) is None
    for host in ("0.0.0.0", "192.168.1.5", "example.org"):
        assert "no password" in exposure_warning(host, 8000)


@pytest.mark.process
def test_serve_checks_the_launch_flags_before_it_listens(tmp_path):
    for args, words in (
        (["--", "--hidden", "0"], "--hidden"),
        (["--", "--data", "missing.txt"], "missing.txt"),
        (["--", "train"], "not a flag of rnn-tui launch"),
    ):
        assert_user_error(rnn_tui("serve", "--port", free_port(), *args, cwd=tmp_path), words)


@pytest.mark.process
def test_a_port_in_use_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = rnn_tui("serve", "--port", port, cwd=tmp_path)
    assert_user_error(proc, f"cannot listen on 127.0.0.1:{port}")


# --------------------------------------------------------------------------- the app's stdout is the protocol

LEAK = """
import os, sys
if any("multiprocessing" in arg for arg in sys.orig_argv):  # the trainer, or multiprocessing's resource tracker
    os.write(1, b"LEAK on fd 1 from a child before it started\\n")
    os.write(2, b"LEAK on fd 2 from a child before it started\\n")
"""


def packets(data: bytes) -> list[tuple[bytes, bytes]]:
    """textual-serve's view of the app's stdout: a prelude line, then type-length-payload packets only."""
    prelude = b"__GANGLION__\n"
    assert prelude in data[:200], data[:200]
    pos, out = data.index(prelude) + len(prelude), []
    while pos < len(data):
        kind, size = data[pos : pos + 1], int.from_bytes(data[pos + 1 : pos + 5], "big")
        assert kind in (b"D", b"M", b"P"), f"not a packet at byte {pos}: {data[pos : pos + 60]!r}"
        out.append((kind, data[pos + 5 : pos + 5 + size]))
        pos += 5 + size
    assert pos == len(data), "a torn packet at the end"
    return out


@pytest.mark.process
def test_nothing_but_the_app_writes_to_its_stdout(tmp_path, text_file):
    """Every child of the app (the trainer, multiprocessing's helper) speaks at once on fds 1 and 2, before
    any of our code runs in it; none of it may reach the app's stdout, which textual-serve reads."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(LEAK)
    checkpoints = tmp_path / "checkpoints"
    env = {
        **cli_env(),
        "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
        "TEXTUAL_DRIVER": "textual.drivers.web_driver:WebDriver",  # what textual-serve sets
        "ROWS": "30",
    }
    command = ["launch", "--data", str(text_file), *TINY_FLAGS, "--checkpoint-dir", str(checkpoints)]
    app = subprocess.Popen(
        [sys.executable, "-m", "rnn_tui", *command, "--run-name", "quiet"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stdout = bytearray()

    def read() -> None:
        while chunk := app.stdout.read1(65536):
            stdout.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        log = checkpoints / "quiet" / "train.log"
        wait_for(lambda: log.exists() and "rnn-tui trainer" in log.read_text(), timeout=STARTUP, what="the trainer")
        app.stdin.close()  # as if textual-serve died: the app quits, and the trainer saves as it stops
        app.wait(120)
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
    reader.join(10)
    stderr = app.stderr.read()
    assert app.returncode == 0, stderr
    assert b"LEAK" not in stdout and b"LEAK" not in stderr
    kinds = {kind for kind, _ in packets(bytes(stdout))}
    assert b"D" in kinds  # the screen itself came through
    written = log.read_text()
    assert "LEAK on fd 1" in written and "LEAK on fd 2" in written  # the child's first words are in its log
    assert (checkpoints / "quiet" / "meta.json").exists()
