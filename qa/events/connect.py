"""Which event store a configuration names: PostgreSQL for a URL, else SQLite in the data folder."""

from __future__ import annotations

from pathlib import Path

from ..errors import StoreError
from .sqlite import SQLiteStore
from .store import EventStore, PostgresStore


def open_store(database_url: str | None, data_dir: Path) -> EventStore:
    """PostgreSQL when a URL is configured, else one SQLite file in the data folder.
    Nothing connects here: the first use does, so a store that is down never stops start-up."""
    if database_url:
        if database_url.startswith(("postgres://", "postgresql://")) or "host=" in database_url:
            return PostgresStore(database_url)
        if database_url.startswith("sqlite:///"):
            return SQLiteStore(database_url.removeprefix("sqlite:///"))
        raise StoreError(
            f"HELPDESK_QA_DATABASE_URL: unsupported URL (use postgresql://… or sqlite:///path): {database_url[:40]}"
        )
    return SQLiteStore(Path(data_dir) / "events.sqlite3")
