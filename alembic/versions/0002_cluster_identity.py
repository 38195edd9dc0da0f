"""Cluster identity: one random id per database, carried by every container this cluster creates.

Two Orchestry installations on one Docker engine (a console on a laptop beside a daemon, a test run
beside a demo) both find containers labelled ``orchestry.app=web``; without an owner label each would
adopt and replace the other's replicas forever.  Every node of an HA cluster shares the database and
therefore the id.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import time
import uuid

import sqlalchemy as sa

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "cluster_identity",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("cluster_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
    )
    op.bulk_insert(table, [{"id": 1, "cluster_id": uuid.uuid4().hex, "created_at": time.time()}])


def downgrade() -> None:
    op.drop_table("cluster_identity")
