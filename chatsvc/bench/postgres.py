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


def checkRows(url):
    """
    (rows, distinct uids, holes): what a cluster run left in its database.
    Holes are seqs missing below a room's highest (each room numbers from 1).
    """
    with _connect(url) as connection:
        rows, uids = connection.execute(
            "SELECT COUNT(*), COUNT(DISTINCT uid) FROM messages").fetchone()
        (highest,) = connection.execute(
            "SELECT COALESCE(SUM(top), 0)::bigint FROM"
            " (SELECT MAX(seq) AS top FROM messages GROUP BY room_id) t").fetchone()
        return rows, uids, highest - rows


def backendPids(url):
    """The PIDs of the PostgreSQL backends connected to the database at C{url}."""
    name = urlsplit(url).path.lstrip("/")
    with _connect(url) as connection:
        return {pid for (pid,) in connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,))}
