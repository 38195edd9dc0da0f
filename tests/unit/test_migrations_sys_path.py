"""Applying the migrations leaves the directory the operator started Orchestry in off ``sys.path``: a
``core/`` or ``textual/`` folder there must not shadow the modules imported afterwards."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from core.store.db import upgrade


def test_migrations_do_not_put_the_working_directory_on_sys_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir = tmp_path / "ops"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    monkeypatch.setattr(sys, "path", list(sys.path))  # restored after the test
    before = list(sys.path)
    upgrade(f"sqlite:///{tmp_path / 'orchestry.db'}")
    added = sys.path[: len(sys.path) - len(before)]  # alembic prepends its entries
    assert sys.path[len(added) :] == before
    assert added, "the migrations were expected to make their scripts importable"  # the check is live
    assert not [entry for entry in added if Path(entry or os.curdir).resolve() == workdir.resolve()], added
