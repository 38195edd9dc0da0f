"""Layouts, preferences, keymap, theme and natural order, on fixed data (no Docker)."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Tabs

from core.settings import load_settings
from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.fixed_backend import sample_backend
from orchestry_tui.console.layout import Layout, LayoutError
from orchestry_tui.console.natural import natural_key
from orchestry_tui.console.preferences import load, save
from orchestry_tui.console.widgets.cluster_pane import ClusterPane
from orchestry_tui.console.widgets.keyed_table import KeyedTable
from orchestry_tui.console.widgets.log_pane import LogPane
from tests.tui.conftest import until


def console(prefs: Path, readonly: bool = False) -> OrchestryConsole:
    return OrchestryConsole(sample_backend(), readonly=readonly, poll_seconds=3600, preferences_path=prefs)


async def first_frame(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, OrchestryConsole)
    await until(lambda: app.frames_applied >= 1, what="first frame")
    await pilot.pause()


def test_names_sort_as_people_count() -> None:
    names = ["app10", "app2", "App1", "app1-b", "web", "app1"]
    assert sorted(names, key=natural_key) == ["App1", "app1", "app1-b", "app2", "app10", "web"]


def test_layout_from_the_config_file_rejects_bad_values_by_name() -> None:
    layout = Layout.from_config({"hidden": ["cluster"], "bottom_height": 9, "side_split": 30})
    assert layout.shown() == ["apps", "replicas", "charts", "events", "logs"]
    assert layout.rows["bottom"] == 9 and layout.splits["side"] == 30
    with pytest.raises(LayoutError, match="bottom_height"):
        Layout.from_config({"bottom_height": 99})
    with pytest.raises(LayoutError, match="'colour' is not a layout key"):
        Layout.from_config({"colour": 1})
    with pytest.raises(LayoutError, match="hidden"):
        Layout.from_config({"hidden": ["nope"]})


def test_preferences_are_saved_beside_the_settings_which_still_load(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('# my settings\nport = 8123\n\n[console]\ntheme = "nord"\n')
    prefs = load(path)
    assert prefs.theme == "nord" and not prefs.problems
    prefs.theme = "textual-light"
    prefs.keymap = {"orchestry.scale": "S"}
    prefs.layout.hidden = {"cluster"}
    save(path, prefs)
    text = path.read_text()
    assert text.startswith("# my settings\nport = 8123\n")  # the user's lines are kept
    again = load(path)
    assert again.theme == "textual-light" and again.keymap == {"orchestry.scale": "S"}
    assert again.layout.hidden == {"cluster"}
    assert tomllib.loads(text)["port"] == 8123
    assert load_settings(config_file=path, env_file=None).port == 8123  # [console] is not a setting


def test_a_bad_console_table_is_reported_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[console]\ncolour = "red"\n[console.layout]\ntop_height = 0\n')
    prefs = load(path)
    assert any("'colour' is not a console preference" in p for p in prefs.problems)
    assert any("top_height" in p for p in prefs.problems)
    assert prefs.layout.rows == Layout().rows


async def test_a_pane_key_hides_and_shows_it_and_the_choice_is_remembered(tmp_path: Path) -> None:
    prefs = tmp_path / "config.toml"
    app = console(prefs)
    async with app.run_test(size=(200, 50)) as pilot:
        await first_frame(pilot)
        cluster = app.query_one(ClusterPane)
        assert cluster.display and cluster.view is not None  # the overview was read for the pane
        await pilot.press("6")
        await pilot.pause()
        assert not cluster.display and not app.query_one("#row-top").region.width == 0
        await pilot.press("5")  # the logs pane: hidden, so its stream stops
        await pilot.pause()
        assert not app.query_one(LogPane).display and not app.query_one(LogPane).active
        await pilot.press("plus", "plus")  # the focused apps pane's row grows
        await pilot.pause()
    saved = load(prefs)
    assert saved.layout.hidden == {"cluster", "logs"} and saved.layout.rows["top"] == 5

    again = console(prefs)
    async with again.run_test(size=(200, 50)) as pilot:
        await first_frame(pilot)
        assert not again.query_one(ClusterPane).display and not again.query_one(LogPane).display
        await pilot.press("6")
        await pilot.pause()
        assert again.query_one(ClusterPane).display
    assert load(prefs).layout.hidden == {"logs"}


async def test_at_80x24_panes_become_tabs_and_never_overlap(tmp_path: Path) -> None:
    app = console(tmp_path / "config.toml")
    async with app.run_test(size=(80, 24)) as pilot:
        await first_frame(pilot)
        tabs = app.query_one("#pane-tabs", Tabs)
        assert tabs.display and app.compact
        tab_keys = (("3", "charts"), ("4", "events"), ("5", "logs"), ("6", "cluster"), ("2", "replicas"))
        for key, pane in tab_keys:
            await pilot.press(key)
            await pilot.pause()
            assert tabs.active == f"tab-{pane}"
            shown = [w for w in app.query(".pane") if w.display and w.region.area]
            assert {w.id for w in shown} == {"apps-pane", app_pane_id(pane)}
            apps, other = sorted((w.region for w in shown), key=lambda r: r.y)
            assert apps.bottom <= other.y  # one above the other, never overlapping
            assert other.bottom <= app.size.height - 1  # the footer stays visible
        table = app.query_one("#apps", KeyedTable)
        assert table.row_count == 2 and app.query_one("#apps-pane").region.height >= 5


async def test_a_terminal_shrunk_to_80x24_switches_to_tabs_and_back_when_enlarged(tmp_path: Path) -> None:
    """The layout follows the terminal as it is resized, not only the size it had at start."""
    app = console(tmp_path / "config.toml")
    async with app.run_test(size=(200, 50)) as pilot:
        await first_frame(pilot)
        tabs = app.query_one("#pane-tabs", Tabs)
        assert not tabs.display and not app.compact
        await pilot.resize_terminal(80, 24)
        await until(lambda: app.compact, what="compact layout after shrinking")
        await pilot.pause()
        assert tabs.display
        shown = [w for w in app.query(".pane") if w.display and w.region.area]
        active = str(tabs.active).removeprefix("tab-")
        assert {w.id for w in shown} == {"apps-pane", app_pane_id(active)}  # apps above one tab
        apps, other = sorted((w.region for w in shown), key=lambda r: r.y)
        assert apps.bottom <= other.y and other.bottom <= app.size.height - 1
        await pilot.resize_terminal(200, 50)
        await until(lambda: not app.compact, what="full layout after enlarging")
        await pilot.pause()
        assert not tabs.display and app.query_one(ClusterPane).display


async def test_at_80_columns_the_footer_keeps_help_and_quit_in_view(tmp_path: Path) -> None:
    """Every key's label does not fit in 80 columns: the cut tail was "? Help  q Quit", the two keys a
    newcomer needs.  They come first there, and the keys keep their order on a wide terminal."""
    app = console(tmp_path / "config.toml")
    async with app.run_test(size=(200, 50)) as pilot:
        await first_frame(pilot)
        wide = footer_line(app)
        assert wide.startswith(" s Scale") and wide.rstrip().endswith("? Help  q Quit")
        await pilot.resize_terminal(80, 24)
        await until(lambda: footer_line(app).startswith("? Help q Quit s Scale"), what="narrow footer")
        await pilot.resize_terminal(200, 50)
        await until(lambda: footer_line(app) == wide, what="wide footer again")


def footer_line(app: OrchestryConsole) -> str:
    return app.screen._compositor.render_strips()[-1].text


def app_pane_id(pane: str) -> str:
    return {"charts": "charts", "events": "events", "logs": "logs-pane"}.get(pane, f"{pane}-pane")


async def test_a_keymap_in_the_config_file_rebinds_a_key(tmp_path: Path) -> None:
    prefs = tmp_path / "config.toml"
    prefs.write_text('[console.keymap]\n"orchestry.describe" = "D"\n')
    app = console(prefs)
    async with app.run_test(size=(160, 45)) as pilot:
        await first_frame(pilot)
        await pilot.press("d")  # no longer bound
        await pilot.pause(0.2)
        assert len(app.screen_stack) == 1
        await pilot.press("D")
        await until(lambda: type(app.screen).__name__ == "DescribeScreen", what="describe opened by D")


async def test_the_light_theme_is_chosen_and_remembered(tmp_path: Path) -> None:
    prefs = tmp_path / "config.toml"
    app = console(prefs)
    async with app.run_test(size=(160, 45)) as pilot:
        await first_frame(pilot)
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert app.theme == "textual-light"
    assert load(prefs).theme == "textual-light"
    again = console(prefs)
    async with again.run_test(size=(160, 45)) as pilot:
        await first_frame(pilot)
        assert again.theme == "textual-light"


async def test_new_apps_take_their_natural_place(tmp_path: Path) -> None:
    backend = sample_backend()
    web = backend.apps[0]

    backend.apps = [replace(web, name=n) for n in ("app1", "app2", "app11")]
    app = OrchestryConsole(backend, poll_seconds=3600, preferences_path=tmp_path / "c.toml")
    async with app.run_test(size=(160, 45)) as pilot:
        await first_frame(pilot)
        table = app.query_one("#apps", KeyedTable)
        backend.apps = [*backend.apps, replace(web, name="app10")]
        frames = app.frames_applied
        app.refresh_now()
        await until(lambda: app.frames_applied > frames, what="a refresh")
        await pilot.pause()
        order = [table.coordinate_to_cell_key((row, 0)).row_key.value for row in range(table.row_count)]
        assert order == ["app1", "app2", "app10", "app11"]
        assert table.selected_key == "app1"


@pytest.mark.parametrize("key", ["question_mark", "s", "r"])
async def test_at_80x24_a_dialog_fits_the_screen(tmp_path: Path, key: str) -> None:
    """Help is 110 columns wide: at 80 its right edge and the keys' notes were cut off."""
    app = console(tmp_path / "config.toml")
    async with app.run_test(size=(80, 24)) as pilot:
        await first_frame(pilot)
        await pilot.press(key)
        await until(lambda: bool(app.screen.query("#dialog")), what="the dialog")
        await pilot.pause()
        dialog = app.screen.query_one("#dialog")
        assert dialog.region.x >= 0 and dialog.region.right <= 80, dialog.region
