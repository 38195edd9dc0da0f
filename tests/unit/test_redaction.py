"""The redactor hides every registered secret value wherever it appears."""

from __future__ import annotations

import io
import logging
import threading

from hypothesis import given
from hypothesis import strategies as st

from core.redaction import RedactingFilter, Redactor, install_log_redaction


def test_redacts_every_occurrence_and_leaves_other_text() -> None:
    redactor = Redactor()
    redactor.add("hunter22")
    assert redactor.redact("pw=hunter22; again hunter22.") == "pw=***; again ***."
    assert redactor.redact("nothing secret here") == "nothing secret here"


def test_short_values_are_not_registered() -> None:
    redactor = Redactor()
    for value in ("", "a", "on", "yes"):
        redactor.add(value)
    assert len(redactor) == 0
    assert redactor.redact("a yes on") == "a yes on"


def test_a_secret_containing_another_is_masked_whole() -> None:
    redactor = Redactor()
    redactor.add("abcd")
    redactor.add("xxabcdxx")
    assert redactor.redact("token xxabcdxx and abcd") == "token *** and ***"


def test_regex_characters_in_secrets_are_literal() -> None:
    redactor = Redactor()
    redactor.add("p.a*s$s(1")
    assert redactor.redact("p.a*s$s(1 pXaas") == "*** pXaas"


def test_redact_obj_walks_dicts_lists_and_keys() -> None:
    redactor = Redactor()
    redactor.add("s3cr3t!")
    document = {
        "env": [{"name": "PASSWORD", "value": "s3cr3t!"}, ("x", "s3cr3t!-suffix")],
        "s3cr3t!": 1,
        "count": 3,
        "flag": None,
    }
    assert redactor.redact_obj(document) == {
        "env": [{"name": "PASSWORD", "value": "***"}, ["x", "***-suffix"]],
        "***": 1,
        "count": 3,
        "flag": None,
    }
    assert document["env"][0]["value"] == "s3cr3t!"  # the original is untouched


@given(
    secret=st.text(min_size=4, max_size=30).filter(lambda s: s.strip() == s and s),
    before=st.text(max_size=30),
    after=st.text(max_size=30),
)
def test_a_registered_secret_never_survives_redaction(secret: str, before: str, after: str) -> None:
    redactor = Redactor()
    redactor.add(secret)
    assert secret not in redactor.redact(before + secret + after)


def test_concurrent_adds_and_redacts() -> None:
    redactor = Redactor()
    values = [f"value-{i:04d}" for i in range(400)]

    def add(chunk: list[str]) -> None:
        for value in chunk:
            redactor.add(value)
            redactor.redact(f"x {value} y")

    threads = [threading.Thread(target=add, args=(values[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(redactor) == 400
    assert redactor.redact(" ".join(values)) == " ".join(["***"] * 400)


def _logger_with_filter(redactor: Redactor) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger(f"test-redaction-{id(stream)}")
    logger.propagate = False
    logger.addHandler(handler)
    install_log_redaction(logger, redactor)
    return logger, stream


def test_log_filter_scrubs_message_args_and_tracebacks() -> None:
    redactor = Redactor()
    redactor.add("planted-password")
    logger, stream = _logger_with_filter(redactor)
    logger.warning("connecting with %s to %s", "planted-password", "db")
    logger.warning("inline planted-password")
    try:
        raise ValueError("bad credential planted-password")
    except ValueError:
        logger.exception("failed")
    output = stream.getvalue()
    assert "planted-password" not in output
    assert "WARNING connecting with *** to db" in output
    assert "ValueError: bad credential ***" in output


def test_log_filter_keeps_records_with_broken_format_strings() -> None:
    redactor = Redactor()
    redactor.add("planted-password")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d planted-password", ("nan",), None)
    assert RedactingFilter(redactor).filter(record) is True
    assert "planted-password" not in record.getMessage()
