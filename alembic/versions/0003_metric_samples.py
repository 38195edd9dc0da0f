"""Metric history: per-app figures per scaling period, rolled up with age (core/history.py).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FIGURES = (
    "rps",
    "p95_latency_ms",
    "cpu_percent",
    "memory_percent",
    "active_connections",
    "ready_replicas",
    "desired_replicas",
)


def upgrade() -> None:
    op.create_table(
        "metric_samples",
        sa.Column("app", sa.String(63), primary_key=True),
        sa.Column("resolution", sa.Double, primary_key=True),
        sa.Column("at", sa.Double, primary_key=True),
        sa.Column("periods", sa.Integer, nullable=False),
        *(
            sa.Column(name, sa.Double, nullable=name not in ("ready_replicas", "desired_replicas"))
            for figure in FIGURES
            for name in (figure, f"{figure}_max")
        ),
    )
    op.create_index("ix_metric_samples_app_at", "metric_samples", ["app", "at"])


def downgrade() -> None:
    op.drop_index("ix_metric_samples_app_at", table_name="metric_samples")
    op.drop_table("metric_samples")
