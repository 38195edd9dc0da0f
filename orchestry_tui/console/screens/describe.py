"""Describe an app: its spec as YAML (secrets already redacted by the engine), policy and status.

One screen for every app, built on first use and shown again (see kept.py): showing an app updates its
two texts, and only when they changed.
"""

from __future__ import annotations

import time
from typing import ClassVar

import yaml
from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from core.models import AppView, status_and_reason
from orchestry_tui.console.screens.kept import KeptScreen
from orchestry_tui.console.widgets.footer import SteadyFooter


def describe_yaml(app: AppView) -> str:
    """The text shown: status first (what an operator looks for), then policy, then the spec."""
    word, reason = status_and_reason(app.status, app.desired_replicas, app.status_reason)
    status = {
        "status": word,
        "reason": reason,
        "mode": app.mode,
        "desired": app.desired_replicas,
        "ready": app.ready_replicas,
        "lastScaledAt": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(app.last_scaled_at))
        if app.last_scaled_at
        else None,
    }
    sections = {"status": status, "policy": app.policy, "spec": app.spec}
    return yaml.safe_dump(sections, sort_keys=False, allow_unicode=True, width=100)


def describe_title(app: AppView) -> str:
    return f"describe {app.name}  (secrets are shown as ***)"


class DescribeScreen(KeptScreen, Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,d", "app.pop_screen", "Back", id="orchestry.describe.back"),
    ]

    def __init__(self, app_view: AppView) -> None:
        super().__init__()
        self.app_view = app_view
        self._text = describe_yaml(app_view)

    def compose(self) -> ComposeResult:
        yield Static(describe_title(self.app_view), id="describe-title", classes="screen-title")
        with VerticalScroll(id="describe"):
            yield Static(self._highlighted(), id="describe-text")
        yield SteadyFooter()

    def _highlighted(self) -> Syntax:
        return Syntax(self._text, "yaml", theme="ansi_dark", word_wrap=True)

    def show(self, app_view: AppView) -> None:
        """Show ``app_view`` from the top, as a new screen would."""
        text = describe_yaml(app_view)
        if self.is_mounted:
            if app_view.name != self.app_view.name:
                self.query_one("#describe-title", Static).update(describe_title(app_view))
            if text != self._text:
                self._text = text
                self.query_one("#describe-text", Static).update(self._highlighted())
            self.query_one("#describe", VerticalScroll).scroll_home(animate=False)
        self.app_view, self._text = app_view, text
