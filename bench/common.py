"""What the benchmarks share: each works in a database of its own next to the one
DATABASE_URL names, recreated from scratch when asked."""

from __future__ import annotations

from urllib.parse import urlparse, urlunparse


def bench_url(url: str, db_name: str) -> str:
    """``url`` with its database replaced by the benchmark's own."""
    return urlunparse(urlparse(url)._replace(path=f"/{db_name}"))


def recreate_database(admin_url: str, db_name: str) -> None:
    """Drop and create ``db_name`` through the server ``admin_url`` points at."""
    import psycopg

    parts = urlparse(admin_url)
    with psycopg.connect(
        host=parts.hostname, port=parts.port or 5432, user=parts.username, password=parts.password,
        dbname=parts.path.lstrip("/") or "postgres", autocommit=True,
    ) as conn:  # fmt: skip
        conn.execute(f"DROP DATABASE IF EXISTS {db_name}")
        conn.execute(f"CREATE DATABASE {db_name}")
