"""The what-if screen: edit an app's scaling policy and see, on its recorded load (or a synthetic
trace), what the candidate would have done next to the current policy; then apply it after a
confirmation.  Every run is a backtest by the daemon (or the embedded engine): nothing changes until
the candidate is applied, through the same validation as ``orchestry apply``.

One screen for every app, built on first use (or ahead, while idle) and shown again (see kept.py):
``show`` puts an app's policy in its fields before each push, and each push runs the backtest.
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.geometry import Region
from textual.screen import Screen
from textual.strip import Strip
from textual.timer import Timer
from textual.widgets import DataTable, Input, Label, Select, Static
from textual_plotext import PlotextPlot

from core.errors import OrchestryError
from orchestry_tui.console.backend import ConsoleBackend
from orchestry_tui.console.screens import confirm
from orchestry_tui.console.screens.kept import KeptScreen
from orchestry_tui.console.widgets.footer import SteadyFooter

# The policy fields an operator tunes, in the order of the seed's troubleshooting guide.
FIELDS: tuple[tuple[str, str], ...] = (
    ("minReplicas", "min replicas"),
    ("maxReplicas", "max replicas"),
    ("targetRPSPerReplica", "target req/s per replica"),
    ("maxCPUPercent", "max CPU %"),
    ("maxP95LatencyMs", "max p95 latency ms"),
    ("maxConnPerReplica", "max connections per replica"),
    ("maxMemoryPercent", "max memory %"),
    ("scaleOutThresholdPct", "scale-out threshold %"),
    ("scaleInThresholdPct", "scale-in threshold %"),
    ("windowSeconds", "window s"),
    ("cooldownSeconds", "cooldown s"),
    ("maxScaleOutStep", "max scale-out step (empty: Kubernetes' default)"),
    ("scaleInStep", "scale-in step"),
)
SOURCES = (
    ("recorded history", "history"),
    *((f"synthetic {k}", k) for k in ("step", "ramp", "spike", "sine")),
)
SINCE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
SINCE = "6h"  # the history replayed at first
DEBOUNCE_SECONDS = 0.4
# The screen shown this long (painted, and a key right after its paint answered) before its backtest.
OPENED_SECONDS = 0.1
SUMMARY_ROWS = (
    ("scale events", lambda s: f"{s['scale_events']} ({s['scale_outs']} out, {s['scale_ins']} in)"),
    ("replica-minutes", lambda s: f"{s['replica_minutes']:.1f}"),
    ("under-provisioned min", lambda s: f"{s['under_provisioned_minutes']:.1f}"),
    ("peak replicas", lambda s: str(s["peak_replicas"])),
    ("flaps", lambda s: str(s["flaps"])),
)


class WhatIfChart(PlotextPlot):
    """The replica curves.  Empty (a new screen, or the screen shown again until the backtest answers),
    it shows the lines it drew when last empty at that size and with those styles: plotext draws even an
    empty canvas dot by dot and Textual then turns its 7,000 characters into lines, some 20 ms of CPU."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plotted = False
        self._empty: tuple[tuple[Any, ...], list[Strip]] | None = None

    def render_lines(self, crop: Region) -> list[Strip]:
        if self.plotted:
            return super().render_lines(crop)
        drawn_for = (crop, self.size, self.app.theme, self.app._css_update_count)
        if self._empty is None or self._empty[0] != drawn_for:
            self._empty = (drawn_for, super().render_lines(crop))
        return list(self._empty[1])

    def clear(self) -> None:
        """Nothing plotted, no title, no labels: as a new plot (its render sets its size and theme)."""
        self.plt.clear_figure()
        self.plotted = False
        self.refresh()


def parse_value(text: str) -> Any:
    """A field's text as the number the policy wants; empty is null (only maxScaleOutStep allows it)."""
    text = text.strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        return text  # the daemon names the field and what it accepts
    return int(number) if number.is_integer() else number


def parse_since(text: str) -> float | None:
    text = text.strip().lower()
    if not text:
        return None
    unit = text[-1] if text[-1] in SINCE_UNITS else "s"
    try:
        return float(text.rstrip("smhd")) * SINCE_UNITS[unit]
    except ValueError:
        return -1.0  # refused by the daemon with a sentence naming 'since'


class WhatIfScreen(KeptScreen, Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="orchestry.whatif.close"),
        Binding("ctrl+o", "apply_candidate", "Apply candidate", id="orchestry.whatif.apply"),
    ]

    def __init__(
        self, backend: ConsoleBackend, app_name: str, policy: dict[str, Any], readonly: bool
    ) -> None:
        super().__init__()
        self.backend = backend
        self.app_name = app_name
        self.current_policy = dict(policy)
        self.readonly = readonly
        self.answer: dict[str, Any] | None = None
        self.error = ""
        self.runs = 0  # backtests answered (tests wait on it)
        self._debounce: Timer | None = None
        self._last_request: str | None = None
        self._focus_field = True  # on the next push
        # Since the screen was last shown for an app: a status line written, results drawn.
        self._status_written = self._results_drawn = False

    def _title(self) -> str:
        return (
            f"What if: {self.app_name}'s scaling policy on its recorded load · edit a field, the backtest "
            "reruns · ctrl+o applies the candidate (asks first) · Esc closes"
        )

    def compose(self) -> ComposeResult:
        yield Label(self._title(), id="whatif-title")
        with Horizontal(id="whatif-body"):
            with VerticalScroll(id="whatif-form"):
                yield Label("load")
                yield Select(SOURCES, value="history", allow_blank=False, id="whatif-source")
                yield Label("history to replay (e.g. 6h)")
                yield Input(SINCE, id="whatif-since")
                for key, label in FIELDS:
                    yield Label(label)
                    yield Input(self._shown(key), id=f"field-{key}")
            with Vertical(id="whatif-results"):
                yield WhatIfChart(id="whatif-chart")
                yield DataTable(id="whatif-summary", cursor_type="none", zebra_stripes=True)
                yield Static("", id="whatif-status")
        yield SteadyFooter()

    def _shown(self, key: str) -> str:
        value = self.current_policy.get(key)
        return "" if value is None else str(value)

    def on_mount(self) -> None:
        # Built ahead (kept.py) as the console closes, its Mount can come after its widgets were removed:
        # an error here would end the console with a traceback instead of quitting (seen at load 10).
        with contextlib.suppress(NoMatches):
            self._add_columns(self.query_one("#whatif-summary", DataTable))

    @staticmethod
    def _add_columns(table: DataTable[Any]) -> None:
        table.add_columns("", "current", "candidate")

    def show(self, app_name: str, policy: dict[str, Any]) -> None:
        """Before it is pushed again: ``app_name``'s policy in the fields, recorded history as the load,
        no results yet, as a new screen would show it (the push runs the backtest)."""
        self.workers.cancel_group(self, "whatif")  # the last app's answer is not this one's
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None
        titled_for, self.app_name, self.current_policy = self.app_name, app_name, dict(policy)
        self.answer, self.error, self._last_request = None, "", None
        self._focus_field = True
        if not self.is_mounted:
            return  # composed from these
        # Only what differs from a new screen is touched: each widget changed is drawn again.
        if app_name != titled_for:
            self.query_one("#whatif-title", Label).update(self._title())
        self.query_one("#whatif-source", Select).value = "history"
        fields = [(self.query_one("#whatif-since", Input), SINCE)]
        fields += [(self.query_one(f"#field-{key}", Input), self._shown(key)) for key, _label in FIELDS]
        for field, value in fields:
            field.value = value
            field.cursor_position = len(value)  # as a new field has it
        self.query_one("#whatif-form", VerticalScroll).scroll_home(animate=False)
        if self._status_written:
            self._status_written = False
            self.query_one("#whatif-status", Static).update("")
        if not self._results_drawn:
            return
        self._results_drawn = False
        table = self.query_one("#whatif-summary", DataTable)
        table.clear(columns=True)  # the columns' widths too: they grew to the last app's figures
        self._add_columns(table)
        self.query_one("#whatif-chart", WhatIfChart).clear()

    def focus_ahead(self) -> None:
        """The field a push focuses (max replicas), focused: on each push, and while the screen is painted
        ahead (kept.py), so that its footer is composed for it then (a focused field shadows the
        console's letter keys, so the footer shows fewer).  Hidden, its cursor does not blink."""
        self._focus_field = False
        self.set_focus(self.query_one(f"#field-{FIELDS[1][0]}", Input), scroll_visible=False)

    def on_screen_resume(self) -> None:
        if self._focus_field:
            # At once, before Textual's own resume handler would focus the first field (the load).
            self.focus_ahead()
        # Each push (the first backtest of the app shown) and each return from the confirmation over
        # it (nothing changed meanwhile: the same request is not sent again).  A moment after the
        # screen's first paint: an answer that came before it (the embedded engine answers at once)
        # had its chart plotted and drawn in the paint that answers the key, and a backtest running
        # (30-60 ms of CPU at 1,000 replicas, its threads' included) delayed a key right after it.
        self._schedule(OPENED_SECONDS)

    def on_screen_suspend(self) -> None:
        # Closed (or covered by the confirmation) before the backtest started: it is not run for nothing.
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None

    # --- the candidate --------------------------------------------------------------------------
    def changes(self) -> dict[str, Any]:
        """The fields that differ from the current policy."""
        found: dict[str, Any] = {}
        for key, _label in FIELDS:
            value = parse_value(self.query_one(f"#field-{key}", Input).value)
            if value != self.current_policy.get(key):
                found[key] = value
        return found

    def on_input_changed(self, event: Input.Changed) -> None:
        self._edited()

    def on_select_changed(self, event: Select.Changed) -> None:
        self._edited()

    def _edited(self) -> None:
        # Only an edit on the screen shown reruns: mounting fills every field (one Changed event each),
        # and a screen built ahead (kept.py) then ran a backtest no one saw and drew its results off
        # screen, so its first push cleared them again and laid the screen out anew (about twice the
        # CPU of a later push).  Each push schedules its own backtest (on_screen_resume).
        if self.is_active:
            self._schedule()

    def _schedule(self, seconds: float = DEBOUNCE_SECONDS) -> None:
        # Typing "120" must not run three backtests: wait until the keys stop for a moment.
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(seconds, self._debounced)

    def _debounced(self) -> None:
        # A timer runs in a task of its own: closed, the screen leaves the stack at once but handles its
        # suspend (which stops the timer) only when its messages' turn comes, and on a loaded host (load
        # 10-15) the timer fired in between and ran a backtest for a screen no one saw.
        if self.is_active:
            self.rerun()

    def rerun(self, force: bool = False) -> None:
        try:
            source = self.query_one("#whatif-source", Select).value
            trace = None if source == "history" else str(source)
            since = None if trace else parse_since(self.query_one("#whatif-since", Input).value)
            changes = self.changes()
        except NoMatches:
            # Its timer fired while the console closed: the screen's widgets were removed already, and
            # an error here would end the console with a traceback instead of quitting.
            return
        # Mounting fills every field (one Changed event each): the same request is not sent twice.
        request = repr((sorted(changes.items()), since, trace))
        if request == self._last_request and not force:
            return
        self._last_request = request
        self._run(changes, since, trace)

    @work(exclusive=True, group="whatif")
    async def _run(self, changes: dict[str, Any], since: float | None, trace: str | None) -> None:
        # A kept screen's run outlives its pop: an answer that comes while the console closes finds
        # the screen's widgets gone, and is dropped.
        with contextlib.suppress(NoMatches):
            await self._backtest(changes, since, trace)

    async def _backtest(self, changes: dict[str, Any], since: float | None, trace: str | None) -> None:
        try:
            answer = await self.backend.backtest(self.app_name, changes or None, since, trace)
        except OrchestryError as exc:
            self.error = str(exc)
            self._status_written = True
            self.query_one("#whatif-status", Static).update(f"[b]cannot backtest:[/b] {exc}")
            self.notify(str(exc), title="what-if", severity="error", timeout=10)
            self.runs += 1
            return
        self.error = ""
        self.answer = answer
        self._show(answer)
        self.runs += 1

    # --- drawing --------------------------------------------------------------------------------
    def _fill_unset_fields(self, policy: dict[str, Any]) -> None:
        """The app's policy may leave keys at their defaults: show the values the backtest used."""
        for key, _label in FIELDS:
            if self.current_policy.get(key) is None and policy.get(key) is not None:
                self.current_policy[key] = policy[key]
                field = self.query_one(f"#field-{key}", Input)
                if not field.value.strip():
                    field.value = str(policy[key])

    def _show(self, answer: dict[str, Any]) -> None:
        self._status_written = self._results_drawn = True
        self._fill_unset_fields(answer["current"]["policy"])
        table = self.query_one("#whatif-summary", DataTable)
        table.clear()
        current, candidate = answer["current"], answer["candidate"]
        for label, show in SUMMARY_ROWS:
            table.add_row(label, show(current["summary"]), show(candidate["summary"]))
        source = answer["source"].replace("trace:", "synthetic ")
        self.query_one("#whatif-status", Static).update(
            f"{answer['samples']} periods of {source} · model: {answer['model']}"
        )
        plot = self.query_one("#whatif-chart", WhatIfChart)
        plot.plotted = True
        plt = plot.plt
        plt.clear_data()
        start = answer["start"] or 0.0
        for label, run in (("current", current), ("candidate", candidate)):
            points = run["replicas"]
            if points:
                plt.plot(
                    [(t - start) / 60 for t, _ in points], [v for _, v in points], label=f"{label} replicas"
                )
        load = next(
            ((k, t) for k, t in (("rps", "req/s"), ("cpu_percent", "CPU %")) if answer["load"].get(k)), None
        )
        if load is not None:
            points = answer["load"][load[0]]
            plt.plot(
                [(t - start) / 60 for t, _ in points],
                [v for _, v in points],
                label=load[1],
                marker="braille",
                yside="right",
            )
            # From zero: plotext centres a flat line on it, so an idle app's req/s read down to -1.00.
            top = max((v for _, v in points), default=0.0)
            plt.ylim(0, top * 1.15 if top > 0 else 1, yside="right")
        plt.title(f"{self.app_name}: replicas, current vs candidate, over the {load[1] if load else 'load'}")
        plt.xlabel("minutes from the first record")
        plot.refresh()

    # --- applying -------------------------------------------------------------------------------
    def action_apply_candidate(self) -> None:
        if self.readonly:
            self.notify(
                "read-only: applying a policy is disabled (console started with --readonly)",
                severity="warning",
            )
            return
        # A follower's engine refuses it: said now, not after the dialog.
        on_follower = getattr(self.app, "refused_on_follower", None)
        if on_follower is not None and on_follower(f"applying a policy to {self.app_name}"):
            return
        changes = self.changes()
        if not changes:
            self.notify("the candidate equals the current policy: edit a field first", severity="warning")
            return
        listed = ", ".join(f"{k} {self.current_policy.get(k)} → {v}" for k, v in changes.items())

        def answered(yes: bool | None) -> None:
            if yes:
                self._apply(changes)

        confirm.ask(self.app, f"Apply to {self.app_name}: {listed}?", "Apply", answered)

    @work(group="whatif-apply")
    async def _apply(self, changes: dict[str, Any]) -> None:
        name = self.app_name
        try:
            policy = await self.backend.set_policy(name, changes)
        except OrchestryError as exc:
            self.notify(str(exc), title="not applied", severity="error", timeout=10)
            return
        self.notify(f"{name}: policy applied ({', '.join(changes)})")
        if name != self.app_name:
            return  # closed meanwhile and shown again for another app
        self.current_policy = dict(policy)
        if self in self.app.screen_stack:
            self.rerun(force=True)
        else:
            self._last_request = None  # the next push runs it

    def action_close(self) -> None:
        self.dismiss(None)
