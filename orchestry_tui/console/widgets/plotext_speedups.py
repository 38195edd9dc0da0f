"""Faster drop-ins for the plotext 5.3 helpers that were most of a chart's build.

A braille line chart of 300 points at 50×11 cost plotext ~9-18 ms of CPU (a refresh builds one per
chart whose data moved), two thirds of it in ``hd_group`` (grouping the canvas's dots into braille
cells: a fresh list of lists per dot, then a flattening by a recursive ``join``) and ``get_lines``
(the dots between consecutive points: two slices, a ``linspace`` and a ``join`` per segment).  These
give the same results, element for element, for what the console plots: integer canvas coordinates
(every other input, e.g. a None in the data, is handed to plotext's own).  ``install`` swaps them in
where plotext's builder looks them up; tests/tui/test_plotext_speedups.py compares both on random
plots and on every edge the originals have.

Then the canvas: ``set_canvas`` (the plot's cells into one ANSI string: three colour lookups per cell
and a string grown one cell at a time, a quarter of what was left of a build) and ``set_matrices``
(each cell's background asked of a lambda) give the same string and matrices a row at a time.
"""

from __future__ import annotations

from typing import Any

from plotext import _utility
from plotext._matrix import matrix_class

ORIGINAL_HD_GROUP = _utility.hd_group
ORIGINAL_GET_LINES = _utility.get_lines
ORIGINAL_SET_CANVAS = matrix_class.set_canvas
ORIGINAL_SET_MATRICES = matrix_class.set_matrices


def _ints(values: list[Any]) -> bool:
    return INT_ONLY.issuperset(map(type, values))  # not bool, float or None


INT_ONLY = frozenset({int})


def hd_group(x: list[Any], y: list[Any], xf: list[int], yf: list[int]) -> Any:
    """The braille (or hd) cells the dots ``x``, ``y`` fall in, and each cell's dots, as plotext's."""
    if not x or not (_ints(x) and _ints(y)) or len(x) != len(y) or len(xf) < len(x) or len(yf) < len(x):
        return ORIGINAL_HD_GROUP(x, y, xf, yf)
    xfm, yfm = max(xf), max(yf)
    # As plotext's: each cell's dot matrix is sized by the last dot that falls in it, and every dot's
    # place in its cell is taken modulo the last dot's factors (its loop variables, left over).
    shapes: dict[tuple[int, int], tuple[int, int]] = {}
    for xi, yi, xfi, yfi in zip(x, y, xf, yf, strict=False):
        shapes[xi // xfm, yi // yfm] = (xfi, yfi)
    last_xf, last_yf = xf[len(x) - 1], yf[len(x) - 1]
    cells = {cell: [[0] * width for _ in range(height)] for cell, (width, height) in shapes.items()}
    for xi, yi in zip(x, y, strict=True):
        cells[xi // xfm, yi // yfm][yi % last_yf][xi % last_xf] = 1
    keys = list(cells)
    dots = [tuple(dot for row in reversed(matrix) for dot in row) for matrix in cells.values()]
    return [cell[0] for cell in keys], [cell[1] for cell in keys], dots


def get_lines(x: list[Any], y: list[Any], *other: list[Any]) -> list[list[Any]]:
    """The dots of the lines between consecutive points (and ``other``'s values spread along them),
    as plotext's."""
    count = len(x)
    if (
        count < 2
        or not other
        or len(y) != count
        or any(len(values) != count for values in other)
        or not (_ints(x) and _ints(y))
    ):
        return ORIGINAL_GET_LINES(x, y, *other)
    xl: list[Any] = []
    yl: list[Any] = []
    source: list[int] = []  # the point each dot takes ``other``'s values from
    for n in range(count - 1):
        x0, x1, y0, y1 = x[n], x[n + 1], y[n], y[n + 1]
        steps = max(abs(x1 - x0), abs(y1 - y0))  # plotext's linspace length, less the end point
        if steps == 1:  # the segment's first dot is the point itself (most of a dense series)
            xl.append(x0)
            yl.append(y0)
            source.append(n)
        elif steps:
            # plotext's linspace, term for term: lower + i * (upper - lower) / (length - 1).
            slope_x, slope_y = (x1 - x0) / steps, (y1 - y0) / steps
            xl += [int(x0 + i * slope_x) for i in range(steps)]
            yl += [int(y0 + i * slope_y) for i in range(steps)]
            source += [n] * steps
        # else one dot, which the next segment (or the last point) gives
    xl.append(x[-1])
    yl.append(y[-1])
    source.append(count - 1)
    return [xl, yl, *([values[i] for i in source] for values in other)]


def set_canvas(self: Any) -> str:
    """The matrix as plotext's ANSI text: top row first, each run of cells of the same colours as its
    colours' code, its markers and the end code, each row ending with a newline."""
    to_ansi, end = _utility.colors_to_ansi, _utility.ansi_end
    cols = self.cols
    parts: list[str] = []
    for row in self.Rows[::-1]:
        markers, fullground, style, background = (
            self.marker[row],
            self.fullground[row],
            self.style[row],
            self.background[row],
        )
        col = 0
        while col < cols:
            colors = [fullground[col], style[col], background[col]]
            run = col + 1
            while run < cols and [fullground[run], style[run], background[run]] == colors:
                run += 1
            parts += (to_ansi(*colors), "".join(markers[col:run]), end)
            col = run
        parts.append("\n")
    self.canvas = "".join(parts)
    return self.canvas


def set_matrices(self: Any) -> None:
    """Blank markers, no colours, and the canvas colour inside the canvas area, the axes' outside."""
    cols, rows = self.cols, self.Rows
    self.marker = [[_utility.space] * cols for _row in rows]
    self.fullground = [[_utility.no_color] * cols for _row in rows]
    inside = [self.canvas_color if col in self.Cols_canvas else self.axes_color for col in self.Cols]
    outside = [self.axes_color] * cols
    self.background = [list(inside if row in self.Rows_canvas else outside) for row in rows]
    self.style = [[_utility.no_color] * cols for _row in rows]


def install() -> None:
    """plotext's builder calls these through its ``_utility`` module and its matrix class: replaced
    there."""
    _utility.hd_group = hd_group
    _utility.get_lines = get_lines
    matrix_class.set_canvas = set_canvas  # type: ignore[method-assign]
    matrix_class.set_matrices = set_matrices  # type: ignore[method-assign]
