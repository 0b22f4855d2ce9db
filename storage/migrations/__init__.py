"""Alembic environment and revisions for the archive schema (run by storage.db.migrate)."""
