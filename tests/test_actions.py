"""The action table: each key is defined once, and the bindings, the command palette and the footer come from it.
And app.py only routes and opens screens."""

import ast
import re
from pathlib import Path

import pytest
from textual.actions import parse
from textual.app import App

import rnn_tui
from rnn_tui.tui import actions
from rnn_tui.tui.actions import TABLE
from rnn_tui.tui.app import RnnTuiApp
from rnn_tui.tui.messages import Generated
from rnn_tui.tui.screens.branch import BranchScreen
from rnn_tui.tui.screens.help import HelpScreen, keys_table
from rnn_tui.tui.screens.lesson import LessonApp, LessonScreen
from rnn_tui.tui.screens.main import MainScreen
from rnn_tui.tui.screens.neurons import NeuronScreen
from rnn_tui.tui.screens.open_file import OpenFileScreen
from rnn_tui.tui.screens.runs import RunsScreen
from rnn_tui.tui.screens.step import StepScreen
from rnn_tui.tui.screens.temperatures import TemperaturesScreen
from rnn_tui.tui.screens.timeline import TimelineScreen
from rnn_tui.tui.widgets.chargrid.confidence_text import ConfidenceText
from rnn_tui.tui.widgets.playground.controls import Controls
from rnn_tui.tui.widgets.playground.inspector import Inspector
from rnn_tui.tui.widgets.playground.number_input import NumberInput
from rnn_tui.tui.widgets.playground.playground import Playground
from rnn_tui.tui.widgets.playground.prediction import PredictionView
from rnn_tui.tui.widgets.playground.prompt import PromptArea
from rnn_tui.tui.widgets.timeline.sample_timeline import SampleTimeline
from rnn_tui.tui.widgets.training.loss_chart import LossChart
from tests.conftest import until
from tests.fakes import FakeFolder, FakeSession
from tests.helpers import SIZE, settle

PACKAGE = Path(rnn_tui.__file__).parent
HANDLERS = {  # the class that handles each scope's keys
    actions.APP: RnnTuiApp,
    actions.TRAINING: RnnTuiApp,
    actions.MAIN: MainScreen,
    actions.PLAYGROUND: Playground,
    actions.PROMPT: PromptArea,
    actions.OUTPUT: ConfidenceText,
    actions.INSPECTOR: Inspector,
    actions.BRANCH: BranchScreen,
    actions.NUMBER: NumberInput,
    actions.NEURONS: NeuronScreen,
    actions.TIMELINE: TimelineScreen,
    actions.SAMPLES: SampleTimeline,
    actions.TEMPERATURES: TemperaturesScreen,
    actions.RUNS: RunsScreen,
    actions.OPEN_FILE: OpenFileScreen,
    actions.STEP: StepScreen,
    actions.LESSON: LessonScreen,
    actions.LESSON_APP: LessonApp,
    actions.HELP: HelpScreen,
    actions.CHART: LossChart,
}


def described(bindings) -> list[tuple]:
    return [(b.key, b.action, b.description, b.show, b.priority, b.key_display) for b in bindings]


def test_every_class_with_keys_takes_them_from_the_table():
    assert set(HANDLERS) == set(actions.SCOPES) == {row.scope for row in TABLE}
    for cls in set(HANDLERS.values()):
        scopes = [scope for scope, handler in HANDLERS.items() if handler is cls]
        assert described(cls.BINDINGS) == described(actions.bindings(*scopes)), cls
        if cls is not RnnTuiApp:
            assert scopes[0] == cls.SCOPE


def test_every_action_is_a_method_of_its_scopes_class():
    for row in TABLE:
        namespace, name, _ = parse(row.action)
        cls = App if namespace == "app" else HANDLERS[row.scope]
        assert callable(getattr(cls, f"action_{name}", None)), row


def test_no_key_is_bound_outside_the_table():
    for path in PACKAGE.rglob("*.py"):
        if path.name != "actions.py":
            assert "Binding(" not in path.read_text(encoding="utf-8"), path


def test_a_key_means_one_thing_in_a_scope():
    for scope, rows in actions.by_scope().items():
        keys = [(key, row.action) for row in rows for key in row.keys.split(",")]
        # Two rows may share a key only when check_action offers one at a time (find / cancel find).
        shared = {key for key, _ in keys if [k for k, _ in keys].count(key) > 1}
        assert shared <= ({"f"} if scope == actions.NEURONS else set()), scope
    assert sum(len(rows) for rows in actions.by_scope().values()) == len(TABLE)  # every row, once


def table_commands(app, screen) -> list:
    titles = {row.title for row in TABLE if row.title}
    return [c for c in app.get_system_commands(screen) if c.title in titles]


async def test_the_palette_lists_the_table_with_its_keys_and_runs_each_where_it_belongs():
    app = RnnTuiApp(FakeSession())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        commands = table_commands(app, app.screen)
        on_main = (actions.APP, actions.TRAINING, actions.CHART, actions.PLAYGROUND)
        rows = [r for r in TABLE if r.title and r.scope in on_main]
        assert [c.title for c in commands] == [r.title for r in rows]
        assert [c.help for c in commands] == [f"{r.description} ({r.keys_shown})" for r in rows]
        assert dict((c.title, c.help) for c in commands)["Prediction figure"].endswith("(ctrl+g)")
        next(c for c in commands if c.title == "Temperature up").callback()  # the playground's action
        await settle(pilot)
        assert app.query_one(Controls).value("temperature") == pytest.approx(0.9)
        next(c for c in commands if c.title == "Neuron view").callback()  # the app's
        await until(pilot, lambda: isinstance(app.screen, NeuronScreen), "the neuron view")
        await until(pilot, lambda: app.screen.trace is not None, "its trace")
        titles = [c.title for c in table_commands(app, app.screen)]
        assert "Find cells" in titles and "Switch text" in titles  # the screen's own
        assert "Cancel find cells" not in titles  # offered once a search runs (check_action)
        assert "Temperature up" not in titles  # the playground is not on this screen
        assert "Save and quit" in titles


async def test_a_saved_run_offers_no_training_commands():
    app = RnnTuiApp(FakeFolder())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        titles = [c.title for c in table_commands(app, app.screen)]
        assert not {r.title for r in actions.rows(actions.TRAINING)} & set(titles)
        assert "Regenerate" in titles and "Save and quit" in titles
        footer = {b.binding.action for b in app.screen.active_bindings.values()}
        assert "toggle_pause" not in footer and "temperature(0.1)" in footer


async def test_the_playground_keys_do_what_the_table_says():
    generated: list[Generated] = []
    app = RnnTuiApp(FakeSession())

    def hook(message) -> None:
        if isinstance(message, Generated) and message.done:
            generated.append(message)

    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await settle(pilot)
        await pilot.press(*"the")
        await settle(pilot)
        controls = app.query_one(Controls)

        checks = {
            "temperature(-0.1)": lambda: controls.value("temperature") == pytest.approx(0.7),
            "temperature(0.1)": lambda: controls.value("temperature") == pytest.approx(0.8),
            "new_seed": lambda: controls.value("seed") != 42,
            "regenerate": lambda: len(generated) > done_before,
            "toggle_follow": lambda: not controls.follow,
            "temperatures": lambda: isinstance(app.screen, TemperaturesScreen),
            "toggle_prediction": lambda: app.query_one(PredictionView).display,
            "toggle_word_start": lambda: controls.word_start and controls.settings.draw == "word-start",
            "toggle_copies": lambda: app.query_one(Playground).copies_on,
            "open_file": lambda: isinstance(app.screen, OpenFileScreen),
            "open_step": lambda: isinstance(app.screen, StepScreen),
        }
        assert set(checks) == {row.action for row in actions.rows(actions.PLAYGROUND)}  # a new row needs a check
        for row in actions.rows(actions.PLAYGROUND):
            await settle(pilot)
            done_before = len(generated)
            await pilot.press(row.keys.split(",")[0])
            await until(pilot, checks[row.action], row.action)
            if app.screen is not app.default_screen:
                await pilot.press("escape")
                await until(pilot, lambda: app.screen is app.default_screen, "the main screen")
                app.query_one(PromptArea).focus()
        assert app.query_one(PromptArea).text == "the"  # none of them typed into the prompt


def test_app_py_routes_and_opens_screens():
    """About 300 lines (and the first frame's wiring), and three uses of the playground, all through its public
    methods; the panels are built in screens/main.py."""
    source = (PACKAGE / "tui" / "app.py").read_text(encoding="utf-8")
    assert len(source.splitlines()) <= 340
    tree = ast.parse(source)
    uses = [
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "playground"
        and getattr(node.value.value, "id", None) == "self"
    ]
    assert sorted(uses) == ["follow", "show_run", "snapshot"]
    assert source.count("self.playground") == len(uses) and "Playground(" not in source
    inside = {"ConfidenceText", "PromptArea", "Controls", "Inspector", "PredictionView", "Engine", "Generator"}
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert not names & inside


def rendered(renderable, width: int = 120) -> str:
    from rich.console import Console

    console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text()


def test_the_help_lists_every_row_of_the_table_under_its_scope():
    text = rendered(keys_table())
    lines = text.splitlines()
    headings = [lines.index(actions.SCOPES[scope]) for scope in actions.SCOPES]
    assert headings == sorted(headings)
    ends = [*headings[1:], len(lines)]
    for rows, start, end in zip(actions.by_scope().values(), headings, ends, strict=True):
        section = [re.split(r"\s{2,}", line.strip()) for line in lines[start + 1 : end]]
        for row in rows:  # each row under its heading: keys, then its name
            assert any(cells[:2] == [row.keys_shown, row.title or row.label] for cells in section), row
    assert "? or f1" in text and "Every key of the app" in text


async def test_f1_and_question_mark_open_the_help_and_the_prompt_still_types_a_question_mark():
    app = RnnTuiApp(FakeSession())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.focused, PromptArea)
        await pilot.press("question_mark")
        assert app.query_one(PromptArea).text == "?" and not isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.default_screen, "the main screen")
        app.query_one(ConfidenceText).focus()  # the output: ? is the app's key there
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help, by ?")
        await pilot.press("question_mark")
        await until(pilot, lambda: app.screen is app.default_screen, "closed by ? again")
