""" "Quit and stop every app": the one console action that takes the apps and nginx down with it.

Its own dialog (a ConfirmScreen with the consequences spelled out) so that `q` keeps meaning "close the
screen, apps keep running", and a stray `Q` or palette pick never stops anything without a second step:
Cancel has the focus, so Enter alone cancels.
"""

from __future__ import annotations

from orchestry_tui.console.screens.confirm import ConfirmScreen

CONFIRM_LABEL = "Stop everything and quit"


class QuitAndStopScreen(ConfirmScreen):
    def __init__(self, apps: int, lb_address: str, attached_to: str = "") -> None:
        if attached_to:
            question = (
                f"Stop all {apps} app(s) on the daemon at {attached_to} and quit? Their replicas are "
                "removed and they answer no request until `orchestry up NAME`; the daemon keeps running."
            )
        else:
            question = (
                f"Stop all {apps} app(s) and nginx on {lb_address}, then quit? Replicas are removed and "
                "nothing answers until the next `orchestry` (apps marked stopped stay stopped: "
                "`orchestry up NAME`)."
            )
        super().__init__(question, CONFIRM_LABEL)
