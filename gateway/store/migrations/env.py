"""Alembic environment: runs on the connection handed over by gateway.store.database."""

from __future__ import annotations

from alembic import context

from gateway.store import care_tables  # noqa: F401  (its tables join the metadata)
from gateway.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `iot-gateway db upgrade`, which supplies the engine")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
