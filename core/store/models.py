"""Table definitions (SQLAlchemy Core).

These mirror ``alembic/versions``; the migrations are the source of truth for the schema, these
tables are what the repositories query.  Times are epoch seconds stored as double precision, so both
dialects compare and order them the same way and the records need no timezone handling.
"""

from __future__ import annotations

import sqlalchemy as sa

from core.history import FIGURES

metadata = sa.MetaData()

applications = sa.Table(
    "applications",
    metadata,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("raw", sa.JSON, nullable=False),
    sa.Column("spec_hash", sa.String(128), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("status_reason", sa.Text, nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("desired_replicas", sa.Integer, nullable=False),
    sa.Column("policy", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Column("last_scaled_at", sa.Double, nullable=True),
    sa.Column("generation", sa.Integer, nullable=False),
)

instances = sa.Table(
    "instances",
    metadata,
    sa.Column("app", sa.String(63), sa.ForeignKey("applications.name", ondelete="CASCADE"), primary_key=True),
    sa.Column("slot", sa.Integer, primary_key=True),
    sa.Column("container_id", sa.String(128), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("port", sa.Integer, nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("ready", sa.Boolean, nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("restarts", sa.Integer, nullable=False),
    sa.Column("last_check_at", sa.Double, nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("app", sa.String(63), nullable=True, index=True),
    sa.Column("category", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("timestamp", sa.Double, nullable=False, index=True),
)

scaling_history = sa.Table(
    "scaling_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("app", sa.String(63), sa.ForeignKey("applications.name", ondelete="CASCADE"), nullable=False),
    sa.Column("from_replicas", sa.Integer, nullable=False),
    sa.Column("to_replicas", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("timestamp", sa.Double, nullable=False),
    sa.Index("ix_scaling_history_app_timestamp", "app", "timestamp"),
)

leader_lease = sa.Table(
    "leader_lease",
    metadata,
    # Not autoincrement: the term is chosen by the candidate (newest + 1) and the primary key is what
    # makes two winners of the same term impossible.
    sa.Column("term", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("leader_id", sa.String(255), nullable=False),
    sa.Column("hostname", sa.String(255), nullable=False),
    sa.Column("api_url", sa.String(1024), nullable=False),
    sa.Column("acquired_at", sa.Double, nullable=False),
    sa.Column("renewed_at", sa.Double, nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False),
    sa.Column("released_at", sa.Double, nullable=True),
)

cluster_nodes = sa.Table(
    "cluster_nodes",
    metadata,
    sa.Column("node_id", sa.String(255), primary_key=True),
    sa.Column("hostname", sa.String(255), nullable=False),
    sa.Column("api_url", sa.String(1024), nullable=False),
    sa.Column("last_heartbeat", sa.Double, nullable=False),
    sa.Column("started_at", sa.Double, nullable=False),
)

secrets = sa.Table(
    "secrets",
    metadata,
    sa.Column("name", sa.String(63), primary_key=True),
    # All fields encrypted together (Fernet token); only the field names are stored in clear.
    sa.Column("ciphertext", sa.LargeBinary, nullable=False),
    sa.Column("field_names", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
)

# One row (id 1), written by migration 0002: the id every container of this cluster is labelled with.
cluster_identity = sa.Table(
    "cluster_identity",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("cluster_id", sa.String(32), nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
)

# Per-app figures per period (core.history.MetricSample): raw at the scaling period for a day, then
# rolled up; each figure keeps its mean and its peak (``<figure>_max``).
metric_samples = sa.Table(
    "metric_samples",
    metadata,
    sa.Column("app", sa.String(63), primary_key=True),
    sa.Column("resolution", sa.Double, primary_key=True),
    sa.Column("at", sa.Double, primary_key=True),
    sa.Column("periods", sa.Integer, nullable=False),
    *(
        sa.Column(name, sa.Double, nullable=name not in ("ready_replicas", "desired_replicas"))
        for figure in FIGURES
        for name in (figure, f"{figure}_max")
    ),
    sa.Index("ix_metric_samples_app_at", "app", "at"),
)
