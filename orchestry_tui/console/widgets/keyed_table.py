"""A DataTable updated in place by row key: no clear-and-rebuild, no flicker, cursor kept."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from rich.cells import cell_len, get_character_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.color import Color
from textual.css.styles import RenderStyles
from textual.geometry import Region
from textual.render import measure
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets._data_table import ColumnKey, RowKey, default_cell_formatter


def plain(value: object) -> object:
    """A string cell as plain Text: DataTable parses a string as markup (and emoji codes) every time
    it renders its row, which was most of a re-rendered row's cost; no cell here is markup, and an
    address such as ``[::1]:8080`` is then shown as it is."""
    return Text(value) if isinstance(value, str) else value


def _one_cell_each(text: str) -> bool:
    """Each character printable and one cell wide: the ASCII ones, and the dash ("–") shown for a figure
    that is not known, as an idle app's requests and latency are (wide and zero-width ones are not)."""
    if text.isascii():
        return text.isprintable()
    return text.isprintable() and all(get_character_cell_size(c) == 1 for c in text)


def _layout(text: Text) -> tuple[object, ...]:
    """What Rich lays a one-line text out by, besides its length."""
    return (text.style, tuple(text.spans), text.justify, text.overflow, text.no_wrap, text.end, text.tab_size)


class _PaintStyles:
    """A component's styles during one paint of the table, its Rich style worked out once."""

    def __init__(self, styles: RenderStyles) -> None:
        self._styles = styles
        self._rich_style: Style | None = None

    @property
    def rich_style(self) -> Style:
        if self._rich_style is None:
            self._rich_style = self._styles.rich_style
        return self._rich_style

    def __getattr__(self, name: str) -> Any:
        return getattr(self._styles, name)


class KeyedTable(DataTable[object]):
    """Rows are identified by a string key; ``sync`` adds, updates changed cells and removes rows.

    ``positional``: row N of the screen is DataTable row key ``"N"`` whatever it shows, and the string
    keys only name what each row shows now.  A whole new set of keys (another app's replicas) then
    rewrites the cells that differ instead of removing every row and adding new ones: removing a row
    costs the whole screen a layout pass, and switching apps did ten of them.  Rows are only added or
    removed at the end, when the count changes.
    """

    # k9s's (and vi's) keys for moving down and up a list, beside the arrows: its users press them first.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False, id="orchestry.table.down"),
        Binding("k", "cursor_up", "Up", show=False, id="orchestry.table.up"),
    ]

    # While the table paints: its own styles, worked out once (see render_lines); else None.
    _paint_styles: dict[object, Any] | None = None

    def __init__(
        self, columns: Iterable[tuple[str, str]], positional: bool = False, **kwargs: object
    ) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)  # type: ignore[arg-type]
        self._columns = list(columns)
        self._positional = positional
        self._shown: dict[str, tuple[object, ...]] = {}  # DataTable row key → cells shown
        self._keys: list[str] = []  # positional: the key each row shows, top to bottom
        # Each cell's measured width, by column then row key, and the columns whose cells changed in
        # this sync: their width is fitted once at its end (see _fit_columns).
        self._widths: dict[str, dict[str, int]] = {key: {} for key, _label in self._columns}
        self._changed: dict[str, list[int]] = {}
        self._widened: dict[str, list[int]] = {}
        self._cells_written = False  # a cell changed in this sync: one repaint at its end
        # Rendered cells by screen position and look, each with the value it shows (see _render_cell).
        self._rendered: LRUCache[tuple[object, ...], tuple[object, list[list[Segment]]]] = LRUCache(4096)
        # A rendered cell of each shape (column, look, length and layout of its text), with its row: a
        # row never shown before (PageDown) takes its cells from these (see _from_shape).
        self._shapes: LRUCache[tuple[object, ...], tuple[Text, list[list[Segment]], int]] = LRUCache(1024)
        self._row_meta: dict[tuple[int, int], Style] = {}  # Style.from_meta of each (row, column)

    def on_mount(self) -> None:
        for key, label in self._columns:
            self.add_column(label, key=key)

    def sync(self, rows: dict[str, tuple[object, ...]]) -> None:
        """Show ``rows`` in their order; cells change in place, rows are rebuilt only on a reorder
        (never, when positional).  An unchanged row costs one tuple comparison."""
        if self._positional:
            self._sync_positions(rows)
        else:
            self._sync_keys(rows)
        if self._cells_written:
            # What update_cell does for every cell, once: its cache generation moves on (the rows
            # render again) and one refresh, instead of a refresh per changed cell.
            self._cells_written = False
            self._update_count += 1
            self._drop_stale_renders()
            self.refresh()
        self._fit_columns()

    def _sync_keys(self, rows: dict[str, tuple[object, ...]]) -> None:
        for gone in [key for key in self._shown if key not in rows]:
            self._remove(gone)
        for key, cells in rows.items():
            before = self._shown.get(key)
            if before is None:
                self._add(key, cells)
            elif before != cells:
                self._update_cells(key, before, cells)
            self._shown[key] = cells
        if list(self._shown) != list(rows):
            self._rebuild(rows)

    def _sync_positions(self, rows: dict[str, tuple[object, ...]]) -> None:
        for index in range(len(self._shown) - 1, len(rows) - 1, -1):  # surplus rows, from the bottom
            self._remove(str(index))
        keys = list(rows)
        for index, cells in enumerate(rows.values()):
            row_key = str(index)
            before = self._shown.get(row_key)
            if before is None:
                self._add(row_key, cells)
            elif before != cells:
                # Another key on this row counts as a new row: its columns only widen, as add_row's do.
                same = index < len(self._keys) and self._keys[index] == keys[index]
                self._update_cells(row_key, before, cells, fit=same)
            self._shown[row_key] = cells
        self._keys = keys

    def _add(self, row_key: str, cells: tuple[object, ...]) -> None:
        self.add_row(*map(plain, cells), key=row_key)  # DataTable widens the columns for a new row itself
        for (column, _label), value in zip(self._columns, cells, strict=True):
            self._widths[column][row_key] = self._measure(value)

    def _remove(self, row_key: str) -> None:
        self.remove_row(row_key)
        del self._shown[row_key]
        for widths in self._widths.values():
            widths.pop(row_key, None)

    def _update_cells(
        self, row_key: str, before: tuple[object, ...], cells: tuple[object, ...], fit: bool = True
    ) -> None:
        """``fit``: the column may narrow to its cells, as update_width does; else it only widens."""
        for (column, _label), old, new in zip(self._columns, before, cells, strict=True):
            if old != new:
                # Not update_width=True: for every cell that got narrower than its column, DataTable
                # re-measures the whole column (100 apps whose CPU moved: 100 × 100 measures a refresh).
                self._data[RowKey(row_key)][ColumnKey(column)] = plain(new)  # see sync: one refresh
                self._cells_written = True
                width = self._widths[column][row_key] = self._measure(new)
                (self._changed if fit else self._widened).setdefault(column, []).append(width)

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> list[list[Segment]]:
        """DataTable renders every visible cell again whenever any cell changed (its caches are keyed
        by a table-wide update count), so a refresh where a fleet's CPU figures moved re-rendered the
        names, states and images beside them too.  A cell whose value is the very object rendered
        last time at that place, width and look is served from here: sync writes only changed cells,
        so an unchanged cell keeps its object (held by the entry, so its id is never reused)."""
        if column_index < 0:  # row labels (none here): DataTable's own path
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        column_key = self._column_locations.get_key(column_index)
        if row_index < 0:  # the header: its labels, rendered again by DataTable after every sync
            value: object = self.columns[column_key].label
        else:
            value = self._data[self._row_locations.get_key(row_index)][column_key]
        look = (self._show_hover_cursor, self.show_cursor, self._pseudo_class_state)
        key = (row_index, column_index, base_style, width, cursor, hover, *look)
        hit = self._rendered.get(key)
        if hit is not None and hit[0] is value:
            return hit[1]
        lines = self._retext(hit[0], hit[1], value) if hit is not None else None
        # The header is rendered in its own style: none of its cells has a row's shape.
        shape = (
            self._shape(value, column_index, base_style, width, cursor, hover, look)
            if row_index >= 0
            else None
        )
        if lines is None and shape is not None:
            lines = self._from_shape(shape, value, row_index, column_index)
        if lines is None:
            lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
            if shape is not None:
                self._shapes.set(shape, (value, lines, row_index))  # type: ignore[arg-type]
        self._rendered.set(key, (value, lines))
        return lines

    @staticmethod
    def _shape(value: object, *where: object) -> tuple[object, ...] | None:
        """What a one-line text cell's render depends on besides its characters and its row, or None
        for any other cell (see _retext)."""
        if not isinstance(value, Text) or not _one_cell_each(value.plain):
            return None
        return (*where, len(value.plain), _layout(value))

    def _from_shape(
        self, shape: tuple[object, ...], value: Text, row_index: int, column_index: int
    ) -> list[list[Segment]] | None:
        """The cell rendered from another of its shape: that one's characters swapped for ``value``'s
        and, from another row, its row in each segment's mouse metadata (what a click selects).

        Scrolling to rows never shown (PageDown through 100 apps) rendered each of their cells through
        Rich, two thirds of the apps table's paint; names, states and figures of one length in one
        column are the same cell but for their characters and their row."""
        template = self._shapes.get(shape)
        if template is None:
            return None
        before, lines, before_row = template
        retexted = self._retext(before, lines, value)
        if retexted is None or before_row == row_index:
            return retexted
        meta = self._row_meta.get((row_index, column_index))
        if meta is None:
            meta = self._row_meta[row_index, column_index] = Style.from_meta(
                {"row": row_index, "column": column_index}
            )
        # DataTable adds the same metadata to the cell's base style: each segment's style carries it, and
        # adding it again puts this row's in place of the other's (Style.__add__ merges the metadata).
        return [
            [
                Segment(text, style + meta if style is not None else None, control)
                for text, style, control in line
            ]
            for line in retexted
        ]

    def _retext(
        self, before: object, lines: list[list[Segment]], after: object
    ) -> list[list[Segment]] | None:
        """``lines`` (``before`` rendered here) with ``after``'s characters in place of ``before``'s,
        when that is what DataTable would render for ``after``; else None.

        A figure that moved ("12.3%" to "14.0%") is the same cell but for its characters: the same
        length and look.  Rich lays a one-line text out by its length, spans and styles, never by its
        characters, as long as each is printable and one cell wide (no tab, newline, wide or zero-width
        character) and the text fits its column (nothing cut).  Rendering it through Rich took most of
        a changed row's paint."""
        if not isinstance(before, Text) or not isinstance(after, Text) or len(lines) != 1:
            return None
        old, new = before.plain, after.plain
        if len(old) != len(new) or not (_one_cell_each(old) and _one_cell_each(new)):
            return None
        if _layout(before) != _layout(after):
            return None
        line = lines[0]
        shown = "".join(segment.text for segment in line)
        start = self.cell_padding
        if shown[start : start + len(old)] != old or any(segment.control for segment in line):
            return None
        shown = shown[:start] + new + shown[start + len(old) :]
        retexted: list[Segment] = []
        offset = 0
        for segment in line:
            end = offset + len(segment.text)
            retexted.append(Segment(shown[offset:end], segment.style))
            offset = end
        return [retexted]

    def render_lines(self, crop: Region) -> list[Strip]:
        """DataTable works out its own Rich style, background and header style again for every line it
        renders (each walks the widget's ancestors' styles: a third of a changed table's paint).  Nothing
        can change them while it paints, so within one paint each is worked out once."""
        self._paint_styles = {}
        try:
            return super().render_lines(crop)
        finally:
            self._paint_styles = None

    @property
    def rich_style(self) -> Style:
        during = self._paint_styles
        if during is None:
            return super().rich_style
        if "rich_style" not in during:
            during["rich_style"] = super().rich_style
        return during["rich_style"]  # type: ignore[no-any-return]

    @property
    def background_colors(self) -> tuple[Color, Color]:
        during = self._paint_styles
        if during is None:
            return super().background_colors
        if "background_colors" not in during:
            during["background_colors"] = super().background_colors
        return during["background_colors"]  # type: ignore[no-any-return]

    def get_component_styles(self, *names: str) -> RenderStyles:
        during = self._paint_styles
        if during is None:
            return super().get_component_styles(*names)
        if names not in during:
            during[names] = _PaintStyles(super().get_component_styles(*names))
        return during[names]  # type: ignore[no-any-return]

    def _drop_stale_renders(self) -> None:
        """DataTable's rendered rows, cells and lines are keyed by its update count, so none made before
        it moved on is ever used again; yet they stayed until their caches filled (10,000 cells, 1,000
        rows and lines): the replicas table held ~80,000 objects after 200 app switches, which every
        garbage collection walked.  Unchanged cells are kept in ``_rendered``, whose keys do not age."""
        self._row_render_cache.clear()
        self._cell_render_cache.clear()
        self._line_cache.clear()

    def _clear_caches(self) -> None:
        super()._clear_caches()
        self._rendered.clear()
        self._shapes.clear()

    def notify_style_update(self) -> None:
        self._rendered.clear()  # a theme or CSS change: every cell's look
        self._shapes.clear()
        super().notify_style_update()

    def _measure(self, value: object) -> int:
        """A cell's width as DataTable measures it (one-line rows).  One-line text, what almost every
        cell is, is its cell length (a string is shown as plain text: see ``plain``)."""
        text = value.plain if isinstance(value, Text) else value if isinstance(value, str) else None
        if text is not None and not any(c in text for c in "\n\r\t"):
            return cell_len(text)
        return measure(self.app.console, default_cell_formatter(plain(value), wrap=False, height=1), 1)

    def _fit_columns(self) -> None:
        """Each changed column's width, as DataTable's update_width gives it, fitted once: the widest
        cell when one got narrower than the column, else the wider of the column and its new cells."""
        if not self._changed and not self._widened:
            return
        for column_key, new_widths in self._widened.items():
            column = self.columns[ColumnKey(column_key)]
            column.content_width = max(column.content_width, *new_widths)
        for column_key, new_widths in self._changed.items():
            column = self.columns[ColumnKey(column_key)]
            label = measure(self.app.console, column.label, 1)
            if min(new_widths) < column.content_width:
                column.content_width = max([*self._widths[column_key].values(), label])
            else:
                column.content_width = max(column.content_width, *new_widths, label)
        self._changed, self._widened = {}, {}
        self._require_update_dimensions = True  # the virtual width follows on the next idle
        self.check_idle()

    def _rebuild(self, rows: dict[str, tuple[object, ...]]) -> None:
        """A row moved (e.g. app10 registered between app2 and app11): rebuild, keeping the cursor's row."""
        selected = self.selected_key
        self.clear()
        self._shown = {}
        self._widths = {key: {} for key, _label in self._columns}
        for key, cells in rows.items():
            self._add(key, cells)
            self._shown[key] = cells
        if selected in rows:
            self.move_cursor(row=self.get_row_index(selected))

    def key_of(self, row_key: str | None) -> str | None:
        """The key shown on the DataTable row ``row_key`` (as a RowHighlighted event names it)."""
        if row_key is None or not self._positional:
            return row_key
        index = int(row_key)
        return self._keys[index] if 0 <= index < len(self._keys) else None

    @property
    def shown_keys(self) -> list[str]:
        """The keys the table shows, top to bottom."""
        return list(self._keys) if self._positional else list(self._shown)

    def cell(self, key: str, column: str) -> object:
        """The cell of ``column`` in the row showing ``key``."""
        if self._positional:
            return self.get_cell(str(self._keys.index(key)), column)
        return self.get_cell(key, column)

    @property
    def selected_key(self) -> str | None:
        if not self._shown or self.cursor_row < 0 or self.cursor_row >= self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return self.key_of(row_key.value)

    def select_key(self, key: str) -> None:
        if self._positional:
            if key in self._keys:
                self.move_cursor(row=self._keys.index(key))
        elif key in self._shown:
            self.move_cursor(row=self.get_row_index(key))
