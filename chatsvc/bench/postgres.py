"""A PostgreSQL database of the bench's own for each run (--postgres)."""

import secrets
from urllib.parse import urlsplit, urlunsplit


def _connect(url):
    import psycopg
    return psycopg.connect(url, autocommit=True)


def throwawayDatabase(admin, run):
    """A new database on the server at C{admin}: (its URL, a function that drops it)."""
    name = f"chatsvc_bench_{secrets.token_hex(4)}"
    with _connect(admin) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    dropped = []

    def drop():
        if not dropped:
            dropped.append(True)
            with _connect(admin) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return urlunsplit(urlsplit(admin)._replace(path="/" + name)), drop


def countRows(url):
    with _connect(url) as connection:
        return connection.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
