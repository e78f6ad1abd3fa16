"""The live view: the loss chart's smoothing, scale, zoom, cursor and x axis, and the system line."""

import itertools
import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from textual import events

from rnn_tui import record
from rnn_tui.events import Progress
from rnn_tui.session import WatchSession
from rnn_tui.tui.app import RnnTuiApp
from rnn_tui.tui.widgets.plot import nice_ticks, tick_labels
from rnn_tui.tui.widgets.training import loss_chart
from rnn_tui.tui.widgets.training.loss_chart import LossChart, ema, robust_range
from rnn_tui.tui.widgets.training.stats import TrainingStats, system_line
from tests.conftest import until
from tests.fakes import FakeSession, make_run
from tests.helpers import SIZE

# ---------------------------------------------------------------- the figures


def test_ema_is_debiased_as_tensorboard_smooths():
    # weight 0.5: 0.5·1 = 0.5, /(1-0.5) = 1; 0.25 + 1 = 1.25, /(1-0.25); 0.625 + 1.5 = 2.125, /(1-0.125)
    assert ema([1.0, 2.0, 3.0], 0.5) == pytest.approx([1.0, 1.25 / 0.75, 2.125 / 0.875])
    assert ema([4.0, 4.0, 4.0], 0.99) == pytest.approx([4.0, 4.0, 4.0])  # no pull towards zero at the start
    assert ema([1.0, 2.0], 0.0) == [1.0, 2.0]
    smoothed = ema([1.0, math.nan, 3.0], 0.5)
    assert smoothed[0] == 1.0 and math.isnan(smoothed[1])
    assert smoothed[2] == pytest.approx(1.75 / 0.75)  # 0.25 + 1.5, two points in


def test_one_diverged_step_does_not_flatten_the_curve():
    losses = [3.0 - 1.5 * k / 99 for k in range(100)]  # 3.0 down to 1.5
    assert robust_range([losses]) == pytest.approx((1.5 - 0.075, 3.0 + 0.075))
    assert robust_range([[*losses[:50], 40.0, *losses[50:]]]) == pytest.approx((1.425, 3.075))  # a spike: left out
    assert robust_range([[*losses, 40.0]]) == pytest.approx((1.425, 3.075))  # the newest point too
    assert robust_range([losses, [2.0, 2.1, 55.0, 2.0, 1.9]]) == pytest.approx((1.425, 3.075))  # in any curve
    assert robust_range([[2.0, 2.0]]) == pytest.approx((1.9, 2.1))  # a flat curve still has a range
    assert robust_range([[math.inf, math.nan]]) is None


def test_a_steep_start_is_not_an_outlier():
    start = [5.0, 4.2, 3.5, 3.0, 2.6, 2.3, 2.1, 2.0]  # each point near its neighbours
    flat = [1.9 - 0.001 * k for k in range(200)]  # a long flat tail: the quartiles are all down here
    assert robust_range([start + flat]) == pytest.approx((1.701 - 0.16495, 5.0 + 0.16495))


def chart_with(train: list[tuple[int, float]], val: list[tuple[int, float]]) -> LossChart:
    chart = LossChart()
    for step, loss in train:
        chart.add("train", step, loss, seconds=step * 0.5, chars=step * 128)
    for step, loss in val:
        chart.add("val", step, loss, seconds=step * 0.5)
    return chart


@given(
    st.floats(-1e9, 1e9, allow_nan=False),
    st.floats(1e-6, 1e9, allow_nan=False),
    st.integers(2, 8),
)
def test_ticks_are_round_evenly_spaced_inside_the_range_and_labelled_apart(lo, width, most):
    assume(width >= 1e-4 * max(1.0, abs(lo)))  # an axis spans more than float rounding
    hi = lo + width
    ticks = nice_ticks(lo, hi, most)
    assert 1 <= len(ticks) <= most
    slack = 1e-9 * max(width, abs(lo), abs(hi))  # float rounding, as a share of the axis
    assert all(lo - slack <= t <= hi + slack for t in ticks)
    if len(ticks) > 1:
        gap = ticks[1] - ticks[0]
        mantissa = gap / 10 ** math.floor(math.log10(gap))
        assert min(abs(mantissa - m) for m in (1, 2, 5, 10)) < 1e-6  # 1, 2 or 5 times a power of ten
        assert all(abs((b - a) - gap) <= 1e-6 * gap for a, b in itertools.pairwise(ticks))
        assert len(set(tick_labels(ticks))) == len(ticks)  # no two ticks read the same


def test_tick_labels_read_like_a_dashboards():
    assert tick_labels(nice_ticks(10, 500)) == ["100", "200", "300", "400", "500"]
    assert tick_labels(nice_ticks(1.401, 1.452, 5)) == ["1.41", "1.42", "1.43", "1.44", "1.45"]
    assert tick_labels(nice_ticks(3, 250_000, 5)) == ["50k", "100k", "150k", "200k", "250k"]
    assert tick_labels(nice_ticks(0, 5000)) == ["0", "1,000", "2,000", "3,000", "4,000", "5,000"]
    assert tick_labels(nice_ticks(1.4119, 1.4119)) == ["1.412"]  # a single point keeps its digits


def test_the_readout_gives_the_step_the_loss_its_smoothing_and_the_last_validation():
    chart = chart_with([(10, 3.0), (20, 2.0), (30, 1.0)], [(20, 2.5)])
    chart.smoothing = 0.5
    assert chart.readout() == f"step 30: 1.0000 (smoothed {(0.875 + 0.5) / 0.875:.4f}) · val 2.5000 @ 20"
    chart.cursor = 14  # the nearest point
    assert chart.readout() == "step 10: 3.0000 (smoothed 3.0000)"
    chart.cursor = 16
    assert chart.readout().startswith("step 20: 2.0000 (smoothed 2.3333) · val 2.5000 @ 20")


def test_the_x_axis_is_steps_minutes_or_millions_of_characters():
    chart = chart_with([(100, 3.0), (200, 2.0)], [(200, 2.1)])
    assert chart.x_of(200) == 200
    chart.axis = "time"
    assert chart.x_of(200) == pytest.approx(100 / 60)
    chart.axis = "chars"
    assert chart.x_of(200) == pytest.approx(200 * 128 / 1e6)  # the evaluation kept its progress point's count
    chart.add("val", 210, 2.05, seconds=106.0)  # a final evaluation after the last progress point
    assert chart.x_of(210) == pytest.approx(210 * 128 / 1e6)  # at the last count's rate
    chart.axis = "time"
    assert chart.x_of(210) == pytest.approx(106 / 60)
    chart.axis = "chars"
    assert chart.axes() == ("step", "time", "chars")


def test_an_older_record_without_character_counts_offers_steps_and_time():
    chart = LossChart()
    chart.add("train", 100, 3.0, seconds=50.0)  # a progress event from before `chars` was counted
    assert chart.axes() == ("step", "time")  # x cycles through these only
    assert LossChart().axes() == ("step",)  # nothing yet


# ---------------------------------------------------------------- the keys and the mouse


async def test_the_charts_keys_and_wheel(settled):
    app = RnnTuiApp(FakeSession())
    async with settled(app) as pilot:
        chart = app.query_one(LossChart)
        chart.focus()
        steps = [s for s, _ in chart.train]
        assert chart.smoothing == loss_chart.SMOOTHING and chart.plt  # drawn
        await pilot.press("greater_than_sign")
        assert chart.smoothing == 0.8
        await pilot.press("less_than_sign", "less_than_sign")
        assert chart.smoothing == 0.3
        await pilot.press("l")
        assert chart.log_y and "log y" in chart.settings()
        await pilot.press("x")
        assert chart.axis == "time" and chart.settings().startswith("minutes ·")
        await pilot.press("x")  # the scripted run's progress has no character counts: back to steps
        assert chart.axis == "step"
        await pilot.press("left")
        assert chart.cursor == steps[-2] and chart.readout().startswith(f"step {steps[-2]:,}: ")
        await pilot.press("shift+left")
        assert chart.cursor == steps[-12]
        await pilot.press("plus")
        lo, hi = chart.view
        assert steps[0] < lo < chart.cursor < hi < steps[-1]
        assert (hi - lo) == pytest.approx((steps[-1] - steps[0]) / 2, abs=2)
        await pilot.press("minus")
        assert chart.view is None  # back to the whole run
        await pilot.press("end")
        assert chart.cursor is None
        wheel = events.MouseScrollUp(chart, chart.size.width - 2, 5, 0, -1, 0, False, False, False)
        chart.post_message(wheel)  # the wheel zooms in around the mouse
        await pilot.pause()
        assert chart.view is not None and chart.view[1] == steps[-1]
        await pilot.press("0")
        assert chart.view is None and chart.cursor is None
        await pilot.click(LossChart, offset=(chart.size.width // 2, 5))  # a click puts the cursor there
        assert chart.cursor is not None and steps[0] < chart.cursor < steps[-1]


# ---------------------------------------------------------------- the system line


def progress(**system) -> Progress:
    return Progress(500, 1, 2.0, 1e-3, 5000.0, 60.0, **system)


def test_the_system_line():
    assert system_line(None, 181.4) == "trainer —   app 181 MB"
    p = progress(cpu_percent=185.2, threads=3, rss_mb=412.0)
    assert system_line(p, 180.0) == "trainer cpu 185% · 3 threads · 412 MB   app 180 MB"
    p = progress(cpu_percent=99.0, threads=9, rss_mb=20_480.0, gpu_percent=87.0, gpu_mem_mb=2310.0)
    assert system_line(p, None) == "trainer cpu 99% · 9 threads · 20.0 GB   app —   gpu 87% · 2,310 MB"
    assert system_line(progress(gpu_mem_mb=512.0), 1.0).endswith("gpu —% · 512 MB")  # no utilisation reported


async def test_watch_shows_the_trainers_system_figures_from_the_record(tmp_path):
    run = make_run(tmp_path, "watched", steps=500)
    writer = record.Writer(run, resume_step=500)
    writer(Progress(510, 0, 1.5, 1e-3, 9000.0, 400.0, chars=65_280, cpu_percent=150.0, threads=3, rss_mb=420.0))
    writer.close()
    app = RnnTuiApp(WatchSession(run, interval=0.05), checkpoint_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        stats = app.query_one(TrainingStats)
        shown = lambda: str(stats.query_one("#system").render())  # noqa: E731
        await until(pilot, lambda: "trainer cpu 150% · 3 threads · 420 MB" in shown(), "the system line")
        assert "app " in shown() and "MB" in shown().split("app ")[1]
