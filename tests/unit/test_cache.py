"""The result cache: every row is one user's, and rows of an older layout reach nobody."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, replace
from pathlib import Path

import pytest
from qc_tool.adapters.cache import SCHEMA_VERSION, SqliteCache
from qc_tool.domain.models import ImageResult, RemoteFile, SiteRun
from qc_tool.services.checks.measure import CachedMeasure, Measured, SourceInfo

SERVER = "sftp://example:22/sites"
PREFIX = "/SITE-P"
FILE = RemoteFile("Tower/DJI_0001.JPG", 5000, 1_700_000_000)
RESULT = ImageResult(FILE.path, FILE.size, FILE.mtime, lat=47.37, lon=8.54, camera="FC6310")
MEASURE = CachedMeasure(
    Measured(None, None, None, "digest-of-a", None, 0.01), SourceInfo("preview", 900, (40, 30))
)
RUN = SiteRun("SITE-P", "2024-06-01T10:00:00+00:00", "refly", "1 of 1 photos fail", 1, 1, 0)


def test_what_one_user_read_is_never_given_to_another(tmp_path: Path) -> None:
    store = SqliteCache(tmp_path)
    alice, bob = store.for_user("alice"), store.for_user("bob")
    alice.put_many(SERVER, [RESULT], PREFIX)
    alice.put_measures(SERVER, [(FILE, MEASURE)], PREFIX, "key")
    alice.record_run(SERVER, RUN)

    assert bob.get_many(SERVER, [FILE], PREFIX) == {}
    assert bob.get_measures(SERVER, [FILE], PREFIX, "key") == {}
    assert bob.last_runs(SERVER) == {}
    assert bob.known(SERVER, PREFIX) == 0
    # Nor under a name that differs only in case: the server decides who that is, not us.
    assert store.for_user("Alice").get_many(SERVER, [FILE], PREFIX) == {}

    assert alice.get_many(SERVER, [FILE], PREFIX) == {FILE.path: RESULT}
    assert alice.get_measures(SERVER, [FILE], PREFIX, "key") == {FILE.path: MEASURE}
    assert alice.last_runs(SERVER) == {"SITE-P": RUN}
    assert alice.known(SERVER, PREFIX) == 1


def test_one_users_rows_and_pruning_leave_the_others_alone(tmp_path: Path) -> None:
    store = SqliteCache(tmp_path)
    alice, bob = store.for_user("alice"), store.for_user("bob")
    theirs = ImageResult(FILE.path, FILE.size, FILE.mtime, error="no EXIF")  # what bob saw
    alice.put_many(SERVER, [RESULT], PREFIX)
    bob.put_many(SERVER, [theirs], PREFIX)
    bob.record_run(SERVER, RUN)
    assert alice.get_many(SERVER, [FILE], PREFIX) == {FILE.path: RESULT}
    assert bob.get_many(SERVER, [FILE], PREFIX) == {FILE.path: theirs}

    assert bob.prune(SERVER, PREFIX, keep=[]) == 1  # bob no longer lists the file
    assert bob.get_many(SERVER, [FILE], PREFIX) == {}
    assert alice.get_many(SERVER, [FILE], PREFIX) == {FILE.path: RESULT}
    assert store.count() == 1


def test_the_cache_is_always_read_as_someone(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="named user"):
        SqliteCache(tmp_path).for_user("")


def _old_layout(path: Path) -> None:
    """A cache file as schema 2 wrote it: rows keyed by server and path alone."""
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
        "INSERT INTO meta VALUES ('schema', '2');"
        "CREATE TABLE images (server TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,"
        " mtime INTEGER NOT NULL, result TEXT NOT NULL, stored REAL NOT NULL,"
        " PRIMARY KEY (server, path));"
        "CREATE TABLE runs (server TEXT NOT NULL, site TEXT NOT NULL, run TEXT NOT NULL,"
        " PRIMARY KEY (server, site));"
        "CREATE TABLE measures (server TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,"
        " mtime INTEGER NOT NULL, key TEXT NOT NULL, measure TEXT NOT NULL,"
        " stored REAL NOT NULL, PRIMARY KEY (server, path));"
    )
    db.execute(
        "INSERT INTO images VALUES (?, ?, ?, ?, ?, 0)",
        (SERVER, f"{PREFIX}/{FILE.path}", FILE.size, FILE.mtime, json.dumps(asdict(RESULT))),
    )
    db.execute("INSERT INTO runs VALUES (?, ?, ?)", (SERVER, "SITE-P", json.dumps(RUN.to_json())))
    db.execute(
        "INSERT INTO measures VALUES (?, ?, ?, ?, 'key', ?, 0)",
        (SERVER, f"{PREFIX}/{FILE.path}", FILE.size, FILE.mtime, json.dumps(MEASURE.to_json())),
    )
    db.commit()
    db.close()


def test_rows_of_the_layout_without_users_are_dropped_not_served(tmp_path: Path) -> None:
    _old_layout(tmp_path / "results.sqlite3")
    store = SqliteCache(tmp_path)
    assert store.count() == 0
    for name in ("alice", "bob"):
        user = store.for_user(name)
        assert user.get_many(SERVER, [FILE], PREFIX) == {}
        assert user.get_measures(SERVER, [FILE], PREFIX, "key") == {}
        assert user.last_runs(SERVER) == {}
    db = sqlite3.connect(tmp_path / "results.sqlite3")
    try:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == (
            str(SCHEMA_VERSION),
        )
        for table in ("images", "runs", "measures"):
            assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone() == (0,)
    finally:
        db.close()
    # ... and the rebuilt tables take this layout's rows.
    store.for_user("alice").record_run(SERVER, RUN)
    store.for_user("alice").put_measures(SERVER, [(FILE, MEASURE)], PREFIX, "key")
    assert store.for_user("alice").last_runs(SERVER) == {"SITE-P": RUN}


def test_a_preloaded_lookup_answers_as_a_plain_one(tmp_path: Path) -> None:
    store = SqliteCache(tmp_path)
    alice = store.for_user("alice")
    other = ImageResult("Tower/DJI_0002.JPG", 7000, 1_700_000_100, error="no EXIF")
    alice.put_many(SERVER, [RESULT, other], PREFIX)
    store.for_user("bob").put_many(SERVER, [RESULT], "/SITE-B")
    changed = RemoteFile(other.path, other.size + 1, other.mtime)  # rewritten since
    listed = [FILE, changed, RemoteFile("Tower/DJI_0003.JPG", 1, 1)]
    plain = alice.get_many(SERVER, listed, PREFIX)
    assert plain == {FILE.path: RESULT}
    for user, prefix in (("alice", PREFIX), ("bob", PREFIX), ("alice", "/SITE-B")):
        ahead = store.for_user(user)
        ahead.preload(SERVER, prefix)  # as a scan does before it lists the site
        assert ahead.get_many(SERVER, listed, prefix) == store.for_user(user).get_many(
            SERVER, listed, prefix
        )
    ahead = store.for_user("alice")
    ahead.preload(SERVER, PREFIX)
    assert ahead.get_many(SERVER, listed, PREFIX) == plain
    # A second lookup reads the rows again: the preload serves one lookup, not a stale copy.
    alice.put_many(SERVER, [replace(other, size=changed.size)], PREFIX)
    assert ahead.get_many(SERVER, listed, PREFIX) == {
        FILE.path: RESULT,
        other.path: replace(other, size=changed.size),
    }
