"""Changing an app's stored spec while no controller runs (what a restarted controller then finds)."""

from __future__ import annotations

from core.spec import parse_app_spec
from core.store import Store


def set_warm_pool_offline(database_url: str, name: str, size: int) -> None:
    """Write ``scaling.warmPool`` = ``size`` into the stored spec of ``name`` as the API's
    ``PUT /apps/{name}/scaling`` would, but straight into the store (no controller is running)."""
    store = Store.open(database_url)
    try:
        record = store.apps.get(name)
        assert record is not None, f"no app '{name}' in the store"
        spec = parse_app_spec({**record.spec, "scaling": {**record.spec["scaling"], "warmPool": size}})
        document = spec.to_document()
        store.apps.update(name, spec=document, spec_hash=spec.spec_hash(), policy=document["scaling"])
    finally:
        store.close()
