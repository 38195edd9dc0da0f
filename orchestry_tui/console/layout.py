"""Which panes the main screen shows and how big: toggled and resized by keys, kept in the config file.

Pure data and decisions (no Textual): the App turns a ``Placement`` into styles.  On a terminal too
small for the panes side by side (``is_compact``) the apps table stays on top and every other shown
pane becomes a tab below it, one at a time, instead of squeezing them until they overlap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# (name, toggle key, title) in screen order.
PANES: tuple[tuple[str, str, str], ...] = (
    ("apps", "1", "apps"),
    ("replicas", "2", "replicas"),
    ("charts", "3", "charts"),
    ("events", "4", "events"),
    ("logs", "5", "logs"),
    ("cluster", "6", "cluster"),
)
PANE_NAMES = tuple(name for name, _key, _title in PANES)
TITLES = {name: title for name, _key, title in PANES}

# Rows of the full layout, top to bottom, and the panes each holds.
ROW_OF = {
    "apps": "top",
    "cluster": "top",
    "replicas": "middle",
    "charts": "bottom",
    "events": "bottom",
    "logs": "bottom",
}
# Which split a pane's width (or, in the side column, height) belongs to, and whether it is the
# split's first part (growing it moves the split up) or second.
SPLIT_OF = {
    "apps": ("top", True),
    "cluster": ("top", False),
    "charts": ("bottom", True),
    "events": ("side", True),
    "logs": ("side", False),
}
DEFAULT_ROWS = {"top": 3, "middle": 2, "bottom": 6}
DEFAULT_SPLITS = {"top": 55, "bottom": 50, "side": 45}
ROW_RANGE = (1, 12)
SPLIT_RANGE = (20, 80)
SPLIT_STEP = 5

# Below this the full layout's panes no longer fit side by side (the charts need ~70 columns, the
# tables ~24 rows together).
COMPACT_WIDTH = 120
COMPACT_HEIGHT = 34


class LayoutError(ValueError):
    """A bad [console.layout] value: the message names the key and what it accepts."""


@dataclass
class Layout:
    hidden: set[str] = field(default_factory=set)
    rows: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_ROWS))
    splits: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_SPLITS))
    tab: str = "charts"  # the pane shown below the apps in compact mode

    # --- changes --------------------------------------------------------------------------------
    def toggle(self, pane: str) -> bool:
        """Show or hide ``pane``; returns whether it is now shown.  The last shown pane stays."""
        if pane in self.hidden:
            self.hidden.discard(pane)
            return True
        if len(self.shown()) > 1:
            self.hidden.add(pane)
        return pane not in self.hidden

    def grow(self, pane: str, steps: int) -> None:
        """Make ``pane``'s row taller (steps > 0) or shorter."""
        row = ROW_OF[pane]
        low, high = ROW_RANGE
        self.rows[row] = max(low, min(high, self.rows[row] + steps))

    def widen(self, pane: str, steps: int) -> None:
        """Give ``pane`` more (steps > 0) or less of the split it shares with its neighbour."""
        if pane not in SPLIT_OF:
            return
        split, first = SPLIT_OF[pane]
        low, high = SPLIT_RANGE
        delta = steps * SPLIT_STEP * (1 if first else -1)
        self.splits[split] = max(low, min(high, self.splits[split] + delta))

    # --- queries --------------------------------------------------------------------------------
    def shown(self) -> list[str]:
        return [p for p in PANE_NAMES if p not in self.hidden]

    def tabs(self) -> list[str]:
        """The panes that become tabs in compact mode: every shown one but the apps table."""
        return [p for p in self.shown() if p != "apps"]

    def active_tab(self) -> str | None:
        tabs = self.tabs()
        if not tabs:
            return None
        return self.tab if self.tab in tabs else tabs[0]

    def displayed(self, compact: bool) -> set[str]:
        """The panes on screen: those whose refresh work must be done."""
        if not compact:
            return set(self.shown())
        on = {"apps"} & set(self.shown())
        tab = self.active_tab()
        return on | ({tab} if tab else set())

    # --- the config file --------------------------------------------------------------------------
    def to_config(self) -> dict[str, Any]:
        return {"hidden": sorted(self.hidden), **{f"{k}_height": v for k, v in self.rows.items()}} | {
            f"{k}_split": v for k, v in self.splits.items()
        }

    @classmethod
    def from_config(cls, values: dict[str, Any]) -> Layout:
        layout = cls()
        for key, value in values.items():
            if key == "hidden":
                if not isinstance(value, list) or any(v not in PANE_NAMES for v in value):
                    raise LayoutError(
                        f"[console.layout] hidden = {value!r}: expected a list of {', '.join(PANE_NAMES)}"
                    )
                layout.hidden = set(value)
                if not layout.shown():
                    layout.hidden.discard("apps")
            elif key.endswith("_height") and key[: -len("_height")] in DEFAULT_ROWS:
                layout.rows[key[: -len("_height")]] = _bounded(key, value, ROW_RANGE)
            elif key.endswith("_split") and key[: -len("_split")] in DEFAULT_SPLITS:
                layout.splits[key[: -len("_split")]] = _bounded(key, value, SPLIT_RANGE)
            else:
                heights = [f"{k}_height" for k in DEFAULT_ROWS]
                known = ", ".join(["hidden", *heights, *(f"{k}_split" for k in DEFAULT_SPLITS)])
                raise LayoutError(f"[console.layout] {key!r} is not a layout key: known keys are {known}")
        return layout


def _bounded(key: str, value: Any, bounds: tuple[int, int]) -> int:
    low, high = bounds
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise LayoutError(f"[console.layout] {key} = {value!r}: expected a whole number from {low} to {high}")
    return value


def is_compact(width: int, height: int) -> bool:
    return width < COMPACT_WIDTH or height < COMPACT_HEIGHT
