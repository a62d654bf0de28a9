"""Create the token table.

Revision ID: 0001_token_table
Revises:
Create Date: 2026-12-04

The table name and schema come from the migration run (``table_name`` and
``schema`` config attributes), so one set of revisions serves any number of
token tables. Types are spelled out here rather than imported from the model,
so later changes to the model cannot rewrite this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001_token_table"
down_revision = None
branch_labels = None
depends_on = None


def _target() -> tuple[str, str | None]:
    # Read when the revision runs, not when Alembic loads the module: commands
    # such as `alembic history` load revisions without a migration context.
    attributes = op.get_context().config.attributes
    return attributes["table_name"], attributes["schema"]


def _long_text() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def _timestamp() -> sa.types.TypeEngine[object]:
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    table, schema = _target()
    op.create_table(
        table,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "user_name",
            sa.String(255).with_variant(
                mysql.VARCHAR(255, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
            ),
            nullable=True,
        ),
        sa.Column("client_id", _long_text(), nullable=True),
        sa.Column("client_secret", _long_text(), nullable=True),
        sa.Column("refresh_token", _long_text(), nullable=True),
        sa.Column("access_token", _long_text(), nullable=True),
        sa.Column("grant_token", _long_text(), nullable=True),
        sa.Column("expiry_time", sa.BigInteger(), nullable=True),
        sa.Column("redirect_url", _long_text(), nullable=True),
        sa.Column("api_domain", _long_text(), nullable=True),
        sa.Column("access_token_digest", sa.String(64), nullable=True),
        sa.Column("refresh_token_digest", sa.String(64), nullable=True),
        sa.Column("grant_token_digest", sa.String(64), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.UniqueConstraint("user_name", name=f"uq_{table}_user"),
        sa.UniqueConstraint("access_token_digest", name=f"uq_{table}_access"),
        sa.UniqueConstraint("refresh_token_digest", name=f"uq_{table}_refresh"),
        sa.UniqueConstraint("grant_token_digest", name=f"uq_{table}_grant"),
        schema=schema,
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    op.create_index(f"ix_{table}_updated_at", table, ["updated_at"], schema=schema)


def downgrade() -> None:
    table, schema = _target()
    op.drop_index(f"ix_{table}_updated_at", table_name=table, schema=schema)
    op.drop_table(table, schema=schema)
