"""Alembic environment, run by storage.db.migrate on the connection it hands over.

There is no alembic.ini: storage.db builds the configuration in code and passes
an open connection in `config.attributes["connection"]`, so migrations run in the
caller's transaction, under its schema lock.
"""

from alembic import context
from sqlalchemy.engine import Connection

from storage.models import Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations through storage.db.migrate(engine)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things; autogenerate then emits copy-and-move batches.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
