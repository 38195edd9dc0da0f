"""Initial schema: applications, instances, events, scaling history, leader lease, nodes, secrets.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "applications",
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
    op.create_table(
        "instances",
        sa.Column("app", sa.String(63), nullable=False),
        sa.Column("slot", sa.Integer, nullable=False),
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
        sa.PrimaryKeyConstraint("app", "slot", name="pk_instances"),
        sa.ForeignKeyConstraint(
            ["app"], ["applications.name"], name="fk_instances_app", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("app", sa.String(63), nullable=True),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("timestamp", sa.Double, nullable=False),
    )
    op.create_index("ix_events_timestamp", "events", ["timestamp"])
    op.create_index("ix_events_app", "events", ["app"])
    op.create_table(
        "scaling_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("app", sa.String(63), nullable=False),
        sa.Column("from_replicas", sa.Integer, nullable=False),
        sa.Column("to_replicas", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("timestamp", sa.Double, nullable=False),
        sa.ForeignKeyConstraint(
            ["app"], ["applications.name"], name="fk_scaling_history_app", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_scaling_history_app_timestamp", "scaling_history", ["app", "timestamp"])
    op.create_table(
        "leader_lease",
        sa.Column("term", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("leader_id", sa.String(255), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("api_url", sa.String(1024), nullable=False),
        sa.Column("acquired_at", sa.Double, nullable=False),
        sa.Column("renewed_at", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.Column("released_at", sa.Double, nullable=True),
    )
    op.create_table(
        "cluster_nodes",
        sa.Column("node_id", sa.String(255), primary_key=True),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("api_url", sa.String(1024), nullable=False),
        sa.Column("last_heartbeat", sa.Double, nullable=False),
        sa.Column("started_at", sa.Double, nullable=False),
    )
    op.create_table(
        "secrets",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("field_names", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("secrets")
    op.drop_table("cluster_nodes")
    op.drop_table("leader_lease")
    op.drop_index("ix_scaling_history_app_timestamp", table_name="scaling_history")
    op.drop_table("scaling_history")
    op.drop_index("ix_events_app", table_name="events")
    op.drop_index("ix_events_timestamp", table_name="events")
    op.drop_table("events")
    op.drop_table("instances")
    op.drop_table("applications")
