"""Registered face-detector weights (RetinaFace + landmark network), stored and versioned like models

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('detectors',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('backend', sa.String(length=32), nullable=False),
    sa.Column('storage_prefix', sa.String(length=500), nullable=False),
    sa.Column('files', sa.JSON(), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('detectors', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_detectors_backend'), ['backend'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('detectors', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_detectors_backend'))
    op.drop_table('detectors')
