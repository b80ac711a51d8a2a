"""The service in daily use: reused results, batches, fair dispatch between owners, long videos in segments

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'batches',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('owner', sa.String(length=200), nullable=True),
        sa.Column('name', sa.String(length=200), nullable=True),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('params', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('idempotency_key', sa.String(length=200), nullable=True),
        sa.Column('request_hash', sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('idempotency_key'),
    )
    op.create_index('ix_batches_owner', 'batches', ['owner'])
    op.create_index('ix_batches_created_at', 'batches', ['created_at'])
    op.create_table(
        'segments',
        sa.Column('id', sa.String(length=48), nullable=False),
        sa.Column('job_id', sa.String(length=36), nullable=False),
        sa.Column('index', sa.Integer(), nullable=False),
        sa.Column('plan', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('worker', sa.String(length=200), nullable=True),
        sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('result_key', sa.String(length=500), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('seconds', sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_segments_job_id', 'segments', ['job_id'])
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reuse_key', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('reused_from', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('batch_id', sa.String(length=36), nullable=True))
        batch_op.create_index('ix_jobs_dispatched_at', ['dispatched_at'])
        batch_op.create_index('ix_jobs_reuse_key', ['reuse_key'])
        batch_op.create_index('ix_jobs_reused_from', ['reused_from'])
        batch_op.create_index('ix_jobs_batch_id', ['batch_id'])
    # Jobs already queued when this runs were published by the old code: they count as dispatched.
    op.execute("UPDATE jobs SET dispatched_at = created_at WHERE status IN ('queued', 'running')")
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sha256', sa.String(length=64), nullable=True))
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('batch_id', sa.String(length=36), nullable=True))
        batch_op.alter_column('job_id', existing_type=sa.String(length=36), nullable=True)
        batch_op.create_index('ix_webhook_deliveries_batch_id', ['batch_id'])


def downgrade() -> None:
    op.execute("DELETE FROM webhook_deliveries WHERE job_id IS NULL")  # batch events: no batches before 0008
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_deliveries_batch_id')
        batch_op.drop_column('batch_id')
        batch_op.alter_column('job_id', existing_type=sa.String(length=36), nullable=False)
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.drop_column('sha256')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        for name in ('batch_id', 'reused_from', 'reuse_key', 'dispatched_at'):
            batch_op.drop_index(f'ix_jobs_{name}')
            batch_op.drop_column(name)
    op.drop_index('ix_segments_job_id', 'segments')
    op.drop_table('segments')
    op.drop_index('ix_batches_created_at', 'batches')
    op.drop_index('ix_batches_owner', 'batches')
    op.drop_table('batches')
