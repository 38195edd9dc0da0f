"""Describe an app: its spec as YAML (secrets already redacted by the engine), policy and status."""

from __future__ import annotations

import time
from typing import ClassVar

import yaml
from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from core.models import AppView


def describe_yaml(app: AppView) -> str:
    """The text shown: status first (what an operator looks for), then policy, then the spec."""
    status = {
        "status": app.status,
        "reason": app.status_reason,
        "mode": app.mode,
        "desired": app.desired_replicas,
        "ready": app.ready_replicas,
        "lastScaledAt": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(app.last_scaled_at))
        if app.last_scaled_at
        else None,
    }
    sections = {"status": status, "policy": app.policy, "spec": app.spec}
    return yaml.safe_dump(sections, sort_keys=False, allow_unicode=True, width=100)


class DescribeScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,d", "app.pop_screen", "Back", id="orchestry.describe.back"),
    ]

    def __init__(self, app_view: AppView) -> None:
        super().__init__()
        self.app_view = app_view

    def compose(self) -> ComposeResult:
        yield Static(f"describe {self.app_view.name}  (secrets are shown as ***)", classes="screen-title")
        with VerticalScroll(id="describe"):
            yield Static(Syntax(describe_yaml(self.app_view), "yaml", theme="ansi_dark", word_wrap=True))
        yield Footer()
