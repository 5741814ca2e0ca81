"""The engine at scale: a parents table, byte-ordered keys, inline inputs, edit authors, import jobs.

- `commit_parents` replaces the JSON `commits.parent_ids`: ancestry is walked with recursive
  queries bounded by generation instead of loading every commit of a dataset.
- Example keys compare byte by byte (COLLATE "C" on PostgreSQL; SQLite's BINARY already does):
  the deltas are merged with key-sorted Parquet checkpoints by key range, so SQL and Python
  must agree on the order, whatever collation the database was created with.
- `changes.inline`: a short text or a tabular row is stored with the example instead of as a
  blob file of a few dozen bytes; `changes.author`: who made an edit, when not the committer.
- `staged_edits.input`: the input a labeler saw; a label never lands on an input that replaced it.
- `import_jobs`: an import runs as a job with progress, state and the commit it made.
- `dataset_inputs` by blob id: `s2 gc` asks which stored blobs any dataset references.

Revision ID: 0007_engine_scale
Revises: 0006_model_version_unique
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0007_engine_scale"
down_revision = "0006_model_version_unique"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    conn = op.get_bind()
    op.create_table(
        "commit_parents",
        sa.Column("commit_pk", sa.Integer, sa.ForeignKey("commits.pk", ondelete="CASCADE"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),  # 0: the first parent (the branch it was made on)
        sa.Column("parent_pk", sa.Integer, sa.ForeignKey("commits.pk"), nullable=False, index=True),
        sqlite_with_rowid=False,
    )
    rows = conn.execute(sa.text("SELECT pk, id, parent_ids FROM commits")).all()
    pk_of = {cid: pk for pk, cid, _ in rows}
    links = []
    for pk, _, parent_ids in rows:
        parents = parent_ids if isinstance(parent_ids, list) else json.loads(parent_ids or "[]")
        links.extend({"commit_pk": pk, "position": i, "parent_pk": pk_of[p]} for i, p in enumerate(parents))
    if links:
        conn.execute(
            sa.text("INSERT INTO commit_parents (commit_pk, position, parent_pk) VALUES (:commit_pk, :position, :parent_pk)"), links
        )
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+ has it): a batch "recreate" would drop the
    # commits table, which every other table references.
    op.drop_column("commits", "parent_ids")

    with op.batch_alter_table("changes") as batch:
        batch.add_column(sa.Column("inline", sa.Text, nullable=True))
        batch.add_column(sa.Column("author", sa.String(256), nullable=True))
    with op.batch_alter_table("staged_edits") as batch:
        batch.add_column(sa.Column("input", sa.String(64), nullable=True))
    if conn.dialect.name == "postgresql":
        for table in ("changes", "staged_edits"):
            op.execute(f'ALTER TABLE {table} ALTER COLUMN key TYPE varchar(512) COLLATE "C"')

    # s2 gc asks which stored blobs are inputs of any dataset: by blob id, whatever the dataset.
    op.create_index("ix_dataset_inputs_blob", "dataset_inputs", ["blob_id"])

    op.create_table(
        "import_jobs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("branch", sa.String(128), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("author", sa.String(256), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("phase", sa.String(32)),
        sa.Column("rows_done", sa.Integer, nullable=False),
        sa.Column("head_rows", sa.Integer),
        sa.Column("examples", sa.Integer),
        sa.Column("changes", sa.Integer),
        sa.Column("commit_id", sa.String(64)),
        sa.Column("error", sa.Text),
        sa.Column("host", sa.String(256)),
        sa.Column("work_dir", sa.Text),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("started_at", TZ),
        sa.Column("finished_at", TZ),
        sa.Column("heartbeat_at", TZ),
    )


def downgrade() -> None:
    conn = op.get_bind()
    inline = conn.execute(sa.text("SELECT count(*) FROM changes WHERE inline IS NOT NULL")).scalar()
    staged = conn.execute(sa.text("SELECT count(*) FROM staged_edits WHERE input IS NOT NULL")).scalar()
    if inline or staged:  # those inputs live only in these columns: dropping them would lose examples
        raise RuntimeError(
            f"cannot downgrade below 0007: {inline} committed and {staged} staged example(s) keep their input inline "
            "(short texts and tabular rows), which the older schema has no place for; export the datasets first"
        )
    op.drop_table("import_jobs")
    op.drop_index("ix_dataset_inputs_blob", "dataset_inputs")
    if conn.dialect.name == "postgresql":
        for table in ("changes", "staged_edits"):
            op.execute(f'ALTER TABLE {table} ALTER COLUMN key TYPE varchar(512) COLLATE "default"')
    op.drop_column("staged_edits", "input")
    op.drop_column("changes", "author")
    op.drop_column("changes", "inline")
    op.add_column("commits", sa.Column("parent_ids", sa.JSON, nullable=True))
    ids = dict(conn.execute(sa.text("SELECT pk, id FROM commits")).all())
    parents: dict[int, list[str]] = {pk: [] for pk in ids}
    for commit_pk, _, parent_pk in conn.execute(
        sa.text("SELECT commit_pk, position, parent_pk FROM commit_parents ORDER BY commit_pk, position")
    ):
        parents[commit_pk].append(ids[parent_pk])
    for pk, plist in parents.items():
        conn.execute(sa.text("UPDATE commits SET parent_ids = :p WHERE pk = :pk"), {"p": json.dumps(plist), "pk": pk})
    op.drop_table("commit_parents")
