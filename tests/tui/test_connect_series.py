"""The desired-replicas chart a console attached to a daemon draws, rebuilt from the daemon's store."""

from __future__ import annotations

from core.services.app_views import desired_series


def test_scalings_become_steps_and_the_line_ends_now_at_the_current_count() -> None:
    points = desired_series(100.0, 200.0, 5, True, [(120.0, 1, 3), (150.0, 3, 5)], [])
    assert points == [
        (100.0, 1.0),
        (120.0, 1.0),
        (120.0, 3.0),
        (150.0, 3.0),
        (150.0, 5.0),
        (200.0, 5.0),
    ]


def test_a_stopped_stretch_reads_zero_and_up_restores_the_count() -> None:
    points = desired_series(100.0, 200.0, 2, True, [], [(130.0, False), (170.0, True)])
    assert points == [(100.0, 2.0), (130.0, 2.0), (130.0, 0.0), (170.0, 0.0), (170.0, 2.0), (200.0, 2.0)]


def test_a_stopped_app_without_history_is_flat_zero() -> None:
    assert desired_series(100.0, 200.0, 3, False, [], []) == [(100.0, 0.0), (200.0, 0.0)]


def test_records_outside_the_window_are_ignored() -> None:
    points = desired_series(100.0, 200.0, 4, True, [(50.0, 1, 4)], [(60.0, True)])
    assert points == [(100.0, 4.0), (200.0, 4.0)]


def test_a_scale_while_stopped_shows_only_when_started() -> None:
    points = desired_series(100.0, 200.0, 6, True, [(140.0, 2, 6)], [(120.0, False), (160.0, True)])
    assert points == [(100.0, 2.0), (120.0, 2.0), (120.0, 0.0), (160.0, 0.0), (160.0, 6.0), (200.0, 6.0)]
