"""Tests of the trend charts: content, labels, palette and byte-stable PNGs."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone

import matplotlib.colors as mcolors
import pytest
from matplotlib.figure import Figure

from gate_tracker import charts
from gate_tracker.charts import (
    DurationBin,
    FlakyImpact,
    OutcomeGrid,
    RateBin,
    StreakPoint,
)

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
OKABE_ITO = {
    charts.BLACK,
    charts.ORANGE,
    charts.SKY_BLUE,
    charts.GREEN,
    charts.YELLOW,
    charts.BLUE,
    charts.VERMILLION,
    charts.PURPLE,
}


def _rate_bins(count: int) -> list[RateBin]:
    return [
        RateBin(
            start=T0 + timedelta(days=day),
            runs=10,
            clean=7 + day % 3,
            green=9,
            clean_interval=(0.5, 0.95),
            green_interval=(0.6, 0.99),
        )
        for day in range(count)
    ]


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        chunks.append((kind, data[offset + 8 : offset + 8 + length]))
        offset += 12 + length
    return chunks


def _legend_texts(figure: Figure) -> list[str]:
    legend = figure.axes[0].get_legend() or (figure.legends or [None])[0]
    assert legend is not None
    return [text.get_text() for text in legend.get_texts()]


def _hex(colour: object) -> str:
    return mcolors.to_hex(colour).upper()  # type: ignore[arg-type]


def test_the_same_chart_gives_the_same_png_bytes_without_metadata() -> None:
    first = charts.png_bytes(charts.pass_rate_chart(_rate_bins(5), gate="g", per="day"))
    second = charts.png_bytes(
        charts.pass_rate_chart(_rate_bins(5), gate="g", per="day")
    )

    chunks = _png_chunks(first)
    width, height = struct.unpack(">II", chunks[0][1][:8])

    assert first == second
    assert (width, height) == (1000, 450)
    assert not [kind for kind, _ in chunks if kind in (b"tEXt", b"iTXt", b"zTXt")]
    assert b"matplotlib" not in first
    assert b"Creation Time" not in first


def test_pass_rate_chart_is_titled_labelled_and_shades_the_interval() -> None:
    figure = charts.pass_rate_chart(_rate_bins(4), gate="e2e-gate", per="day")
    ax = figure.axes[0]

    clean_line = ax.lines[1]
    band = ax.collections[1]

    assert ax.get_title() == "e2e-gate: pass rate per day"
    assert ax.get_ylabel() == "runs passing per day (%)"
    assert ax.get_xlabel() == "date (UTC)"
    assert list(clean_line.get_ydata()) == pytest.approx([0.7, 0.8, 0.9, 0.7])
    assert _hex(clean_line.get_color()) == charts.BLUE
    assert band.get_paths()[0].vertices[:, 1].min() == pytest.approx(0.5)
    assert _legend_texts(figure) == [
        "CI green (reruns allowed), with 95% interval",
        "clean pass (first attempt), with 95% interval",
    ]


def test_pass_rate_chart_of_one_bin_shows_the_interval_as_an_error_bar() -> None:
    figure = charts.pass_rate_chart(_rate_bins(1), gate="g", per="week")
    ax = figure.axes[0]

    bars = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    low, high = ax.get_xlim()

    assert len(bars) == 2
    assert not [
        c for c in ax.collections if type(c).__name__ == "FillBetweenPolyCollection"
    ]
    assert high - low == pytest.approx(2.0)


def test_streak_chart_draws_every_run_against_the_required_line() -> None:
    points = [StreakPoint(T0 + timedelta(hours=h), h % 4, h % 6) for h in range(12)]

    figure = charts.streak_chart(points, gate="e2e-gate", required=20)
    ax = figure.axes[0]
    ci_line, strict_line, required_line = ax.lines

    assert ax.get_title() == "e2e-gate: consecutive passing runs (after each run)"
    assert list(strict_line.get_ydata()) == [h % 4 for h in range(12)]
    assert list(ci_line.get_ydata()) == [h % 6 for h in range(12)]
    assert list(required_line.get_ydata()) == [20, 20]
    assert strict_line.get_marker() == "o"
    assert ax.get_ylim()[1] > 20
    assert _legend_texts(figure)[-1] == "required: 20"


def test_streak_chart_of_many_runs_keeps_each_days_longest_streak() -> None:
    # 2,400 runs, 100 a day: the streak climbs within each day and resets.
    points = [
        StreakPoint(T0 + timedelta(minutes=14 * i), i % 100, i % 100 + 1)
        for i in range(2400)
    ]

    ax = charts.streak_chart(points, gate="g", required=20).axes[0]
    ci_line, strict_line, _ = ax.lines

    assert "longest of each day" in ax.get_title()
    assert len(strict_line.get_xdata()) == 24
    assert max(strict_line.get_ydata()) == 99
    assert max(ci_line.get_ydata()) == 100


def test_duration_chart_plots_minutes_for_median_and_95th_percentile() -> None:
    bins = [
        DurationBin(T0 + timedelta(weeks=w), 30, 600.0 + w * 60, 900.0 + w * 60)
        for w in range(3)
    ]

    ax = charts.duration_chart(bins, gate="g", per="week").axes[0]
    p95, median = ax.lines

    assert ax.get_ylabel() == "duration (minutes)"
    assert list(median.get_ydata()) == pytest.approx([10.0, 11.0, 12.0])
    assert list(p95.get_ydata()) == pytest.approx([15.0, 16.0, 17.0])
    assert ax.get_ylim()[1] > 17.0


def test_flaky_impact_chart_stacks_failed_and_rerun_runs_worst_on_top() -> None:
    items = [
        FlakyImpact("tests/test_pay.py::test_card[$10]", 5, 2, 4.5),
        FlakyImpact("tests/test_cart.py::test_add", 3, 0, 1.25),
    ]

    ax = charts.flaky_impact_chart(items, gate="g").axes[0]
    failed = [patch.get_width() for patch in ax.containers[0]]
    rerun = [patch.get_width() for patch in ax.containers[1]]
    labels = [tick.get_text() for tick in ax.get_yticklabels()]

    assert failed == [5, 3]
    assert rerun == [2, 0]
    assert labels == [
        r"tests/test_pay.py::test_card[\$10]",
        "tests/test_cart.py::test_add",
    ]
    assert [t.get_text() for t in ax.texts] == ["impact 4.5", "impact 1.2"]
    assert ax.yaxis_inverted()
    assert _hex(ax.containers[0][0].get_facecolor()) == charts.VERMILLION


def test_outcome_grid_colours_each_cell_by_its_outcome() -> None:
    grid = OutcomeGrid(
        tests=["t::a", "t::b"],
        runs=[T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)],
        cells=[["passed", "rerun", "failed"], ["absent", "skipped", "passed"]],
    )

    figure = charts.outcome_grid_chart(grid, gate="g")
    ax = figure.axes[0]
    image = ax.images[0]
    rgba = image.cmap(image.norm(image.get_array()))

    assert [[_hex(cell) for cell in row] for row in rgba] == [
        [charts.GREEN, charts.ORANGE, charts.VERMILLION],
        [charts.EMPTY, charts.SKY_BLUE, charts.GREEN],
    ]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["t::a", "t::b"]
    assert _legend_texts(figure) == [label for _, label, _ in charts.GRID_CELLS]


def test_every_chart_uses_only_the_colour_blind_safe_palette() -> None:
    grid = OutcomeGrid(["t"], [T0], [["passed"]])
    figures = [
        charts.pass_rate_chart(_rate_bins(3), gate="g", per="day"),
        charts.streak_chart([StreakPoint(T0, 1, 1)], gate="g", required=3),
        charts.duration_chart([DurationBin(T0, 1, 60.0, 60.0)], gate="g", per="day"),
        charts.flaky_impact_chart([FlakyImpact("t", 1, 1)], gate="g"),
    ]

    colours = {_hex(line.get_color()) for f in figures for line in f.axes[0].lines}
    colours |= {_hex(c) for _, _, c in charts.GRID_CELLS if c != charts.EMPTY}
    figures.append(charts.outcome_grid_chart(grid, gate="g"))

    assert colours <= OKABE_ITO


def test_chart_label_shortens_long_ids_from_the_left() -> None:
    long_id = "tests/e2e/" + "deep/" * 20 + "test_checkout.py::test_pay"

    label = charts.chart_label(long_id)

    assert len(label) == charts.LABEL_LIMIT
    assert label.startswith("…")
    assert label.endswith("test_checkout.py::test_pay")
