"""`orchestry stop` (or `down --all`) refused while a console runs on the state dir told the user to quit
it "with Q (quit and stop every app)"; Q on a console that follows another controller does not stop the
apps (it says so and stays open), and the command stops them itself once the console is gone: quitting
with q is the whole fix, whichever console it is."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from pathlib import Path

import pytest

from core import presence, teardown


def test_stop_refused_by_a_console_says_quit_it_with_q(tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "orchestry"  # a process whose command line reads like a console's
    fake.parent.mkdir()
    fake.symlink_to("/bin/sleep")
    console = subprocess.Popen([str(fake), "60"])
    try:
        state = tmp_path / "state"
        (state / presence.DIRECTORY).mkdir(parents=True)
        entry = presence.Controller(
            console.pid,
            "node-c",
            "http://127.0.0.1:1",
            "127.0.0.1:2",
            str(state),
            time.time(),
            presence._process_start(console.pid),
        )
        (state / presence.DIRECTORY / f"{console.pid}.json").write_text(json.dumps(dataclasses.asdict(entry)))
        with pytest.raises(teardown.ControllerRunning) as refused:
            teardown._refuse_live_controllers(state)
        message = str(refused.value)
        assert f"quit console pid {console.pid} (q)" in message and "with Q" not in message
    finally:
        console.kill()
        console.wait()
