"""The engine bench/fleet.py and bench/console_fleet.py drive: the real Engine on the in-memory runtime
(simulated replicas, each at 5 % CPU so the metrics windows have something), a recording LB and ports,
production scaler, metrics and relist periods.

Imports are made at the call, not at module load: the benches run it against another checkout with
``PYTHONPATH`` set (``--baseline``), and that tree's modules must be the ones imported.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any


def memory_fleet_engine(state_dir: Path, node_prefix: str, **overrides: Any) -> tuple[Any, Any]:
    """(engine, runtime), not started; ``overrides`` are settings (e.g. ``lease_ttl``)."""
    from core.engine import Engine
    from core.lb.memory import MemoryNginx
    from core.runtime.memory import MemoryPorts, MemoryRuntime
    from core.settings import Settings, load_settings

    runtime = MemoryRuntime()
    runtime.on_create = lambda c: setattr(c, "cpu_percent", 5.0)

    async def drained(port: int, timeout: float, host: str = "127.0.0.1") -> bool:
        return True

    periods = ("scaler_interval", "metrics_interval", "relist_interval")
    production = {k: Settings.model_fields[k].default for k in periods}
    settings = load_settings(
        env_file=None,
        state_dir=state_dir,
        node_id=f"{node_prefix}-{uuid.uuid4().hex[:6]}",
        lb_listen="127.0.0.1:1",
        drain_timeout=5.0,
        **{**production, **overrides},
    )
    engine = Engine(
        settings,
        runtime=runtime,
        probe=runtime.probe,
        drained=drained,
        nginx=MemoryNginx(),
        ports=MemoryPorts(),
    )
    return engine, runtime
