"""Parsing nginx's JSON access log lines, and tailing the file through truncation and rotation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.metrics.accesslog import AccessLogTailer, _parse_json, last_item, parse_line


def line(**overrides: object) -> str:
    record: dict[str, object] = {
        "t": 1700000000.123,
        "app": "web",
        "status": 200,
        "rt": 0.012,
        "ua": "127.0.0.1:20001",
        "us": "200",
        "urt": "0.011",
        "m": "GET",
        "bytes": 42,
    }
    record.update(overrides)
    return json.dumps(record)


def test_parses_a_normal_line() -> None:
    record = parse_line(line())
    assert record is not None
    assert record.timestamp == 1700000000.123 and record.app == "web" and record.status == 200
    assert record.request_time_ms == pytest.approx(12.0)
    assert record.upstream == "127.0.0.1:20001"
    assert record.upstream_status == 200 and record.upstream_time_ms == pytest.approx(11.0)
    assert record.method == "GET" and record.body_bytes == 42


def test_on_retries_the_last_upstream_is_the_one_that_answered() -> None:
    record = parse_line(
        line(ua="127.0.0.1:20001, 127.0.0.1:20002", us="502, 200", urt="0.001, 0.020", status=200)
    )
    assert record is not None
    assert record.upstream == "127.0.0.1:20002"
    assert record.upstream_status == 200 and record.upstream_time_ms == pytest.approx(20.0)


def test_internal_redirect_groups_take_the_last_item() -> None:
    record = parse_line(
        line(ua="127.0.0.1:1, 127.0.0.1:2 : 127.0.0.1:3", us="502, 504 : 200", urt="0.1, 0.2 : 0.3")
    )
    assert record is not None
    assert record.upstream == "127.0.0.1:3" and record.upstream_status == 200
    assert record.upstream_time_ms == pytest.approx(300.0)


def test_no_upstream_contacted() -> None:
    record = parse_line(line(ua="-", us="-", urt="-", status=404, app=""))
    assert record is not None
    assert record.upstream is None and record.upstream_status is None and record.upstream_time_ms is None
    assert record.app == "" and record.status == 404


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "not json",
        "[1, 2]",
        '{"t": 1}',
        line(t="yesterday"),
        line(status="ok"),
        line(rt=None),
        line(app=5),
        '{"t":1700000000.1,"app":"web","status":200,"rt":0.0',  # cut short
        "\x00\xff\xfe",
    ],
)
def test_garbage_gives_none(garbage: str) -> None:
    assert parse_line(garbage) is None


@given(st.text(max_size=300))
def test_never_raises_on_any_text(text: str) -> None:
    parse_line(text)


def nginx_line(record: dict[str, object]) -> str:
    """As nginx writes the template's log_format: compact, fields in its order."""
    return json.dumps(record, separators=(",", ":"))


_upstream_lists = st.lists(st.sampled_from(["127.0.0.1:20001", "10.0.0.7:8080", "[::1]:20002"]), max_size=3)


@given(
    t=st.integers(0, 2_000_000_000_000).map(lambda ms: ms / 1000),
    app=st.sampled_from(["", "web", "api-v2", "a.b_c"]),
    status=st.integers(100, 599),
    rt=st.integers(0, 600_000).map(lambda ms: ms / 1000),
    upstreams=_upstream_lists,
    method=st.sampled_from(["GET", "POST", "PROPFIND", ""]),
    size=st.integers(0, 10**9),
)
def test_a_line_as_nginx_writes_it_reads_as_its_json_says(
    t: float, app: str, status: int, rt: float, upstreams: list[str], method: str, size: int
) -> None:
    """Lines in the template's exact format take a quicker reading than JSON's: the same record."""
    ua = ", ".join(upstreams) or "-"
    us = ", ".join("502" if i < len(upstreams) - 1 else "200" for i in range(len(upstreams))) or "-"
    urt = ", ".join(f"{0.001 * (i + 1):.3f}" for i in range(len(upstreams))) or "-"
    text = nginx_line(
        {
            "t": t,
            "app": app,
            "status": status,
            "rt": rt,
            "ua": ua,
            "us": us,
            "urt": urt,
            "m": method,
            "bytes": size,
        }
    )
    record = parse_line(text)
    assert record is not None and record == _parse_json(text)
    assert record.upstream == (upstreams[-1] if upstreams else None)
    assert record.request_time_ms == pytest.approx(rt * 1000)


def test_lines_the_quick_reading_does_not_match_still_read_as_json() -> None:
    base = {"t": 1700000000.5, "app": "web", "status": 200, "rt": 0.01, "ua": "-", "us": "-", "urt": "-"}
    for text in (
        " " + nginx_line({**base, "m": "GET", "bytes": 1}),  # a leading space
        nginx_line({**base, "app": 'w"eb', "m": "GET", "bytes": 1}),  # an escape
        nginx_line({**base, "m": "GET"}),  # a field missing
        nginx_line({"bytes": 1, "m": "GET", **base}),  # another order
        nginx_line({**base, "rt": 1e-05, "m": "GET", "bytes": 1}),  # an exponent
    ):
        record = parse_line(text)
        assert record is not None and record == _parse_json(text), text
        assert record.status == 200


def test_last_item() -> None:
    assert last_item("-") is None
    assert last_item("a, b") == "b"
    assert last_item("a : b, c") == "c"


# -- tailing -----------------------------------------------------------------------------------------


def append(path: Path, text: str) -> None:
    with open(path, "a") as handle:
        handle.write(text)


def test_missing_file_reads_nothing_until_it_appears(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    tailer = AccessLogTailer(path)
    assert tailer.read_new() == [] and not tailer.exists
    append(path, line(status=201) + "\n")
    assert [r.status for r in tailer.read_new()] == [201]
    assert tailer.exists


def test_reads_only_what_was_appended(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    append(path, line(status=200) + "\n" + line(status=201) + "\n")
    tailer = AccessLogTailer(path)
    assert [r.status for r in tailer.read_new()] == [200, 201]
    assert tailer.read_new() == []
    append(path, line(status=202) + "\n")
    assert [r.status for r in tailer.read_new()] == [202]


def test_partial_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    full = line(status=503)
    append(path, full[:20])
    tailer = AccessLogTailer(path)
    assert tailer.read_new() == []
    append(path, full[20:])
    assert tailer.read_new() == []
    append(path, "\n")
    assert [r.status for r in tailer.read_new()] == [503]


def test_truncation_restarts_from_the_beginning(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    append(path, "".join(line(status=200) + "\n" for _ in range(5)))
    tailer = AccessLogTailer(path)
    assert len(tailer.read_new()) == 5
    path.write_text(line(status=500) + "\n")  # copytruncate
    assert [r.status for r in tailer.read_new()] == [500]


def test_rotation_by_rename_reads_the_new_file(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    append(path, line(status=200) + "\n")
    tailer = AccessLogTailer(path)
    assert len(tailer.read_new()) == 1
    os.rename(path, tmp_path / "access.log.1")
    assert tailer.read_new() == []  # rotated away, nginx has not reopened yet
    append(path, line(status=204) + "\n" + line(status=205) + "\n")
    assert [r.status for r in tailer.read_new()] == [204, 205]


def test_lines_written_to_the_old_file_before_nginx_reopens_are_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    append(path, line(status=200) + "\n")
    tailer = AccessLogTailer(path)
    assert len(tailer.read_new()) == 1
    os.rename(path, tmp_path / "access.log.1")
    append(path, line(status=201) + "\n")  # the new file appears (reopen by the master) ...
    append(tmp_path / "access.log.1", line(status=202) + "\n")  # ... while a worker still has the old
    assert [r.status for r in tailer.read_new()] == [202]
    assert [r.status for r in tailer.read_new()] == [201]


def test_a_huge_backlog_is_read_in_bounded_chunks(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    one = line() + "\n"
    append(path, one * 1000)
    tailer = AccessLogTailer(path, max_read_bytes=len(one) * 100 + 10)
    counts = []
    while batch := tailer.read_new():
        counts.append(len(batch))
    assert sum(counts) == 1000 and max(counts) <= 101 and len(counts) >= 10


def test_start_backlog_reads_only_the_tail_of_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    one = line() + "\n"
    append(path, one * 100)
    tailer = AccessLogTailer(path, start_backlog=len(one) * 10 + 5)
    assert len(tailer.read_new()) == 10  # the cut line before them is dropped, not misparsed
    append(path, line(status=418) + "\n")
    assert [r.status for r in tailer.read_new()] == [418]


def test_garbage_lines_are_skipped_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    append(path, "junk\n" + line(status=200) + "\n\n{broken\n" + line(status=502) + "\n")
    assert [r.status for r in AccessLogTailer(path).read_new()] == [200, 502]
