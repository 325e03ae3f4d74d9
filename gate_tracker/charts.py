"""Trend charts of a gate, drawn with matplotlib's object-oriented API to PNG.

Every chart function takes plain series (``gate_tracker.report_charts`` builds
them) and returns a ``Figure`` bound to the Agg canvas; ``png_bytes`` turns it
into PNG bytes that are the same for the same input: fixed size and
resolution, and no date or software version in the file's metadata. No display
is needed and pyplot's global state is never touched.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import matplotlib.dates as mdates
import matplotlib.style
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Patch
from matplotlib.textpath import text_to_path
from matplotlib.ticker import MaxNLocator, PercentFormatter

# The Okabe-Ito palette, readable with every common colour-vision deficiency.
BLACK = "#000000"
ORANGE = "#E69F00"
SKY_BLUE = "#56B4E9"
GREEN = "#009E73"
YELLOW = "#F0E442"
BLUE = "#0072B2"
VERMILLION = "#D55E00"
PURPLE = "#CC79A7"
GREY = "#BBBBBB"
EMPTY = "#FFFFFF"

FIGURE_SIZE_IN = (10.0, 4.5)
DPI = 100
"""Every chart is 1000 by 450 pixels (the outcome grid grows with its rows)."""

LABEL_LIMIT = 60
"""Test ids longer than this are shortened from the left in chart labels."""

MAX_POINTS = 1500
"""Above this many runs the streak chart shows each day's longest streak."""

MARKER_LIMIT = 60
"""Up to this many runs the streak chart marks each run."""

# Margins around the axes, in inches: the title above, tick labels and the
# axis label below and on the left.
_TOP_IN = 0.45
_BOTTOM_IN = 0.65
_LEFT_IN = 0.85
_RIGHT_IN = 0.3
_LABEL_GAP_IN = 0.3
_GRID_BOTTOM_IN = 1.05
PNG_COMPRESSION = 3
"""zlib level of the PNGs: nearly as small as the default 6, and faster."""

# Cell codes of the outcome grid, in legend order, with their colours.
GRID_CELLS = (
    ("passed", "passed", GREEN),
    ("rerun", "passed on rerun", ORANGE),
    ("failed", "failed or error", VERMILLION),
    ("skipped", "skipped", SKY_BLUE),
    ("absent", "not run", EMPTY),
)

# Only the Software key is written by default; None drops it, and no
# creation time is ever added, so the bytes depend on the drawing alone.
_PNG_METADATA: dict[str, str | None] = {"Software": None}


@dataclass(frozen=True)
class RateBin:
    """The runs of one day or week and how many passed, with 95% intervals."""

    start: datetime
    runs: int
    clean: int
    green: int
    clean_interval: tuple[float, float]
    green_interval: tuple[float, float]


@dataclass(frozen=True)
class StreakPoint:
    """The strict and CI streaks right after one run."""

    at: datetime
    strict: int
    ci: int


@dataclass(frozen=True)
class DurationBin:
    """Gate run durations of one day or week: median and 95th percentile."""

    start: datetime
    runs: int
    median_s: float
    p95_s: float


@dataclass(frozen=True)
class FlakyImpact:
    """One flaky test's cost: runs it failed, and runs it passed only on rerun.

    ``impact`` is the analysis's share of the unclean trials, written at the
    end of the bar: it ranks the tests, which the bar lengths alone do not.
    """

    test_id: str
    failed_runs: int
    rerun_passes: int
    impact: float = 0.0


@dataclass(frozen=True)
class OutcomeGrid:
    """Outcomes of some tests over some runs; ``cells[test][run]`` is a code.

    Codes are the first items of ``GRID_CELLS``; ``runs`` are the runs' start
    times, oldest first.
    """

    tests: Sequence[str]
    runs: Sequence[datetime]
    cells: Sequence[Sequence[str]]


def png_bytes(figure: Figure) -> bytes:
    """``figure`` as PNG bytes, identical for identical drawings."""
    buffer = io.BytesIO()
    with matplotlib.style.context("default"):
        figure.savefig(
            buffer,
            format="png",
            dpi=DPI,
            metadata=_PNG_METADATA,
            pil_kwargs={"compress_level": PNG_COMPRESSION},
        )
    return buffer.getvalue()


def pass_rate_chart(bins: Sequence[RateBin], *, gate: str, per: str) -> Figure:
    """Clean-pass and CI-green rates per ``per`` ("day" or "week"), with bands."""
    figure, ax = _new_figure()
    starts = _x([b.start for b in bins])

    # The CI rate is drawn first: it is never below the clean rate.
    green = [(b.green / b.runs, *b.green_interval) for b in bins]
    clean = [(b.clean / b.runs, *b.clean_interval) for b in bins]
    _rate_line(ax, starts, green, label="CI green (reruns allowed)", colour=ORANGE)
    _rate_line(ax, starts, clean, label="clean pass (first attempt)", colour=BLUE)

    _title(ax, f"{gate}: pass rate per {per}")
    ax.set_ylabel(f"runs passing per {per} (%)")
    ax.set_ylim(-0.02, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    _date_axis(ax, starts)
    ax.legend(loc="lower left", fontsize="small", framealpha=0.9)
    return figure


def streak_chart(points: Sequence[StreakPoint], *, gate: str, required: int) -> Figure:
    """The strict and CI streaks after every run, against the required line.

    With more than ``MAX_POINTS`` runs each day is drawn as its longest
    streaks, which keeps the peaks that matter against the line.
    """
    figure, ax = _new_figure()
    shown = list(points)
    note = "after each run"
    if len(shown) > MAX_POINTS:
        shown = _daily_peaks(shown)
        note = "longest of each day"

    times = _x([p.at for p in shown])
    # Few runs are drawn with markers, or a lone last step would not show.
    marker = "o" if len(shown) <= MARKER_LIMIT else None
    ax.step(
        times,
        [p.ci for p in shown],
        where="post",
        color=ORANGE,
        linewidth=1.2,
        marker=marker,
        markersize=6,
        label="CI streak (reruns allowed)",
    )
    ax.step(
        times,
        [p.strict for p in shown],
        where="post",
        color=BLUE,
        linewidth=1.8,
        marker=marker,
        markersize=3,
        label="strict streak (clean passes)",
    )
    ax.axhline(
        required,
        color=VERMILLION,
        linestyle="--",
        linewidth=1.4,
        label=f"required: {required}",
    )

    _title(ax, f"{gate}: consecutive passing runs ({note})")
    ax.set_ylabel("streak (runs)")
    peak = max([required, *(p.ci for p in shown)])
    ax.set_ylim(0, peak * 1.1 + 1)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _date_axis(ax, times)
    ax.legend(loc="upper left", fontsize="small", framealpha=0.9)
    return figure


def duration_chart(bins: Sequence[DurationBin], *, gate: str, per: str) -> Figure:
    """Median and 95th-percentile gate run duration per ``per``, in minutes."""
    figure, ax = _new_figure()
    starts = _x([b.start for b in bins])

    ax.plot(
        starts,
        [b.p95_s / 60 for b in bins],
        color=VERMILLION,
        marker="^",
        markersize=4,
        linewidth=1.4,
        label="95th percentile",
    )
    ax.plot(
        starts,
        [b.median_s / 60 for b in bins],
        color=BLUE,
        marker="o",
        markersize=4,
        linewidth=1.8,
        label="median",
    )

    _title(ax, f"{gate}: gate run duration per {per}")
    ax.set_ylabel("duration (minutes)")
    ax.set_ylim(bottom=0, top=max((b.p95_s for b in bins), default=60) / 60 * 1.15)
    _date_axis(ax, starts)
    ax.legend(loc="lower left", fontsize="small", framealpha=0.9)
    return figure


def flaky_impact_chart(items: Sequence[FlakyImpact], *, gate: str) -> Figure:
    """Horizontal bars, worst first: the runs each flaky test failed or rescued."""
    labels = [chart_label(i.test_id) for i in items]
    height = max(FIGURE_SIZE_IN[1], 1.4 + 0.38 * len(items))
    figure, ax = _new_figure(height=height, left_in=_label_margin(labels))
    rows = list(range(len(items)))

    failed = [i.failed_runs for i in items]
    ax.barh(rows, failed, color=VERMILLION, label="runs it failed")
    ax.barh(
        rows,
        [i.rerun_passes for i in items],
        left=failed,
        color=ORANGE,
        hatch="//",
        edgecolor="white",
        label="runs it passed only on rerun",
    )

    ax.set_yticks(rows, labels, fontsize="small")
    ax.invert_yaxis()
    _title(ax, f"{gate}: flaky tests by impact on the streak")
    ax.set_xlabel("runs in the window (runs); impact: unclean trials it caused")
    widest = max((i.failed_runs + i.rerun_passes for i in items), default=1)
    ax.set_xlim(0, widest * 1.18 + 0.8)
    for row, item in zip(rows, items, strict=True):
        end = item.failed_runs + item.rerun_passes
        ax.text(
            end + widest * 0.015,
            row,
            f"impact {item.impact:.1f}",
            va="center",
            fontsize="small",
            color=BLACK,
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(axis="y", visible=False)
    ax.legend(loc="lower right", fontsize="small", framealpha=0.9)
    return figure


def outcome_grid_chart(grid: OutcomeGrid, *, gate: str) -> Figure:
    """One row per test, one column per run, each cell coloured by outcome."""
    labels = [chart_label(t) for t in grid.tests]
    height = max(FIGURE_SIZE_IN[1], 2.2 + 0.38 * len(grid.tests))
    figure, ax = _new_figure(
        height=height, left_in=_label_margin(labels), bottom_in=_GRID_BOTTOM_IN
    )
    codes = [code for code, _, _ in GRID_CELLS]
    values = [[codes.index(cell) for cell in row] for row in grid.cells]
    colours = ListedColormap([colour for _, _, colour in GRID_CELLS])

    ax.imshow(
        values,
        cmap=colours,
        vmin=0,
        vmax=len(codes) - 1,
        aspect="auto",
        interpolation="nearest",
    )
    ax.set_yticks(range(len(grid.tests)), labels, fontsize="small")
    _run_ticks(ax, grid.runs)
    _cell_edges(ax, len(grid.tests), len(grid.runs))

    _title(
        ax, f"{gate}: outcomes of the top flaky tests in the last {len(grid.runs)} runs"
    )
    ax.set_xlabel("run (start date, oldest left)")
    handles = [
        Patch(facecolor=colour, edgecolor=GREY, label=label)
        for _, label, colour in GRID_CELLS
    ]
    figure.legend(
        handles=handles,
        loc="lower left",
        bbox_to_anchor=(ax.get_position().x0, 0.08 / height),
        ncol=len(handles),
        fontsize="small",
        frameon=False,
    )
    return figure


def chart_label(test_id: str) -> str:
    """``test_id`` fit for a chart: shortened from the left, ``$`` kept literal."""
    if len(test_id) > LABEL_LIMIT:
        test_id = "…" + test_id[-(LABEL_LIMIT - 1) :]
    # A "$" would start matplotlib's math mode and garble or reject the label.
    return test_id.replace("$", r"\$")


def _new_figure(
    *,
    height: float = FIGURE_SIZE_IN[1],
    left_in: float = _LEFT_IN,
    bottom_in: float = _BOTTOM_IN,
) -> tuple[Figure, Axes]:
    # Fixed margins, in inches, instead of a layout engine: the engine would
    # measure every text a second time, and a report draws five charts.
    width = FIGURE_SIZE_IN[0]
    with matplotlib.style.context("default"):
        figure = Figure(figsize=(width, height), dpi=DPI)
        FigureCanvasAgg(figure)
        figure.subplots_adjust(
            left=left_in / width,
            right=1 - _RIGHT_IN / width,
            top=1 - _TOP_IN / height,
            bottom=bottom_in / height,
        )
        ax = figure.add_subplot()
    ax.grid(True, color="#DDDDDD", linewidth=0.8)
    ax.set_axisbelow(True)
    return figure, ax


def _title(ax: Axes, text: str) -> None:
    # A title placed at a fixed height spares matplotlib from measuring every
    # tick label to move it clear of them, which no chart here needs.
    ax.set_title(text, y=1.0, pad=8)


def _label_margin(labels: Sequence[str]) -> float:
    """Inches left of the axes for the widest of ``labels`` in small type."""
    with matplotlib.style.context("default"):
        prop = FontProperties(size="small")
        widths = [
            text_to_path.get_text_width_height_descent(label, prop, ismath=False)[0]
            for label in labels
        ]
    # Rendered text runs a few per cent wider than its outline measures.
    return max(widths, default=0.0) * 1.05 / 72 + _LABEL_GAP_IN


def _rate_line(
    ax: Axes,
    starts: np.ndarray,
    rates: Sequence[tuple[float, float, float]],
    *,
    label: str,
    colour: str,
) -> None:
    middle = [rate for rate, _, _ in rates]
    low = [low for _, low, _ in rates]
    high = [high for _, _, high in rates]

    # One bin has no width to shade: show its interval as an error bar.
    if len(starts) == 1:
        error = [[middle[0] - low[0]], [high[0] - middle[0]]]
        ax.errorbar(starts, middle, yerr=error, color=colour, capsize=6)
    else:
        ax.fill_between(starts, low, high, color=colour, alpha=0.18, linewidth=0)

    ax.plot(
        starts,
        middle,
        color=colour,
        marker="o",
        markersize=4,
        linewidth=1.6,
        label=f"{label}, with 95% interval",
    )


def _x(times: Sequence[datetime]) -> np.ndarray:
    # Naive UTC datetime64 values: matplotlib's date axis reads them directly,
    # and numpy would warn about the time zone of aware datetimes.
    naive = [t.astimezone(timezone.utc).replace(tzinfo=None) for t in times]
    return np.array(naive, dtype="datetime64[us]")


def _date_axis(ax: Axes, times: np.ndarray) -> None:
    # matplotlib.dates has no type annotations for these three calls.
    utc = timezone.utc
    locator = mdates.AutoDateLocator(tz=utc, maxticks=10)  # type: ignore[no-untyped-call]
    formatter = mdates.ConciseDateFormatter(locator, tz=utc)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(formatter)
    ax.set_xlabel("date (UTC)")
    if len(times) == 1:
        # A single point gets a day either side, not matplotlib's default span.
        day = np.timedelta64(1, "D")
        low = mdates.date2num(times[0] - day)  # type: ignore[no-untyped-call]
        high = mdates.date2num(times[0] + day)  # type: ignore[no-untyped-call]
        ax.set_xlim(low, high)


def _daily_peaks(points: Sequence[StreakPoint]) -> list[StreakPoint]:
    peaks: dict[datetime, StreakPoint] = {}
    for point in points:
        day = point.at.astimezone(timezone.utc).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        best = peaks.get(day)
        if best is None:
            peaks[day] = StreakPoint(day, point.strict, point.ci)
        else:
            peaks[day] = StreakPoint(
                day, max(best.strict, point.strict), max(best.ci, point.ci)
            )
    return [peaks[day] for day in sorted(peaks)]


def _run_ticks(ax: Axes, runs: Sequence[datetime]) -> None:
    if not runs:
        return
    step = max(1, len(runs) // 8)
    positions = list(range(0, len(runs), step))
    ax.set_xticks(
        positions, [runs[i].strftime("%b %d") for i in positions], fontsize="small"
    )


def _cell_edges(ax: Axes, rows: int, columns: int) -> None:
    # Thin white lines between cells keep neighbouring runs apart; two line
    # collections cost far less than a minor tick per cell.
    ax.vlines(
        [c - 0.5 for c in range(1, columns)],
        -0.5,
        rows - 0.5,
        color="white",
        linewidth=0.6,
    )
    ax.hlines(
        [r - 0.5 for r in range(1, rows)],
        -0.5,
        columns - 0.5,
        color="white",
        linewidth=0.6,
    )
    ax.grid(False)
