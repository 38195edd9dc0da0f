"""A DataTable updated in place by row key: no clear-and-rebuild, no flicker, cursor kept."""

from __future__ import annotations

from collections.abc import Iterable

from textual.widgets import DataTable


class KeyedTable(DataTable[object]):
    """Rows are identified by a string key; ``sync`` adds, updates changed cells and removes rows."""

    def __init__(self, columns: Iterable[tuple[str, str]], **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)  # type: ignore[arg-type]
        self._columns = list(columns)
        self._shown: dict[str, tuple[object, ...]] = {}

    def on_mount(self) -> None:
        for key, label in self._columns:
            self.add_column(label, key=key)

    def sync(self, rows: dict[str, tuple[object, ...]]) -> None:
        """Show ``rows`` in their order; cells change in place, rows are rebuilt only on a reorder."""
        for gone in [key for key in self._shown if key not in rows]:
            self.remove_row(gone)
            del self._shown[gone]
        for key, cells in rows.items():
            before = self._shown.get(key)
            if before is None:
                self.add_row(*cells, key=key)
            elif before != cells:
                for (column, _label), old, new in zip(self._columns, before, cells, strict=True):
                    if old != new:
                        self.update_cell(key, column, new, update_width=True)
            self._shown[key] = cells
        if list(self._shown) != list(rows):
            self._rebuild(rows)

    def _rebuild(self, rows: dict[str, tuple[object, ...]]) -> None:
        """A row moved (e.g. app10 registered between app2 and app11): rebuild, keeping the cursor's row."""
        selected = self.selected_key
        self.clear()
        self._shown = {}
        for key, cells in rows.items():
            self.add_row(*cells, key=key)
            self._shown[key] = cells
        if selected in rows:
            self.move_cursor(row=self.get_row_index(selected))

    @property
    def selected_key(self) -> str | None:
        if not self._shown or self.cursor_row < 0 or self.cursor_row >= self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return row_key.value

    def select_key(self, key: str) -> None:
        if key in self._shown:
            self.move_cursor(row=self.get_row_index(key))
