"""Alembic environment for batchd: runs on the connection `Database.migrate()` hands over.

batchd migrates programmatically (`batchd serve` and `batchd admin` do it on start-up), so this
env expects `config.attributes["connection"]`, a synchronous facade of the async connection.
There is no offline (SQL script) mode: the same code path serves SQLite and PostgreSQL.
"""

from __future__ import annotations

from alembic import context

from batchd.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("batchd migrations run through batchd.store.database.Database.migrate()")

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
