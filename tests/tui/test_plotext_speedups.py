"""The console's drop-ins for plotext's hd_group and get_lines give what plotext's own give."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from plotext import _utility
from plotext._matrix import matrix_class
from textual_plotext.plot import Plot

from orchestry_tui.console.widgets import plotext_speedups as fast


@contextmanager
def plotext_own() -> Iterator[None]:
    """plotext's own helpers for a while, whatever was installed."""
    kept = _utility.hd_group, _utility.get_lines
    kept_matrix = matrix_class.set_canvas, matrix_class.set_matrices
    _utility.hd_group, _utility.get_lines = fast.ORIGINAL_HD_GROUP, fast.ORIGINAL_GET_LINES
    matrix_class.set_canvas = fast.ORIGINAL_SET_CANVAS  # type: ignore[method-assign]
    matrix_class.set_matrices = fast.ORIGINAL_SET_MATRICES  # type: ignore[method-assign]
    try:
        yield
    finally:
        _utility.hd_group, _utility.get_lines = kept
        matrix_class.set_canvas, matrix_class.set_matrices = kept_matrix  # type: ignore[method-assign]


def dots(rng: random.Random, count: int, spread: int) -> list[int]:
    return [rng.randint(-spread, spread) for _ in range(count)]


@pytest.mark.parametrize("seed", range(40))
def test_get_lines_gives_plotexts_dots(seed: int) -> None:
    rng = random.Random(seed)
    count = rng.choice([0, 1, 2, 3, 10, 150])
    x, y = dots(rng, count, rng.choice([1, 5, 200])), dots(rng, count, rng.choice([1, 5, 60]))
    if seed % 5 == 0 and count:  # runs of one dot
        x[count // 2 :] = [x[0]] * (count - count // 2)
    other = [[rng.choice(["braille", "hd", "dot"]) for _ in x], list(range(count)), [None] * count]
    assert fast.get_lines(x, y, *other) == fast.ORIGINAL_GET_LINES(x, y, *other)


def test_get_lines_hands_what_it_does_not_know_to_plotexts() -> None:
    for x, y in (([1, None, 4], [2, 3, 9]), ([1.5, 2.0], [3, 4]), ([True, 2], [3, 4])):
        other = [["braille"] * 3, [1] * 3, [None] * 3]
        assert fast.get_lines(x, y, *other) == fast.ORIGINAL_GET_LINES(x, y, *other)


@pytest.mark.parametrize("seed", range(40))
def test_hd_group_gives_plotexts_cells(seed: int) -> None:
    rng = random.Random(seed)
    count = rng.choice([1, 2, 7, 300])
    x, y = dots(rng, count, rng.choice([3, 40, 400])), dots(rng, count, rng.choice([3, 40]))
    if seed % 3 == 0:  # factors that differ from dot to dot: the last dot's apply, as in plotext
        xf = [rng.choice([1, 2]) for _ in x]
        yf = [rng.choice([2, 4]) for _ in x]
        xf[-1], yf[-1] = max(xf), max(yf)
    else:
        xf, yf = [2] * count, [4] * count
    assert outcome(fast.hd_group, x, y, xf, yf) == outcome(fast.ORIGINAL_HD_GROUP, x, y, xf, yf)


def outcome(function: Any, *args: Any) -> Any:
    """What ``function`` returns, or the type of what it raises (plotext's own fails on some mixes
    of factors: so must the drop-in)."""
    try:
        return function(*args)
    except IndexError as exc:
        return type(exc)


def build(series: list[tuple[str, list[float], list[float]]], size: tuple[int, int]) -> str:
    plot = Plot()
    plot.title("cpu")
    plot.xlabel("seconds ago")
    for label, xs, ys in series:
        plot.plot(xs, ys, label=label, marker="braille")
    plot.hline(70.0, "red")
    plot.ylim(0, 90)
    plot.plotsize(*size)
    plot._set_size(*size)
    return plot.build()


@pytest.mark.parametrize("seed", range(8))
def test_a_chart_built_with_them_is_plotexts_chart(seed: int) -> None:
    rng = random.Random(seed)
    series = []
    for label in ("desired", "ready")[: rng.choice([1, 2])]:
        count = rng.choice([1, 2, 30, 300])
        xs = sorted(rng.uniform(-300, 0) for _ in range(count))
        series.append((label, xs, [rng.uniform(0, 80) for _ in range(count)]))
    size = rng.choice([(50, 11), (98, 20), (30, 6)])
    fast.install()
    ours = build(series, size)
    with plotext_own():
        assert build(series, size) == ours


def canvas(rng: random.Random, set_matrices: Any, set_canvas: Any) -> tuple[Any, ...]:
    """A random matrix (seeded the same for both) drawn with ``set_matrices`` and ``set_canvas``."""
    colors = ["default", "red", (12, 34, 56), 7, "white"]
    matrix = matrix_class()
    cols, rows = rng.choice([(0, 0), (1, 1), (50, 11), (7, 3)])
    matrix.set_size(cols, rows)
    matrix.set_axes_color(rng.choice(colors))
    matrix.set_canvas_area(
        rng.randint(0, cols), rng.randint(0, cols), rng.randint(0, rows), rng.randint(0, rows)
    )
    matrix.set_canvas_color(rng.choice(colors))
    set_matrices(matrix)
    for _ in range(rng.choice([0, 5, 200])):
        if cols and rows:
            matrix.insert_element(
                rng.randrange(cols),
                rng.randrange(rows),
                rng.choice(["⣿", "x", " ", "─"]),
                rng.choice([None, *colors]),
                rng.choice([None, "bold", "default"]),
                rng.choice([None, *colors]),
            )
    drawn = set_canvas(matrix)
    return drawn, matrix.canvas, matrix.marker, matrix.fullground, matrix.background, matrix.style


@pytest.mark.parametrize("seed", range(40))
def test_the_canvas_is_plotexts_canvas(seed: int) -> None:
    """Runs of cells of the same colours, rows of one colour, empty matrices, canvas areas inside,
    outside or empty: the same ANSI text and the same matrices."""
    ours = canvas(random.Random(seed), fast.set_matrices, fast.set_canvas)
    assert ours == canvas(random.Random(seed), fast.ORIGINAL_SET_MATRICES, fast.ORIGINAL_SET_CANVAS)
