"""Per-file scan results and photo measures in SQLite, keyed by (server, path, size, mtime).

Shared by the web app and the CLI. WAL mode lets concurrent scans read while one
writes; each call opens its own short-lived connection, so no connection is ever
shared between threads. A schema version guards upgrades: a cache written by an
older layout is dropped and rebuilt rather than read.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING

from qc_tool.domain.models import ImageResult, RemoteFile, SiteRun

if TYPE_CHECKING:  # the checks' measures pull in numpy; a GPS scan never needs them
    from qc_tool.services.measure import CachedMeasure

SCHEMA_VERSION = 2  # bump when ImageResult or the table changes meaning (2: iso, exposure)
_RESULT_FIELDS = {f.name for f in fields(ImageResult)}


class SqliteCache:
    """The result cache in one SQLite file."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = directory / "results.sqlite3"
        with self._db() as db:
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None or int(row[0]) != SCHEMA_VERSION:
                db.execute("DROP TABLE IF EXISTS images")
                db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)",
                    (str(SCHEMA_VERSION),),
                )
            db.execute(
                "CREATE TABLE IF NOT EXISTS images ("
                " server TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,"
                " mtime INTEGER NOT NULL, result TEXT NOT NULL, stored REAL NOT NULL,"
                " PRIMARY KEY (server, path))"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS runs ("
                " server TEXT NOT NULL, site TEXT NOT NULL, run TEXT NOT NULL,"
                " PRIMARY KEY (server, site))"
            )
            # One row per file: measures taken with other measuring settings are replaced.
            db.execute(
                "CREATE TABLE IF NOT EXISTS measures ("
                " server TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,"
                " mtime INTEGER NOT NULL, key TEXT NOT NULL, measure TEXT NOT NULL,"
                " stored REAL NOT NULL, PRIMARY KEY (server, path))"
            )

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            yield db
        finally:
            db.close()

    def get_many(
        self, server: str, files: Sequence[RemoteFile], prefix: str
    ) -> Mapping[str, ImageResult]:
        """Cached results of the files whose size and mtime still match."""
        wanted = {f"{prefix}/{f.path}": f for f in files}
        out: dict[str, ImageResult] = {}
        with self._db() as db:
            rows = db.execute(
                "SELECT path, size, mtime, result FROM images WHERE server = ? AND path >= ? AND path < ?",
                (server, prefix + "/", prefix + "0"),  # '0' sorts right after '/'
            )
            for path, size, mtime, blob in rows:
                f = wanted.get(path)
                if f is None or f.size != size or f.mtime != mtime:
                    continue
                data = {k: v for k, v in json.loads(blob).items() if k in _RESULT_FIELDS}
                out[f.path] = ImageResult(**data)
        return out

    def put_many(self, server: str, results: Sequence[ImageResult], prefix: str) -> None:
        now = time.time()
        rows = [
            (server, f"{prefix}/{r.path}", r.size, r.mtime, json.dumps(asdict(r)), now)
            for r in results
            if not _transient(r)
        ]
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT OR REPLACE INTO images VALUES (?, ?, ?, ?, ?, ?)", rows)
            db.execute("COMMIT")

    def record_run(self, server: str, run: SiteRun) -> None:
        """Remember a site's last QC (one row per site: the newest replaces the older)."""
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?)",
                (server, run.site, json.dumps(run.to_json())),
            )

    def last_runs(self, server: str) -> dict[str, SiteRun]:
        out: dict[str, SiteRun] = {}
        with self._db() as db:
            for site, blob in db.execute("SELECT site, run FROM runs WHERE server = ?", (server,)):
                try:
                    out[site] = SiteRun(**json.loads(blob))
                except (TypeError, ValueError):
                    continue  # a row of an older layout: as if never run
        return out

    def get_measures(
        self, server: str, files: Sequence[RemoteFile], prefix: str, key: str
    ) -> Mapping[str, CachedMeasure]:
        """Cached measures of the files unchanged since, taken with the same measuring ``key``."""
        from qc_tool.services.measure import CachedMeasure  # only a check pass gets here

        wanted = {f"{prefix}/{f.path}": f for f in files}
        out: dict[str, CachedMeasure] = {}
        with self._db() as db:
            rows = db.execute(
                "SELECT path, size, mtime, measure FROM measures"
                " WHERE server = ? AND key = ? AND path >= ? AND path < ?",
                (server, key, prefix + "/", prefix + "0"),
            )
            for path, size, mtime, blob in rows:
                f = wanted.get(path)
                if f is None or f.size != size or f.mtime != mtime:
                    continue
                try:
                    out[f.path] = CachedMeasure.from_json(json.loads(blob))
                except (KeyError, TypeError, ValueError):
                    continue  # a record of an older layout: measure the photo again
        return out

    def put_measures(
        self,
        server: str,
        measures: Sequence[tuple[RemoteFile, CachedMeasure]],
        prefix: str,
        key: str,
    ) -> None:
        now = time.time()
        rows = [
            (server, f"{prefix}/{f.path}", f.size, f.mtime, key, json.dumps(m.to_json()), now)
            for f, m in measures
        ]
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT OR REPLACE INTO measures VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            db.execute("COMMIT")

    def prune(self, server: str, prefix: str, keep: Sequence[str]) -> int:
        """Forget files of this site that are no longer on the server (results and measures)."""
        kept = {f"{prefix}/{p}" for p in keep}
        forgotten = 0
        with self._db() as db:
            for table in ("images", "measures"):
                paths = [
                    row[0]
                    for row in db.execute(
                        f"SELECT path FROM {table} WHERE server = ? AND path >= ? AND path < ?",
                        (server, prefix + "/", prefix + "0"),
                    )
                    if row[0] not in kept
                ]
                db.execute("BEGIN IMMEDIATE")
                db.executemany(
                    f"DELETE FROM {table} WHERE server = ? AND path = ?",
                    [(server, p) for p in paths],
                )
                db.execute("COMMIT")
                if table == "images":
                    forgotten = len(paths)
        return forgotten

    def known(self, server: str, prefix: str) -> int:
        with self._db() as db:
            row = db.execute(
                "SELECT COUNT(*) FROM images WHERE server = ? AND path >= ? AND path < ?",
                (server, prefix + "/", prefix + "0"),
            ).fetchone()
        return int(row[0])

    def clear(self) -> int:
        with self._db() as db:
            count = int(db.execute("SELECT COUNT(*) FROM images").fetchone()[0])
            db.execute("DELETE FROM images")
            db.execute("DELETE FROM measures")
            db.execute("DELETE FROM runs")
        return count

    def count(self) -> int:
        with self._db() as db:
            return int(db.execute("SELECT COUNT(*) FROM images").fetchone()[0])


def _transient(result: ImageResult) -> bool:
    """Errors of the connection, not of the file, must not be remembered."""
    error = result.error or ""
    return error.startswith(("not read", "internal error", "permission denied", "no such file"))
