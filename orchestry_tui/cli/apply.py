"""``orchestry apply PATH...``: register every app found (replacing what exists) and start it.

Like ``kubectl apply -f``: every document is first checked by the daemon's dry run
(``POST /api/v1/validate``: the same validation as register, plus the secrets and the image ``up``
needs), and a single problem anywhere means nothing is applied (``--allow-missing-images`` lets an app
whose image is missing be registered without being started, as before).  Then each app is registered
(only when its spec differs from the daemon's) and started, and reported as created, updated or
unchanged.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass
from typing import Any

from orchestry_tui.cli import output, wait
from orchestry_tui.cli.manifests import Document, Inputs, read_inputs
from orchestry_tui.client.http import ApiClient, ApiError, DaemonUnreachable, path_part

EXIT_BAD_INPUT = 2


@dataclass
class Planned:
    document: Document
    app: str
    change: str  # what the dry run foresaw: created | updated | unchanged
    spec_hash: str


@dataclass
class Applied:
    app: str
    source: str
    document: int
    result: str  # created | updated | unchanged | failed
    spec_hash: str
    replicas: int | None = None
    started: int | None = None
    adopted: int | None = None
    error: str = ""


def _missing_secret_problem(document: Document, app: str, missing: dict[str, str]) -> str:
    return (
        f"{document.where(app)}: spec.environment {missing['variable']} refers to field "
        f"'{missing['field']}' of secret '{missing['secret']}', which does not exist: create it with "
        f"`orchestry secret set {missing['secret']} {missing['field']}=VALUE`"
    )


def plan(
    client: ApiClient, inputs: Inputs, allow_missing_images: bool = False
) -> tuple[list[Planned], list[str]]:
    """Dry-run every document against the daemon; every problem found, each naming its document."""
    problems = list(inputs.problems)
    planned: list[Planned] = []
    names: list[tuple[str, Document]] = []
    for document in inputs.documents:
        try:
            preview = client.post("/api/v1/validate", document.body)
        except DaemonUnreachable as exc:
            if not problems:
                raise
            problems.append(f"{exc}; the documents from {document.where()} on were not checked")
            break
        except ApiError as exc:
            if exc.status not in (400, 422):
                raise
            problems.append(f"{document.where()}: {exc.detail}")
            if document.name:
                names.append((document.name, document))
            continue
        app = preview["app"]
        names.append((app, document))
        problems += [_missing_secret_problem(document, app, m) for m in preview["missing_secrets"]]
        # .get: a daemon older than this CLI does not check images (its `up` still reports one missing).
        image_problem = preview.get("image_problem")
        if image_problem and allow_missing_images:
            output.note(f"warning: {document.where(app)}: {image_problem}; it will not start")
        elif image_problem:
            problems.append(
                f"{document.where(app)}: {image_problem}; or pass --allow-missing-images to apply the "
                "rest and register this app without starting it"
            )
        planned.append(Planned(document, app, preview["change"], preview["spec_hash"]))
    first: dict[str, Document] = {}
    for app, document in names:
        if app in first:
            earlier = first[app]
            problems.append(
                f"app '{app}' is defined twice: in {earlier.source} (document {earlier.index}) and in "
                f"{document.source} (document {document.index}): keep one of them"
            )
        else:
            first[app] = document
    return planned, problems


def apply_planned(client: ApiClient, planned: list[Planned]) -> list[Applied]:
    """Register what changed and start every app; a failure is reported for its app, not raised."""
    rows: list[Applied] = []
    for item in planned:
        row = Applied(item.app, item.document.source, item.document.index, item.change, item.spec_hash)
        rows.append(row)
        if item.change != "unchanged":
            try:
                answer = client.post("/api/v1/apps", item.document.body, replace="true")
            except ApiError as exc:
                row.result, row.error = "failed", exc.detail
                continue
            row.result = "created" if answer["created"] else "updated"
        try:
            started = client.post(f"/api/v1/apps/{path_part(item.app)}/up")
        except ApiError as exc:
            registered = "already registered" if item.change == "unchanged" else "registered"
            row.error = f"{registered} but not started: {exc.detail}"
            continue
        row.replicas, row.started, row.adopted = started["replicas"], started["started"], started["adopted"]
    return rows


def _print_rows(rows: list[Applied]) -> None:
    output.print_table(
        ("APP", "RESULT", "REPLICAS", "SOURCE"),
        [
            [
                row.app,
                row.result,
                "-" if row.replicas is None else row.replicas,
                f"{row.source} #{row.document}",
            ]
            for row in rows
        ],
    )


def apply(client: ApiClient, args: argparse.Namespace) -> int:
    as_json = args.format == "json"
    paths = [*args.filenames, *args.paths]
    if not paths:
        output.error("name what to apply: `orchestry apply PATH...` or `-f PATH` (a file, a directory, or -)")
        return EXIT_BAD_INPUT
    inputs = read_inputs(paths, sys.stdin.read)
    planned, problems = plan(client, inputs, args.allow_missing_images)
    if problems:
        for problem in problems:
            output.error(problem)
        output.error(f"nothing was applied: fix the {len(problems)} problem(s) above and apply again")
        if as_json:
            output.print_json({"apps": [], "errors": problems})
        return EXIT_BAD_INPUT
    rows = apply_planned(client, planned)
    if not as_json:
        _print_rows(rows)
    for row in rows:
        if row.error:
            output.error(f"{row.app} ({row.source}, document {row.document}): {row.error}")
    code = 1 if any(row.error for row in rows) else 0
    answer: dict[str, Any] = {"apps": [asdict(row) for row in rows]}
    started = [row.app for row in rows if not row.error]
    return wait.finish(client, answer, started, args, code)
