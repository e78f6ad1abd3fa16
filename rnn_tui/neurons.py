"""What the hidden cells do: features of a text, cells ranked by them, and ablation. Torch-free (NumPy).

After Karpathy's "Visualizing the predictions and the neuron firings": some cells switch on
inside quotes, count the position in a line or track the depth of brackets. This module
finds them for you:

- `text_features(text)`: simple per-character features of a text (inside quotes, bracket
  depth, ...). Each value describes the text read so far, up to and including that
  character, as the state after reading it does.
- `Analysis(stepper, vocab, text)`: runs the model over a long text (about 50,000
  characters) and ranks every cell by |Pearson r| of its activation with each feature
  (`correlate`, then `ranking`). `ablate` zeroes a cell at every step and measures how much
  the loss rises where a feature holds and where it does not.
- `Trace`: every cell's activation at every character of a text, for the neuron view.

A cell's activation is what `inference.KERNELS[cell].shown` gives: tanh of the cell state
for an LSTM, the hidden state for a GRU or RNN.

Speed: a long text is cut into `streams` pieces run side by side, so each step is one
matrix product over the pieces instead of one matrix-vector product per piece. Every piece
after the first starts `burn_in` characters early, from a zero state, and those characters
are not counted: the state has warmed up by the time its counted characters begin. The
passes are generators that yield their progress after each chunk of steps, so a worker can
report it and stop between chunks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnn_tui.errors import UserError
from rnn_tui.inference import Stepper, log_softmax, mask_unknown
from rnn_tui.text.corpus import run_corpus
from rnn_tui.text.vocab import Vocab

STREAMS = 32  # pieces of a long text run side by side
BURN_IN = 128  # characters each piece after the first reads before it is counted
CHUNK = 32  # steps between progress reports (and cancellation checks)
TRACE_CHUNK = 256  # characters of a Trace between progress reports
TAB = 4  # columns of a tab in the indentation feature
LN2 = float(np.log(2.0))

Cell = tuple[int, int]  # (layer, unit)


# --------------------------------------------------------------------------- the features of a text


def _chars(text: str) -> np.ndarray:
    return np.array(list(text), dtype="<U1") if text else np.zeros(0, dtype="<U1")


def _spans(n: int, spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """1.0 on [start, end) of each span, 0.0 elsewhere."""
    d = np.zeros(n + 1, np.int64)
    for start, end in spans:
        d[start] += 1
        d[end] -= 1
    return (np.cumsum(d[:n]) > 0).astype(np.float32)


def _pairs(positions: np.ndarray, blocks: np.ndarray) -> list[tuple[int, int]]:
    """Pair consecutive marks of the same block: (1st, 2nd), (3rd, 4th)...; a block's odd one out stays alone."""
    pairs = []
    open_at = open_block = -1
    for p, b in zip(positions.tolist(), blocks.tolist(), strict=True):
        if open_at >= 0 and open_block == b:
            pairs.append((open_at, p))
            open_at = -1
        else:
            open_at, open_block = p, b
    return pairs


def quotes(text: str) -> np.ndarray:
    """Inside quotes: from an opening quote up to its closing one (the closing one is outside).

    Double quotes pair within a paragraph (text between blank lines), single quotes within a
    line; a single quote between two letters or digits is an apostrophe (don't), not a
    quote. A quote with no partner marks nothing.
    """
    chars = _chars(text)
    n = len(chars)
    newline = chars == "\n"
    line = np.cumsum(newline)
    blank = np.zeros(n, bool)
    blank[1:] = newline[1:] & newline[:-1]
    paragraph = np.cumsum(blank)
    word = _word_chars(text)
    between = np.zeros(n, bool)
    between[1:-1] = word[:-2] & word[2:]
    spans = []
    for mark, blocks, keep in (('"', paragraph, np.ones(n, bool)), ("'", line, ~between)):
        at = np.flatnonzero((chars == mark) & keep)
        spans += _pairs(at, blocks[at])
    return _spans(n, spans)


BRACKETS_OPEN, BRACKETS_CLOSE = "([{", ")]}"


def bracket_depth(text: str) -> np.ndarray:
    """How many (, [ and { are open after each character; a closing one with none open is ignored."""
    chars = _chars(text)
    total = np.cumsum(np.isin(chars, list(BRACKETS_OPEN)).astype(np.int64) - np.isin(chars, list(BRACKETS_CLOSE)))
    if not len(total):
        return total.astype(np.float32)
    # A running sum that never goes below zero: the plain sum, less the lowest it has been.
    return (total - np.minimum(np.minimum.accumulate(total), 0)).astype(np.float32)


def line_start(text: str) -> np.ndarray:
    """Characters since the start of the line, this one included (0 on a newline: a new line starts)."""
    n = len(text)
    idx = np.arange(n)
    last_newline = np.maximum.accumulate(np.where(_chars(text) == "\n", idx, -1)) if n else idx
    return (idx - last_newline).astype(np.float32)


def line_end(text: str) -> np.ndarray:
    """Characters left before the end of the line (the newline not counted)."""
    n = len(text)
    idx = np.arange(n)
    at_or_after = np.minimum.accumulate(np.where(_chars(text) == "\n", idx, n)[::-1])[::-1]
    after = np.append(at_or_after[1:], n)  # the first newline strictly after each character
    return (after - idx - 1).astype(np.float32)


def indentation(text: str) -> np.ndarray:
    """Columns of the line's leading whitespace read so far (tabs count 4); 0 on a newline."""
    out = np.zeros(len(text), np.float32)
    start = 0
    for line in text.split("\n"):
        lead = len(line) - len(line.lstrip(" \t"))
        widths = np.cumsum([TAB if c == "\t" else 1 for c in line[:lead]], dtype=np.float32)
        out[start : start + lead] = widths
        out[start + lead : start + len(line)] = widths[-1] if lead else 0.0
        start += len(line) + 1
    return out


def code(text: str) -> np.ndarray:
    """Inside a comment or a string, as in Python: `# ...`, '...', "...", '''...''', \"\"\"...\"\"\".

    From the opening mark up to the closing one (which is outside); a backslash escapes the next
    character; a one-line string ends at the end of its line if nothing closes it.
    """
    n = len(text)
    spans = []
    i = 0
    while i < n:
        c = text[i]
        if c == "#":
            end = text.find("\n", i)
            end = n if end < 0 else end
            spans.append((i, end))
            i = end
        elif c in "\"'":
            delim = c * 3 if text.startswith(c * 3, i) else c
            j = i + len(delim)
            end = n
            while j < n:
                if text[j] == "\\":
                    j += 2
                elif text.startswith(delim, j):
                    end = j
                    j += len(delim)
                    break
                elif text[j] == "\n" and len(delim) == 1:
                    end = j
                    break
                else:
                    j += 1
            spans.append((i, min(end, n)))
            i = min(j, n)
        else:
            i += 1
    return _spans(n, spans)


def _word_chars(text: str) -> np.ndarray:
    return np.fromiter((c.isalnum() or c == "_" for c in text), bool, len(text))


def word_position(text: str) -> np.ndarray:
    """Position inside a word (letters, digits and _): 1 on its first character, 0 outside words."""
    word = _word_chars(text)
    idx = np.arange(len(text))
    last_break = np.maximum.accumulate(np.where(word, -1, idx)) if len(text) else idx
    return np.where(word, idx - last_break, 0).astype(np.float32)


SPEAKER = re.compile(r"^[A-Z][A-Za-z' .,-]{0,40}:$", re.MULTILINE)


def speaker(text: str) -> np.ndarray:
    """A speaker's line in a play, such as `ROMEO:` or `First Citizen:` (a capitalised name and a colon)."""
    return _spans(len(text), [m.span() for m in SPEAKER.finditer(text)])


@dataclass(frozen=True)
class Feature:
    name: str  # for JSON and the command line
    label: str  # for people
    compute: Callable[[str], np.ndarray]
    binary: bool  # 0/1; otherwise a count, which "holds" where it is above its median


FEATURES = (
    Feature("quotes", "in quotes", quotes, True),
    Feature("brackets", "bracket depth", bracket_depth, False),
    Feature("line_start", "since line start", line_start, False),
    Feature("line_end", "to line end", line_end, False),
    Feature("indent", "indentation", indentation, False),
    Feature("code", "comment/string", code, True),
    Feature("word", "word position", word_position, False),
    Feature("speaker", "speaker line", speaker, True),
)
FEATURE = {f.name: f for f in FEATURES}


def text_features(text: str) -> dict[str, np.ndarray]:
    """Every feature of `text`, one float32 value per character."""
    return {f.name: f.compute(text) for f in FEATURES}


def holds(feature: Feature, values: np.ndarray) -> tuple[np.ndarray, float]:
    """Where a feature holds: a binary one where it is 1, a count where it is above its median (the threshold)."""
    threshold = 0.0 if feature.binary or not len(values) else float(np.median(values))
    return values > threshold, threshold


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class CellScore:
    layer: int
    cell: int
    r: float

    def to_dict(self) -> dict:
        return {"layer": self.layer, "cell": self.cell, "r": round(self.r, 4)}


@dataclass(frozen=True)
class RankingRow:
    """One row of the cells ranking as the CLI and the neuron view lay it out."""

    feature: Feature
    cell: CellScore | None  # None: the text lacks the feature (its one row says so)
    first: bool  # the feature's first row, which names it (and, in `rnn-tui cells`, holds its ablation)


@dataclass(frozen=True)
class Ranking:
    """The cells that follow each feature best, by |r| over `chars` characters."""

    chars: int
    top: dict[str, list[CellScore]]  # feature name -> best first; empty for a feature the text lacks
    r: np.ndarray  # (features, layers, hidden): every cell's correlation with every feature

    def rows(self, per_feature: int | None = None) -> list[RankingRow]:
        """The ranking as a table: feature by feature, each one's best cells first (at most `per_feature`)."""
        rows = []
        for f in FEATURES:
            cells = self.top[f.name][:per_feature]
            rows += [RankingRow(f, c, i == 0) for i, c in enumerate(cells)] or [RankingRow(f, None, True)]
        return rows

    def best_feature(self, cell: Cell) -> tuple[Feature, float] | None:
        """The feature that a cell follows best, with its r (None when the text has none of them)."""
        rs = self.r[:, cell[0], cell[1]]
        if not np.any(rs):
            return None
        k = int(np.argmax(np.abs(rs)))
        return FEATURES[k], float(rs[k])


@dataclass(frozen=True)
class Effect:
    """How much the loss rises (bits per character) when `cell` is zeroed, where `feature` holds and elsewhere."""

    cell: Cell
    feature: str
    above: float  # the feature holds where its value is above this
    rise_holds: float | None  # None: no such characters
    rise_elsewhere: float | None
    chars_holds: int
    chars_elsewhere: int
    loss_holds: float | None  # the intact model's bits per character there
    loss_elsewhere: float | None

    def to_dict(self) -> dict:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 4)

        return {
            "layer": self.cell[0],
            "cell": self.cell[1],
            "above": self.above,
            "rise_holds": r(self.rise_holds),
            "rise_elsewhere": r(self.rise_elsewhere),
            "chars_holds": self.chars_holds,
            "chars_elsewhere": self.chars_elsewhere,
            "loss_holds": r(self.loss_holds),
            "loss_elsewhere": r(self.loss_elsewhere),
        }


# --------------------------------------------------------------------------- running the model


class Analysis:
    """One model and one text: find the cells that follow the text's features, and ablate them.

    `correlate()` and `ablate(cells)` are generators: iterate them to run the pass (they yield
    the fraction done after each chunk of steps); stop iterating to cancel.
    """

    def __init__(
        self,
        stepper: Stepper,
        vocab: Vocab,
        text: str,
        *,
        streams: int | None = None,
        burn_in: int = BURN_IN,
        chunk: int = CHUNK,
    ):
        if not text:
            raise UserError("there is no text to run the model over; give it some text")
        self.stepper, self.vocab, self.text = stepper, vocab, text
        self.chunk = chunk
        n = len(text)
        self.features = text_features(text)
        # seq = the start character (the text is read as if it followed a newline), then the text.
        seq = np.concatenate([[vocab.id("\n")], vocab.encode(text)]).astype(np.int64)
        m = n + 1
        if streams is None:  # at most one character in eight spent warming up
            streams = m // (8 * burn_in)
        self.streams = streams = max(1, min(streams, STREAMS, (m - 1) // (burn_in + 1)))
        self.burn_in = burn_in if streams > 1 else 0
        span = -(-(m - self.burn_in) // streams)  # counted rows per piece (the first piece counts its burn-in too)
        rows = span + self.burn_in
        # Piece j reads seq[j * span : j * span + rows] and counts its rows from burn_in on (piece 0: from 1).
        self.pos = np.arange(rows)[:, None] + span * np.arange(streams)[None, :]
        first = np.full(streams, self.burn_in)
        first[0] = 1
        self.counted = (np.arange(rows)[:, None] >= first[None, :]) & (self.pos < m)
        self.ids = np.where(self.pos < m, seq[np.minimum(self.pos, m - 1)], seq[0])
        self.known = seq[1:] != Vocab.UNK  # characters whose loss means something
        self.base_bits: np.ndarray | None = None  # the intact model's loss at each character
        self.ablated: dict[Cell, np.ndarray] = {}
        self._r: np.ndarray | None = None

    @property
    def chars(self) -> int:
        return len(self.text)

    @property
    def steps(self) -> int:
        return len(self.pos)

    def _pass(self, cells: Sequence[Cell | None], on_chunk: Callable | None = None) -> Iterator[float]:
        """Run every variant of the model in `cells` (None: intact) side by side; store each one's bits per char."""
        b = self.streams
        h = self.stepper.cfg.hidden
        zero: dict[int, tuple[list, list]] = {}
        for v, cell in enumerate(cells):
            if cell is not None:
                rows = self.stepper.unit_rows(cell[1])
                cols = np.arange(v * b, (v + 1) * b)
                r, c = zero.setdefault(cell[0], ([], []))
                r.append(np.repeat(rows, b))
                c.append(np.tile(cols, len(rows)))
        where = {layer: (np.concatenate(r), np.concatenate(c)) for layer, (r, c) in zero.items()}
        bits = [np.full(self.chars, np.nan, np.float32) for _ in cells]
        state = self.stepper.initial_columns(b * len(cells))
        rows = max(1, self.chunk // len(cells))  # the same memory per chunk, however many variants
        for r0 in range(0, self.steps, rows):
            r1 = min(r0 + rows, self.steps)
            logits, states = self.stepper.run_columns(np.tile(self.ids[r0:r1], (1, len(cells))), state, where)
            # The loss of the next row's character, from this row's prediction.
            nxt = min(r1 + 1, self.steps)
            target = np.tile(self.ids[r0 + 1 : nxt], (1, len(cells)))
            counted = self.counted[r0 + 1 : nxt]
            chars = self.pos[r0 + 1 : nxt][counted] - 1
            logp = log_softmax(mask_unknown(logits[: len(target)]))
            nats = -np.take_along_axis(logp, target[..., None], -1)[..., 0].reshape(len(target), len(cells), b)
            for v in range(len(cells)):
                bits[v][chars] = nats[:, v][counted] / LN2
            if on_chunk is not None:
                on_chunk(r0, r1, states[:, :b], h)
            yield r1 / self.steps
        for v, cell in enumerate(cells):
            bits[v][~self.known] = np.nan
            if cell is None:
                self.base_bits = bits[v]
            else:
                self.ablated[cell] = bits[v]

    def correlate(self) -> Iterator[float]:
        """Run the intact model over the text and correlate every cell with every feature."""
        names = [f.name for f in FEATURES]
        f = np.stack([self.features[k] for k in names], 1).astype(np.float64)
        f -= f.mean(0)
        var_f = (f * f).mean(0)
        f32 = f.astype(np.float32)
        cfg = self.stepper.cfg
        cells = cfg.layers * cfg.hidden
        s_a = np.zeros(cells)
        s_aa = np.zeros(cells)
        s_af = np.zeros((cells, len(names)))

        def accumulate(r0: int, r1: int, states: np.ndarray, h: int) -> None:
            counted = self.counted[r0:r1]
            a = self.stepper.kernel.shown(states, h)[counted].reshape(-1, cells)  # (n, layers * hidden)
            s_a[:] += a.sum(0, dtype=np.float64)
            s_aa[:] += np.einsum("ij,ij->j", a, a, dtype=np.float64)
            s_af[:] += a.T @ f32[self.pos[r0:r1][counted] - 1]

        yield from self._pass([None], accumulate)
        n = self.chars
        var_a = np.maximum(s_aa / n - (s_a / n) ** 2, 0.0)
        denom = np.sqrt(var_a[:, None] * var_f[None, :])
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(denom > 1e-12, (s_af / n) / denom, 0.0)
        self._r = np.clip(r, -1.0, 1.0).T.reshape(len(names), cfg.layers, cfg.hidden)

    def ranking(self, top: int = 5) -> Ranking:
        """The `top` cells per feature by |r|, best first (after `correlate`)."""
        if self._r is None:
            raise RuntimeError("run correlate() first")
        best = {}
        for k, feature in enumerate(FEATURES):
            flat = self._r[k].ravel()
            if not np.any(flat):  # the text lacks this feature (it never varies)
                best[feature.name] = []
                continue
            order = np.argsort(-np.abs(flat), kind="stable")[:top]
            h = self.stepper.cfg.hidden
            best[feature.name] = [CellScore(int(i // h), int(i % h), float(flat[i])) for i in order]
        return Ranking(self.chars, best, self._r)

    def ablate(self, cells: Sequence[Cell]) -> Iterator[float]:
        """Run the model with each of `cells` zeroed at every step (the intact one too, if not run yet)."""
        todo = [c for c in dict.fromkeys(cells) if c not in self.ablated]
        variants: list[Cell | None] = [*todo, *([None] if self.base_bits is None else [])]
        if variants:
            yield from self._pass(variants)

    def effect(self, cell: Cell, feature: str) -> Effect:
        """The loss rise from zeroing `cell`, where `feature` holds and elsewhere (after `ablate`)."""
        if cell not in self.ablated or self.base_bits is None:
            raise RuntimeError("run ablate() for this cell first")
        mask, above = holds(FEATURE[feature], self.features[feature])
        rise = self.ablated[cell] - self.base_bits
        known = self.known

        def mean(x: np.ndarray, m: np.ndarray) -> float | None:
            return float(x[m].mean()) if m.any() else None

        inside, outside = mask & known, ~mask & known
        return Effect(
            cell,
            feature,
            above,
            mean(rise, inside),
            mean(rise, outside),
            int(inside.sum()),
            int(outside.sum()),
            mean(self.base_bits, inside),
            mean(self.base_bits, outside),
        )


class Trace:
    """Every cell's activation at every character of a text, exactly as the playground reads it.

    `run()` yields the fraction done; afterwards `values` is (chars, layers, hidden), float16.
    """

    def __init__(self, stepper: Stepper, vocab: Vocab, text: str, chunk: int = TRACE_CHUNK):
        self.stepper, self.vocab, self.text, self.chunk = stepper, vocab, text, chunk
        cfg = stepper.cfg
        self.values = np.zeros((len(text), cfg.layers, cfg.hidden), np.float16)

    def run(self) -> Iterator[float]:
        ids = self.vocab.encode(self.text)
        _, state = self.stepper.step(self.vocab.id("\n"), self.stepper.initial_state())
        for a in range(0, len(ids), self.chunk):
            _, states = self.stepper.run(ids[a : a + self.chunk], state)
            self.values[a : a + len(states)] = self.stepper.kernel.shown(states, self.stepper.cfg.hidden)
            state = list(states[-1])
            yield min(1.0, (a + self.chunk) / len(ids))


# --------------------------------------------------------------------------- the text to analyse


def validation_text(run_dir: Path | str, chars: int) -> str:
    """The first `chars` characters of a run's validation text (the end of its corpus, as it trained)."""
    run_dir = Path(run_dir)
    corpus, _, val = run_corpus(run_dir, "give a text with --text FILE")
    if not len(val):
        raise UserError(f"the run {run_dir.name} has no validation text; give a text with --text FILE")
    return corpus.vocab.decode(val[:chars])
