"""What each SFTP user has read, in SQLite: per-file results, photo measures, each site's last QC.

Every row is keyed by (server, user, ...): a result is what *that* login could read, and
another user of the same server must not receive it (a file of mode 0600 is readable by its
owner only; its GPS, camera and check values are the owner's to see). The rows of a user are
reached only through ``SqliteCache.for_user(username)``, so no caller can read a row without
naming whose it is. The cost: a second user's first QC of a site reads it again.

Shared by the web app and the CLI. WAL mode lets concurrent scans read while one
writes; each call opens its own short-lived connection, so no connection is ever
shared between threads. A schema version guards upgrades: a cache written by an
older layout is dropped whole and rebuilt rather than read (its rows name no user, so
they could only be served to the wrong one).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING

from qc_tool.domain.models import ImageResult, RemoteFile, SiteRun

if TYPE_CHECKING:  # the checks' measures pull in numpy; a GPS scan never needs them
    from qc_tool.services.checks.measure import CachedMeasure

# Bump when a table changes layout or meaning; every table is then dropped and rebuilt.
# 2: iso, exposure. 3: every row keyed by the SFTP user too.
SCHEMA_VERSION = 3
_TABLES = ("images", "runs", "measures")
_RESULT_FIELDS = {f.name for f in fields(ImageResult)}


class SqliteCache:
    """The cache file. Rows are read and written per user: see ``for_user``."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = directory / "results.sqlite3"
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")  # another process opening the file waits for this
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None or int(row[0]) != SCHEMA_VERSION:
                for table in _TABLES:
                    db.execute(f"DROP TABLE IF EXISTS {table}")
                db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)",
                    (str(SCHEMA_VERSION),),
                )
            db.execute(
                "CREATE TABLE IF NOT EXISTS images ("
                " server TEXT NOT NULL, user TEXT NOT NULL, path TEXT NOT NULL,"
                " size INTEGER NOT NULL, mtime INTEGER NOT NULL, result TEXT NOT NULL,"
                " stored REAL NOT NULL, PRIMARY KEY (server, user, path))"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS runs ("
                " server TEXT NOT NULL, user TEXT NOT NULL, site TEXT NOT NULL,"
                " run TEXT NOT NULL, PRIMARY KEY (server, user, site))"
            )
            # One row per file and user: measures taken with other measuring settings are replaced.
            db.execute(
                "CREATE TABLE IF NOT EXISTS measures ("
                " server TEXT NOT NULL, user TEXT NOT NULL, path TEXT NOT NULL,"
                " size INTEGER NOT NULL, mtime INTEGER NOT NULL, key TEXT NOT NULL,"
                " measure TEXT NOT NULL, stored REAL NOT NULL, PRIMARY KEY (server, user, path))"
            )
            db.execute("COMMIT")

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            yield db
        finally:
            db.close()

    def for_user(self, user: str) -> UserCache:
        """The rows of the SFTP login ``user``: what that user read, and nothing else."""
        if not user:
            raise ValueError("the cache is read and written as a named user")
        return UserCache(self, user)

    def clear(self) -> int:
        """Forget everything of every user; the number of per-file results dropped."""
        with self._db() as db:
            count = int(db.execute("SELECT COUNT(*) FROM images").fetchone()[0])
            for table in _TABLES:
                db.execute(f"DELETE FROM {table}")
        return count

    def count(self) -> int:
        """Per-file results held, all users together."""
        with self._db() as db:
            return int(db.execute("SELECT COUNT(*) FROM images").fetchone()[0])


def _result(blob: str) -> ImageResult:
    data = {k: v for k, v in json.loads(blob).items() if k in _RESULT_FIELDS}
    return ImageResult(**data)


class UserCache:
    """One user's view of the cache: the ResultCache and MeasureCache the services take."""

    def __init__(self, store: SqliteCache, user: str) -> None:
        self._store = store
        self.user = user
        self._ahead: dict[tuple[str, str], Future[dict[str, tuple[int, int, ImageResult]]]] = {}

    def preload(self, server: str, prefix: str) -> None:
        """Read and decode the site's rows on a thread while the scan lists the site: a
        rescan's lookup of 1,400 results (~20 ms) then costs nothing after the listing."""
        ahead: Future[dict[str, tuple[int, int, ImageResult]]] = Future()

        def read() -> None:
            try:
                ahead.set_result(
                    {
                        path: (size, mtime, _result(blob))
                        for path, size, mtime, blob in self._rows(
                            "images", "result", server, prefix
                        )
                    }
                )
            except Exception as exc:  # noqa: BLE001 (get_many then reads the rows itself)
                ahead.set_exception(exc)

        self._ahead[(server, prefix)] = ahead
        threading.Thread(target=read, name="qc-cache-ahead", daemon=True).start()

    def get_many(
        self, server: str, files: Sequence[RemoteFile], prefix: str
    ) -> Mapping[str, ImageResult]:
        """Cached results of the files whose size and mtime still match."""
        ahead = self._ahead.pop((server, prefix), None)
        if ahead is not None and ahead.exception() is None:
            rows = ahead.result()
            return {
                f.path: row[2]
                for f in files
                if (row := rows.get(f"{prefix}/{f.path}")) is not None
                and row[0] == f.size
                and row[1] == f.mtime
            }
        return {
            f.path: _result(blob)
            for f, blob in self._unchanged("images", "result", server, files, prefix)
        }

    def _unchanged(
        self,
        table: str,  # "images" or "measures": this module's names, never a caller's text
        column: str,
        server: str,
        files: Sequence[RemoteFile],
        prefix: str,
        key: str | None = None,
    ) -> list[tuple[RemoteFile, str]]:
        """(file, stored text) of this user's rows for ``files`` whose size and mtime still match
        (and, for measures, taken with the measuring ``key``)."""
        wanted = {f"{prefix}/{f.path}": f for f in files}
        out: list[tuple[RemoteFile, str]] = []
        for path, size, mtime, blob in self._rows(table, column, server, prefix, key):
            f = wanted.get(path)
            if f is not None and f.size == size and f.mtime == mtime:
                out.append((f, blob))
        return out

    def _rows(
        self, table: str, column: str, server: str, prefix: str, key: str | None = None
    ) -> list[tuple[str, int, int, str]]:
        """(path, size, mtime, stored text) of this user's rows below ``prefix``."""
        keyed = " AND key = ?" if key is not None else ""
        query = (
            f"SELECT path, size, mtime, {column} FROM {table}"
            f" WHERE server = ? AND user = ?{keyed} AND path >= ? AND path < ?"
        )
        # '0' sorts right after '/': the range is every path below the prefix.
        params = (
            server,
            self.user,
            *([key] if key is not None else []),
            prefix + "/",
            prefix + "0",
        )
        with self._store._db() as db:
            return list(db.execute(query, params))

    def put_many(self, server: str, results: Sequence[ImageResult], prefix: str) -> None:
        now = time.time()
        rows = [
            (server, self.user, f"{prefix}/{r.path}", r.size, r.mtime, json.dumps(asdict(r)), now)
            for r in results
            if not _transient(r)
        ]
        with self._store._db() as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT OR REPLACE INTO images VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            db.execute("COMMIT")

    def record_run(self, server: str, run: SiteRun) -> None:
        """Remember this user's last QC of a site (one row each: the newest replaces the older)."""
        with self._store._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?)",
                (server, self.user, run.site, json.dumps(run.to_json())),
            )

    def last_runs(self, server: str) -> dict[str, SiteRun]:
        """This user's last QC of each site; another user's runs are not theirs to see."""
        out: dict[str, SiteRun] = {}
        with self._store._db() as db:
            rows = db.execute(
                "SELECT site, run FROM runs WHERE server = ? AND user = ?", (server, self.user)
            )
            for site, blob in rows:
                try:
                    out[site] = SiteRun(**json.loads(blob))
                except (TypeError, ValueError):
                    continue  # a row of an older layout: as if never run
        return out

    def get_measures(
        self, server: str, files: Sequence[RemoteFile], prefix: str, key: str
    ) -> Mapping[str, CachedMeasure]:
        """Cached measures of the files unchanged since, taken with the same measuring ``key``."""
        from qc_tool.services.checks.measure import CachedMeasure  # only a check pass gets here

        out: dict[str, CachedMeasure] = {}
        for f, blob in self._unchanged("measures", "measure", server, files, prefix, key):
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
            (
                server,
                self.user,
                f"{prefix}/{f.path}",
                f.size,
                f.mtime,
                key,
                json.dumps(m.to_json()),
                now,
            )
            for f, m in measures
        ]
        with self._store._db() as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT OR REPLACE INTO measures VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            db.execute("COMMIT")

    def prune(self, server: str, prefix: str, keep: Sequence[str]) -> int:
        """Forget this user's files of the site that are no longer listed (results and measures).

        Only this user's rows: another user may still see a file this one cannot list.
        """
        kept = {f"{prefix}/{p}" for p in keep}
        forgotten = 0
        with self._store._db() as db:
            for table in ("images", "measures"):
                paths = [
                    row[0]
                    for row in db.execute(
                        f"SELECT path FROM {table}"
                        " WHERE server = ? AND user = ? AND path >= ? AND path < ?",
                        (server, self.user, prefix + "/", prefix + "0"),
                    )
                    if row[0] not in kept
                ]
                db.execute("BEGIN IMMEDIATE")
                db.executemany(
                    f"DELETE FROM {table} WHERE server = ? AND user = ? AND path = ?",
                    [(server, self.user, p) for p in paths],
                )
                db.execute("COMMIT")
                if table == "images":
                    forgotten = len(paths)
        return forgotten

    def known(self, server: str, prefix: str) -> int:
        """How many results this user has cached for the site, whatever their freshness."""
        with self._store._db() as db:
            row = db.execute(
                "SELECT COUNT(*) FROM images WHERE server = ? AND user = ? AND path >= ? AND path < ?",
                (server, self.user, prefix + "/", prefix + "0"),
            ).fetchone()
        return int(row[0])


def _transient(result: ImageResult) -> bool:
    """Errors of the connection, not of the file, must not be remembered."""
    error = result.error or ""
    return error.startswith(("not read", "internal error", "permission denied", "no such file"))
