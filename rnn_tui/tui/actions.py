"""Every key of the app, once: the action table.

A row is one action: its key(s), the label the footer shows, the title and description the
command palette shows (no title: not in the palette), where it applies (its scope), and whether
the footer shows it. Everything else derives from the table:

- each class that handles a scope takes `BINDINGS = bindings(SCOPE)` (the app: APP and TRAINING;
  the Playground: PLAYGROUND; each screen its own), so its actions are its `action_*` methods;
- the command palette is `commands(app, screen)`: the rows with a title whose scope the app or a node
  on the screen handles (a screen or widget says which with a `SCOPE` class attribute), each run on
  that node and offered only where its `check_action` allows it, with its keys after the description;
- the footer is Textual's, from the bindings (`show`); on the main screen in the table's order
  (screens/main.py), wherever the keyboard is.

A new key is a new row here and an `action_*` method on its scope's class. A new screen or widget
with keys adds a scope to SCOPES, sets `SCOPE` and `BINDINGS = bindings(SCOPE)`. `by_scope()` gives
every row by scope, in order (a help screen lists them from it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

from textual.actions import parse
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.keys import format_key
from textual.screen import Screen

from rnn_tui.export import EXPORTS

# Where a key applies, in words (a help screen's headings).
SCOPES = {
    "app": "Anywhere",
    "training": "While this app trains",
    "main": "The main screen",
    "chart": "The loss chart (click it; the wheel zooms)",
    "playground": "The playground",
    "prompt": "The prompt",
    "output": "The coloured text",
    "inspector": "The inspector's top five",
    "branch": "A branch beside the earlier text",
    "number": "A number field",
    "neurons": "The neuron view (F6)",
    "timeline": "The timeline (F7)",
    "samples": "The timeline's samples",
    "temperatures": "Temperatures side by side (F9)",
    "runs": "The runs (F10)",
    "open-file": "Opening a file",
    "step": "One step of the model (ctrl+l)",
    "lesson": "The lesson (rnn-tui lesson)",
    "lesson-app": "The lesson's app",
    "help": "This list of keys",
}
APP, TRAINING, MAIN, PLAYGROUND = "app", "training", "main", "playground"
PROMPT, OUTPUT, NUMBER, INSPECTOR, BRANCH = "prompt", "output", "number", "inspector", "branch"
CHART = "chart"
NEURONS, TIMELINE, SAMPLES, TEMPERATURES, RUNS, OPEN_FILE = (
    "neurons",
    "timeline",
    "samples",
    "temperatures",
    "runs",
    "open-file",
)
STEP, LESSON, LESSON_APP = "step", "lesson", "lesson-app"
HELP = "help"
# Footer groups: their keys share one label ("←→ Time step").
GROUPS = {name: Binding.Group(name, compact=True) for name in ("Time step", "Speed", "Char")}


@dataclass(frozen=True)
class Action:
    scope: str
    keys: str  # Textual's key names, comma-separated
    action: str  # the action, as a binding names it: "temperature(0.1)"
    label: str  # the footer's word for it
    title: str = ""  # the command palette's ("": not in the palette)
    description: str = ""  # the palette's line under the title; the keys are added to it
    show: bool = True  # in the footer
    priority: bool = False  # before the focused widget's own keys (the prompt's f6, f7 and ctrl+e)
    key_display: str | None = None
    group: str = ""  # a footer group of GROUPS ("": none)

    @property
    def keys_shown(self) -> str:
        return self.key_display or " or ".join(format_key(key) for key in self.keys.split(","))  # "=" for equals_sign

    def binding(self) -> Binding:
        return Binding(
            self.keys,
            self.action,
            self.label,
            show=self.show,
            priority=self.priority,
            key_display=self.key_display,
            group=GROUPS[self.group] if self.group else None,
        )


# fmt: off
TABLE = (
    # Anywhere (APP), while this app trains (TRAINING), the prompt's key: in the order the main screen's footer
    # shows them, wherever the keyboard is.
    Action(APP, "f6", "neurons", "Neurons", "Neuron view", "Colour text by one cell; find cells tracking quotes…",
           priority=True),
    Action(PROMPT, "escape", "inspect", "Inspect output"),
    Action(APP, "ctrl+q", "quit", "Quit", "Save and quit", "Save a checkpoint, then quit", priority=True),
    Action(TRAINING, "p", "toggle_pause", "Pause", "Pause / resume training", "Pause training, or carry on"),
    Action(TRAINING, "s,ctrl+s", "save", "Save", "Save checkpoint", "Save the run now"),
    Action(TRAINING, "r,ctrl+r", "restart", "Restart", "Restart training",
           "Start the trainer again from the last checkpoint", show=False),
    Action(MAIN, "ctrl+t", "switch_tab", "Switch panel", show=False),
    Action(APP, "f7", "timeline", "Timeline", "Timeline of samples", "The run's samples in order", show=False,
           priority=True),
    Action(APP, "ctrl+e", "export_view", "Export", "Export this view", f"Save it as HTML, SVG and text in {EXPORTS}/",
           show=False, priority=True),
    Action(APP, "question_mark,f1", "help", "Help", "Help: every key", "Every key of the app, by where it applies",
           show=False, key_display="? or f1"),
    Action(APP, "f10", "runs", "Runs", "Runs", "Compare the runs in the checkpoint folder, open one in the playground",
           show=False),
    # The loss chart (with the keyboard on it).
    Action(CHART, "less_than_sign", "smoothing(-1)", "Smooth−", "Less smoothing",
           "Smooth the training loss less (an EMA, debiased)", show=False, key_display="<"),
    Action(CHART, "greater_than_sign", "smoothing(1)", "Smooth+", "More smoothing",
           "Smooth the training loss more (an EMA, debiased)", show=False, key_display=">"),
    Action(CHART, "l", "toggle_log", "Log y", "Log scale", "The loss on a logarithmic axis, or a linear one",
           show=False),
    Action(CHART, "x", "next_axis", "X axis", "Chart's x axis", "Steps, minutes of training, or characters",
           show=False),
    Action(CHART, "plus,equals_sign", "zoom(0.5)", "Zoom in", key_display="+", show=False),
    Action(CHART, "minus", "zoom(2.0)", "Zoom out", key_display="-", show=False),
    Action(CHART, "0", "reset_zoom", "Whole run", show=False),
    Action(CHART, "left", "move(-1)", "Cursor ←", show=False),
    Action(CHART, "right", "move(1)", "Cursor →", show=False),
    Action(CHART, "shift+left", "move(-10)", "Cursor ← 10", show=False),
    Action(CHART, "shift+right", "move(10)", "Cursor → 10", show=False),
    Action(CHART, "end", "follow", "Newest", show=False),
    # The playground.
    Action(PLAYGROUND, "f2", "temperature(-0.1)", "Temp−", "Temperature down", "Sample more conservatively (−0.1)"),
    Action(PLAYGROUND, "f3", "temperature(0.1)", "Temp+", "Temperature up", "Sample more adventurously (+0.1)"),
    Action(PLAYGROUND, "f4", "new_seed", "Seed", "New sampling seed", "Draw a new random seed"),
    Action(PLAYGROUND, "f5", "regenerate", "Again", "Regenerate", "Generate the continuation again"),
    Action(PLAYGROUND, "f8", "toggle_follow", "Follow/freeze", "Follow training / freeze weights",
           "Toggle which weights the playground uses"),
    Action(PLAYGROUND, "f9", "temperatures", "Temperatures", "Temperatures side by side",
           "The prompt at 0.2, 0.5, 1.0 and 1.5 in one batch", show=False),
    Action(PLAYGROUND, "ctrl+g", "toggle_prediction", "Guesses", "Prediction figure",
           "The top 5 guesses under the cursor's line, or the inspector", show=False),
    Action(PLAYGROUND, "ctrl+l", "open_step", "Step", "One step laid open",
           "The model's step at the cursor: its input, every layer's gates and state, its top 8 guesses", show=False),
    Action(PLAYGROUND, "ctrl+b", "toggle_word_start", "Word-start", "Word-start sampling",
           "Draw at random only at a word's first character, greedy inside words", show=False),
    Action(PLAYGROUND, "ctrl+n", "toggle_copies", "Copies", "Mark copies",
           "Shade what occurs verbatim in the training text (20+ characters), with the novel share", show=False),
    Action(PLAYGROUND, "ctrl+o", "open_file", "Open file", "Open a file as the prompt", "Continue a text file",
           show=False),
    Action(OUTPUT, "left", "move(-1)", "Prev char", show=False),
    Action(OUTPUT, "right", "move(1)", "Next char", show=False),
    Action(OUTPUT, "up", "move_line(-1)", "Line up", show=False),
    Action(OUTPUT, "down", "move_line(1)", "Line down", show=False),
    Action(OUTPUT, "home", "move_to(0)", "First", show=False),
    Action(OUTPUT, "end", "move_to(-1)", "Last", show=False),
    Action(OUTPUT, "pageup", "scroll_lines(-10)", "Page up", show=False),
    Action(OUTPUT, "pagedown", "scroll_lines(10)", "Page down", show=False),
    Action(OUTPUT, "enter", "choose", "Branch"),  # the inspector picks one of the top five; it continues from it
    Action(INSPECTOR, "up", "pick(-1)", "Up", show=False),
    Action(INSPECTOR, "down", "pick(1)", "Down", show=False),
    Action(INSPECTOR, "enter", "branch", "Continue from it"),
    Action(INSPECTOR, "escape", "back", "Back to the text"),
    Action(NUMBER, "up", "nudge(1)", "More", show=False),
    Action(NUMBER, "down", "nudge(-1)", "Less", show=False),
    # The neuron view.
    Action(NEURONS, "escape", "close", "Back"),
    Action(NEURONS, "left_square_bracket", "cell(-1)", "Cell−", key_display="["),
    Action(NEURONS, "right_square_bracket", "cell(1)", "Cell+", key_display="]"),
    Action(NEURONS, "left_curly_bracket", "layer(-1)", "Layer−", key_display="{"),
    Action(NEURONS, "right_curly_bracket", "layer(1)", "Layer+", key_display="}"),
    Action(NEURONS, "less_than_sign", "cell(-10)", "Cell−10", show=False),
    Action(NEURONS, "greater_than_sign", "cell(10)", "Cell+10", show=False),
    Action(NEURONS, "t", "toggle_text", "Text", "Switch text", "The playground's text or validation text"),
    Action(NEURONS, "f", "find", "Find cells", "Find cells", "Rank every cell by the features it follows"),
    Action(NEURONS, "f", "cancel_find", "Cancel find", "Cancel find cells", "Stop the search for cells"),
    # The timeline (F7 closes it too: the app's key).
    Action(TIMELINE, "escape", "app.pop_screen", "Back"),
    Action(SAMPLES, "j,]", "jump(1)", "Next sample"),
    Action(SAMPLES, "k,[", "jump(-1)", "Previous sample"),
    Action(SAMPLES, "home", "jump_to(0)", "First", show=False),
    Action(SAMPLES, "end", "jump_to(-1)", "Last", show=False),
    # A branch beside the earlier text.
    Action(BRANCH, "escape", "app.pop_screen", "Back"),
    # Temperatures side by side.
    Action(TEMPERATURES, "escape,f9", "app.pop_screen", "Back"),
    Action(TEMPERATURES, "f5", "generate", "Again"),
    Action(TEMPERATURES, "f4", "new_seed", "Seed"),
    # The runs.
    Action(RUNS, "escape,f10", "back", "Back"),
    Action(RUNS, "space", "mark", "Compare"),
    Action(RUNS, "t", "toggle_axis", "Step/time"),
    Action(RUNS, "o", "open", "Open in playground"),
    Action(RUNS, "b", "baseline", "Baseline"),
    Action(RUNS, "slash", "filter", "Filter", key_display="/"),
    # The help screen.
    Action(HELP, "escape,question_mark,f1", "close", "Close", key_display="esc, ? or f1"),
    # Opening a file.
    Action(OPEN_FILE, "escape", "cancel", "Cancel"),
    # One step of the model (ctrl+l closes it too; up and down scroll it).
    Action(STEP, "escape,ctrl+l", "app.pop_screen", "Back"),
    Action(STEP, "left", "move(-1)", "Previous char", priority=True, group="Char"),
    Action(STEP, "right", "move(1)", "Next char", priority=True, group="Char"),
    Action(STEP, "home", "move_to(0)", "First char", show=False, priority=True),
    Action(STEP, "end", "move_to(-1)", "Last char", show=False, priority=True),
    # The lesson, its own app (rnn-tui lesson).
    Action(LESSON, "space", "update", "Update"),
    Action(LESSON, "enter", "run", "Run/pause"),
    Action(LESSON, "left", "choose(-1)", "Earlier step", group="Time step"),
    Action(LESSON, "right", "choose(1)", "Later step", group="Time step"),
    Action(LESSON, "c", "cell", "Cell"),
    Action(LESSON, "r", "restart", "Restart"),
    Action(LESSON, "ctrl+e", "export", "Export"),
    Action(LESSON, "minus", "speed(-1)", "Slower", group="Speed"),
    Action(LESSON, "plus,equals_sign", "speed(1)", "Faster", group="Speed"),
    Action(LESSON, "home", "choose_at(0)", "First step", show=False),
    Action(LESSON, "end", "choose_at(-1)", "Last step", show=False),
    Action(LESSON_APP, "q,ctrl+q", "quit", "Quit", priority=True),
)
# fmt: on


def rows(scope: str) -> list[Action]:
    """The rows of one scope, in the table's order."""
    if scope not in SCOPES:
        raise KeyError(f"no scope {scope!r} in the action table")
    return [row for row in TABLE if row.scope == scope]


def by_scope() -> dict[str, list[Action]]:
    """Every row, by scope, in SCOPES' order."""
    return {scope: rows(scope) for scope in SCOPES}


def bindings(*scopes: str) -> list[Binding]:
    """The key bindings of the scopes a class handles (its `BINDINGS`), in the table's order."""
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        raise KeyError(f"no scope {unknown.pop()!r} in the action table")
    return [row.binding() for row in TABLE if row.scope in scopes]


def position(binding: Binding) -> int:
    """Where a binding's row is in the table (after every row: a binding of Textual's own)."""
    for i, row in enumerate(TABLE):
        if row.action == binding.action and binding.key in row.keys.split(","):
            return i
    return len(TABLE)


def commands(app: App, screen: Screen) -> Iterator[SystemCommand]:
    """The command palette's entries over `screen`: each row with a title whose scope is the app's or one of a
    node on the screen (its `SCOPE`), run on that node, where its `check_action` offers it."""
    handlers: dict[str, object] = {APP: app, TRAINING: app}
    for node in (screen, *screen.walk_children()):
        handlers.setdefault(getattr(node, "SCOPE", ""), node)
    for row in TABLE:
        node = handlers.get(row.scope)
        if not row.title or node is None:
            continue
        _, name, params = parse(row.action)
        if node.check_action(name, params) is False:
            continue
        run = partial(app.call_later, app.run_action, row.action, node)
        yield SystemCommand(row.title, f"{row.description} ({row.keys_shown})", run)
