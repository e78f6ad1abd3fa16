"""A monkey at the keyboard and the mouse: 2,000 random keys, pastes, clicks and resizes through Pilot, with a real
trainer running in its process on a tiny model. No exception, and afterwards the app still answers: it continues a
prompt, and training goes on.

Seeded (RNN_TUI_MONKEY_SEED), so a failure replays. Quitting is the one thing the monkey never asks for.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from unittest import mock

import pytest
from textual import events
from textual.command import CommandPalette
from textual.errors import NoWidget
from textual.pilot import OutOfBounds

from rnn_tui.session import LocalSession
from rnn_tui.tui.app import RnnTuiApp
from rnn_tui.tui.widgets.playground.controls import FIELDS, Controls
from rnn_tui.tui.widgets.playground.playground import Playground
from rnn_tui.tui.widgets.playground.prompt import PromptArea
from rnn_tui.tui.widgets.run_header import RunHeader
from tests.conftest import tiny_plan, until
from tests.helpers import output

ACTIONS = 2000
KEYS = [
    *"abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789.,;:!?'\"()[]{}<>/\\|-_=+*&^%$#@~`",
    *["enter", "backspace", "delete", "tab", "shift+tab", "escape", "up", "down", "left", "right"],
    *["home", "end", "pageup", "pagedown", "ctrl+a", "ctrl+e", "ctrl+k", "ctrl+u", "ctrl+w", "ctrl+c"],
    *["f2", "f3", "f4", "f5", "f8", "ctrl+t", "ctrl+p", "ctrl+s", "ctrl+r", "p", "s", "r"],
]
PASTES = [
    "",
    "the cat sat",
    "x" * 500,
    "line\nline\n\ttab",
    "🙂 emoji ✓",
    "[bold]markup[/]",
    "\x00\x1b[2J",
    "e\u0301\u202e",
]
SIZES = [(140, 44), (80, 24), (60, 16), (200, 60), (110, 30)]
# Textual 8.2.8's OptionList crashes (KeyError in _move_page) on pageup/pagedown before it has laid out its
# options, which the command palette's list hits in the first moments after ctrl+p. No person types that fast;
# the monkey waits this long after opening the palette (a Textual bug, not ours: see the report).
PALETTE_FRAME = 0.05
WAIT = 0.05  # seconds between looks while waiting: the app shares the CPU with its trainer, which runs at nice 19


async def _yield(*args, **kwargs) -> None:
    await asyncio.sleep(0)


async def monkey(pilot, rng: random.Random, n: int) -> dict[str, int]:
    """`n` random actions. Keys arrive as a fast typist sends them: after each, Pilot waits only until every widget
    has handled its messages, not (as it does by default) until the process's CPU goes idle, which would wait for
    each continuation to be generated in full."""
    with mock.patch("textual.app.wait_for_idle", _yield), mock.patch("textual.pilot.wait_for_idle", _yield):
        return await _monkey(pilot, rng, n)


async def _monkey(pilot, rng: random.Random, n: int) -> dict[str, int]:
    app = pilot.app
    done = {"key": 0, "paste": 0, "click": 0, "resize": 0}
    while sum(done.values()) < n:
        roll = rng.random()
        width, height = app.screen.size
        if isinstance(app.screen, CommandPalette):  # typing into the palette; never enter: it could pick "quit"
            await pilot.press(rng.choice([*"abcdefgh", "backspace", "down", "escape"]))
            done["key"] += 1
        elif roll < 0.80:  # a burst of keys, as a typist's fingers send them, then the app catches up
            burst = [rng.choice(KEYS) for _ in range(rng.randint(1, 8))]
            if "ctrl+p" in burst:  # the palette gets a frame to fill its list (see PALETTE_FRAME)
                burst = burst[: burst.index("ctrl+p") + 1]
            await pilot.press(*burst)
            if burst[-1] == "ctrl+p":
                await pilot.pause(PALETTE_FRAME)
            done["key"] += len(burst)
        elif roll < 0.88:
            if app.focused is not None:
                app.focused.post_message(events.Paste(rng.choice(PASTES)))
                await pilot.pause()
            done["paste"] += 1
        elif roll < 0.98:  # anywhere but the footer, whose bindings include quit
            with contextlib.suppress(NoWidget, OutOfBounds):  # the screen is between two sizes: Pilot's miss
                await pilot.click(offset=(rng.randrange(width), rng.randrange(max(1, height - 1))))
            done["click"] += 1
        else:
            await pilot.resize_terminal(*rng.choice(SIZES))
            done["resize"] += 1
    return done


@pytest.mark.process
async def test_two_thousand_random_actions_with_the_trainer_running(text_file, tmp_path):
    seed = int(os.environ.get("RNN_TUI_MONKEY_SEED", "2024"))
    rng = random.Random(seed)
    session = LocalSession(tiny_plan(text_file, tmp_path, max_steps=None, checkpoint_every=200, eval_every=100))
    app = RnnTuiApp(session)
    try:
        async with app.run_test(size=(112, 32)) as pilot:
            await until(pilot, lambda: app.query_one(Playground).weights is not None, "the weights", 120, WAIT)
            done = await monkey(pilot, rng, ACTIONS)
            print(f"monkey (seed {seed}): {done}")
            assert sum(done.values()) >= ACTIONS and all(done.values()), done
            assert app.is_running and app.return_code is None, f"the app stopped (seed {seed})"

            # Afterwards it still answers: back to the main screen, sane settings, a prompt.
            while len(app.screen_stack) > 1:  # the command palette, say
                await pilot.press("escape")
            await pilot.resize_terminal(112, 32)
            controls = app.query_one(Controls)
            for name, _, _ in FIELDS:
                controls.field(name).value = controls.field(name).format(getattr(controls.initial, name))
            if not controls.follow:
                await pilot.press("f8")
            prompt = app.query_one(PromptArea)
            prompt.focus()
            prompt.clear()
            await pilot.press(*"the cat")
            out = output(app)
            await until(
                pilot,
                lambda: out.n_prompt == 7 and len(out.tokens) == 7 + 300,
                f"the playground to continue the prompt (seed {seed}): prompt {prompt.text!r}, "
                f"{out.n_prompt} + {len(out.tokens) - out.n_prompt} shown, settings {controls.settings}, "
                f"screen {app.screen}, focus {app.focused}",
                30,
                WAIT,
            )

            # And training goes on (resumed if the monkey left it paused, restarted if it died).
            if app.state == "paused":
                session.resume()
            elif app.state == "failed":
                await pilot.press("ctrl+r")
            step = app.query_one(RunHeader).step
            await until(
                pilot, lambda: app.query_one(RunHeader).step > step, f"training to go on (seed {seed})", 60, WAIT
            )
    finally:
        session.close()
    assert not session.alive
