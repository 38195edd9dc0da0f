"""The one registry of console actions: it feeds the key bindings, the help screen and the palette.

Each action has a stable ``id`` so users can remap keys (Textual keymaps), and says whether it
changes anything: ``--readonly`` refuses exactly those.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding

from orchestry_tui.console.layout import PANES

KEY_SYMBOLS = {
    "slash": "/",
    "question_mark": "?",
    "colon": ":",
    "plus": "+",
    "minus": "-",
    "greater_than_sign": ">",
    "less_than_sign": "<",
}


@dataclass(frozen=True)
class ConsoleAction:
    id: str
    keys: str  # Textual key list, e.g. "q,ctrl+c"
    action: str  # the App action it runs
    description: str
    help: str
    mutating: bool = False
    show: bool = True
    priority: bool = False

    @property
    def key_display(self) -> str:
        first = self.keys.split(",")[0]
        return KEY_SYMBOLS.get(first, first)

    def binding(self) -> Binding:
        return Binding(
            self.keys,
            self.action,
            self.description,
            show=self.show,
            priority=self.priority,
            id=f"orchestry.{self.id}",
            key_display=self.key_display,
        )


ACTIONS: tuple[ConsoleAction, ...] = (
    ConsoleAction(
        "scale", "s", "scale", "Scale", "Scale the selected app (dialog pre-filled)", mutating=True
    ),
    ConsoleAction(
        "restart",
        "r",
        "restart_app",
        "Restart",
        "Rolling restart of the selected app (asks first)",
        mutating=True,
    ),
    ConsoleAction(
        "restart_replica",
        "R",
        "restart_replica",
        "Restart replica",
        "Restart the replica selected in the replicas table (asks first)",
        mutating=True,
        show=False,
    ),
    ConsoleAction("logs", "l", "logs", "Logs", "Follow the selected app's logs, all replicas merged"),
    ConsoleAction("describe", "d", "describe", "Describe", "Spec (secrets redacted), policy and status"),
    ConsoleAction(
        "mode",
        "m",
        "toggle_mode",
        "Auto/manual",
        "Switch the app between auto and manual scaling",
        mutating=True,
    ),
    ConsoleAction(
        "whatif",
        "w",
        "whatif",
        "What-if",
        "What-if: backtest a candidate policy on the recorded load; apply it (asks)",
        show=False,
    ),
    ConsoleAction("up", "u", "up", "Up", "Start the selected app", mutating=True, show=False),
    ConsoleAction(
        "down",
        "x",
        "down",
        "Down",
        "Stop the selected app's replicas (asks first)",
        mutating=True,
        show=False,
    ),
    ConsoleAction(
        "nodes",
        "n",
        "nodes",
        "Nodes",
        "The machines that run replicas: state, availability, replicas, CPU",
        show=False,
    ),
    ConsoleAction(
        "filter",
        "slash",
        "filter",
        "Filter",
        "Filter the apps table by name (the logs pane's lines when it has focus)",
    ),
    ConsoleAction(
        "step_down",
        "L",
        "step_down",
        "Step down",
        "Ask the cluster's leader to release its lease so a follower takes over (asks first)",
        mutating=True,
        show=False,
    ),
    ConsoleAction(
        "charts.next",
        "c",
        "next_charts",
        "Next charts",
        "Show the next charts, when the charts pane has room for fewer than all four",
        show=False,
    ),
    ConsoleAction(
        "snapshot",
        "ctrl+s",
        "snapshot",
        "Snapshot",
        "Write a diagnostic snapshot (.tar.gz, secrets redacted) to the state dir",
    ),
    *(
        ConsoleAction(
            f"pane.{name}",
            key,
            f"toggle_pane('{name}')",
            f"{title.capitalize()} pane",
            f"Show or hide the {title} pane (on a small terminal: switch to its tab)",
            show=False,
        )
        for name, key, title in PANES
    ),
    ConsoleAction(
        "taller", "plus", "resize(1, 0)", "Taller", "Make the focused pane's row taller", show=False
    ),
    ConsoleAction(
        "shorter", "minus", "resize(-1, 0)", "Shorter", "Make the focused pane's row shorter", show=False
    ),
    ConsoleAction(
        "wider",
        "greater_than_sign",
        "resize(0, 1)",
        "Wider",
        "Give the focused pane more of the space it shares with its neighbour",
        show=False,
    ),
    ConsoleAction(
        "narrower",
        "less_than_sign",
        "resize(0, -1)",
        "Narrower",
        "Give the focused pane less of the space it shares with its neighbour",
        show=False,
    ),
    ConsoleAction(
        "theme",
        "ctrl+t",
        "toggle_theme",
        "Light/dark",
        "Switch between the light and the dark theme (remembered in the config file)",
        show=False,
    ),
    ConsoleAction("help", "question_mark", "help", "Help", "Show every key"),
    ConsoleAction("palette", "colon", "command_palette", "Commands", "Command palette", show=False),
    ConsoleAction("quit", "q,ctrl+c", "quit", "Quit", "Quit the console (apps keep running)"),
    ConsoleAction(
        "quit_and_stop",
        "Q",
        "quit_and_stop",
        "Quit and stop every app",
        "Stop every app and nginx, then quit (asks first)",
        mutating=True,
        show=False,
    ),
)

BY_ACTION = {a.action: a for a in ACTIONS}


def bindings() -> list[Binding]:
    return [a.binding() for a in ACTIONS]


def help_rows() -> list[tuple[str, str, str]]:
    """(key, description, note) for every action, in registry order."""
    return [(a.key_display, a.help, "changes state" if a.mutating else "") for a in ACTIONS]
