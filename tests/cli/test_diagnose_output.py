"""`orchestry diagnose -o PATH`: a path that cannot be written is one line before the daemon builds the
bundle (it was a FileNotFoundError traceback after the download), and a directory receives the bundle
under the daemon's file name (it was IsADirectoryError)."""

from __future__ import annotations

import tarfile
from pathlib import Path

from tests.cli.conftest import Daemon


def test_a_missing_directory_is_refused_before_the_download(daemon: Daemon, tmp_path: Path) -> None:
    target = tmp_path / "no-such-dir" / "bundle.tgz"
    result = daemon.cli("diagnose", "-o", str(target))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: -o {target}: cannot write into {target.parent} (no such directory, or not writable)\n"
    )


def test_a_directory_receives_the_bundle_under_its_own_name(daemon: Daemon, tmp_path: Path) -> None:
    folder = tmp_path / "bundles"
    folder.mkdir()
    result = daemon.cli("diagnose", "-o", str(folder), "--format", "json")
    assert result.returncode == 0, result.stderr
    [written] = list(folder.iterdir())
    assert written.name.startswith("orchestry-diagnostics-") and written.name.endswith(".tar.gz")
    assert str(written) in result.stdout
    with tarfile.open(written) as bundle:
        assert any(name.endswith("snapshot.json") for name in bundle.getnames())
