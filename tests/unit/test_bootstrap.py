"""One bootstrap builds every collaborator from the settings; a keyword swaps one for a fake."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fakes import FakeConnector
from qc_tool.adapters.local import LocalConnector
from qc_tool.adapters.sftp.connect import SftpEndpoint
from qc_tool.bootstrap import bootstrap, bootstrap_app, sftp_endpoint
from qc_tool.config import load
from qc_tool.errors import QCError
from qc_tool.services.uploads.zip_safety import MB
from qc_tool.web.deps import QCContext, build_context
from waiting import wait_until

SETTINGS = {
    "QC_SFTP_HOST": "sftp.example",
    "QC_SFTP_PORT": "2222",
    "QC_SITES_ROOT": "/data/sites",
    "QC_KNOWN_HOSTS": "/etc/qc/known_hosts",
    "QC_TRUST_ON_FIRST_USE": "1",
    "QC_CONNECT_TIMEOUT": "4.5",
    "QC_OP_TIMEOUT": "12",
    "QC_MAX_SERVER_CONNECTIONS": "9",
    "QC_MAX_SERVER_HANDSHAKES": "3",
    "QC_MAX_LISTING": "500",
    "QC_MAX_CONNECTIONS": "2",
    "QC_MAX_JOBS": "1",
    "QC_MAX_JOBS_PER_LOGIN": "1",
    "QC_LOGIN_MAX_FAILURES": "3",
    "QC_LOGIN_WINDOW_S": "60",
    "QC_PARSE_WORKERS": "0",
    "QC_CHECK_WORKERS": "0",
    "QC_MIN_RESOLUTION": "4000x3000",
    "QC_UPLOAD_MAX_MB": "0.5",
    "QC_UPLOAD_MAX_FILES": "7",
    "QC_UPLOAD_MAX_TOTAL_MB": "1.5",
    "QC_UPLOAD_KEEP_MINUTES": "2",
}


@pytest.fixture
def web(tmp_path: Path) -> Iterator[QCContext]:
    """The web app's context over an in-memory server: the bootstrap with one fake swapped in."""
    settings = load(SETTINGS | {"QC_CACHE_DIR": str(tmp_path / "cache")})
    ctx = build_context(settings, connect=lambda *where: FakeConnector({"F1": 3, "F2": 2}))
    try:
        yield ctx
    finally:
        ctx.close()


def test_every_collaborator_is_made_from_its_settings(tmp_path: Path) -> None:
    settings = load(SETTINGS | {"QC_CACHE_DIR": str(tmp_path / "cache")})
    parts = bootstrap_app(settings)
    assert parts.endpoint == SftpEndpoint(
        "sftp.example",
        2222,
        Path("/etc/qc/known_hosts"),
        connect_timeout=4.5,
        op_timeout=12.0,
        max_connections=9,
        max_handshakes=3,
        trust_on_first_use=True,
        max_listing=500,
    )
    assert parts.cache is not None and parts.cache.path.parent == tmp_path / "cache"
    assert parts.parser is None  # QC_PARSE_WORKERS=0: parse in the scan's own thread
    assert parts.check_options.max_connections == 2
    assert parts.check_options.min_resolution == (4000, 3000)
    assert parts.site_profile is None
    assert (parts.login_limiter.max_failures, parts.login_limiter.window_s) == (3, 60.0)
    assert parts.uploads is not None
    assert parts.uploads.limits.max_zip_bytes == MB // 2
    assert parts.uploads.limits.max_entries == 7
    assert parts.uploads.limits.max_photo_bytes == int(1.5 * MB)
    assert parts.uploads.keep_seconds == 120.0
    parts.uploads.close()


def test_building_starts_no_thread_and_no_process(tmp_path: Path) -> None:
    before = threading.active_count()
    parts = bootstrap_app(load({"QC_CACHE_DIR": str(tmp_path), "QC_PARSE_WORKERS": "2"}))
    assert threading.active_count() == before
    assert parts.parser is not None and not parts.parser.pool.started
    assert not parts.measuring.started


def test_a_keyword_replaces_its_collaborator_and_none_means_none(tmp_path: Path) -> None:
    settings = load({"QC_CACHE_DIR": str(tmp_path)})
    endpoint = replace(sftp_endpoint(settings), host="cli.example", known_hosts=tmp_path / "kh")
    parts = bootstrap_app(settings, endpoint=endpoint, cache=None, uploads=None)
    assert parts.endpoint.host == "cli.example"
    assert parts.endpoint.known_hosts == tmp_path / "kh"
    assert parts.endpoint.max_listing == settings.max_listing  # the limits stay the settings'
    assert parts.cache is None and parts.uploads is None


def test_a_bad_settings_value_stops_the_bootstrap(tmp_path: Path) -> None:
    settings = load({"QC_CACHE_DIR": str(tmp_path), "QC_MIN_RESOLUTION": "big"})
    with pytest.raises(QCError, match="WIDTHxHEIGHT"):
        bootstrap(settings)


def test_the_web_context_runs_a_qc_job_on_a_fake_server(web: QCContext) -> None:
    sid = web.sessions.create("alice", "pw")
    job = web.jobs.start(sid, "SITE", web.scan_runner(sid, "SITE"), checks=False)
    wait_until(job.ended, message="the job to end")
    assert job.state == "done", job.error
    document = job.document()  # packed once the job ended
    assert document is not None
    assert sorted(image["path"] for image in document["images"]) == [
        *(f"F1/{i:04d}.JPG" for i in range(3)),
        *(f"F2/{i:04d}.JPG" for i in range(2)),
    ]
    runs = web.user_cache("alice").last_runs("fake://")
    assert list(runs) == ["SITE"]  # the job's verdict was recorded for this user only
    assert web.user_cache("bob").last_runs("fake://") == {}


def test_the_uploads_read_their_folder_with_the_local_adapter(tmp_path: Path) -> None:
    parts = bootstrap_app(load({"QC_CACHE_DIR": str(tmp_path)}))
    assert parts.uploads is not None
    connector = parts.uploads._open_folder(tmp_path)
    assert isinstance(connector, LocalConnector)
    parts.uploads.close()


def test_the_clis_bootstrap_imports_none_of_the_web_apps_parts() -> None:
    """``bootstrap`` (the CLI's) leaves Pillow, numpy, jobs and uploads unimported: start-up."""
    code = (
        "import sys; from qc_tool import cli; from qc_tool.bootstrap import bootstrap; "
        "from qc_tool.config import load; bootstrap(load({'QC_CACHE_DIR': sys.argv[1]})); "
        "heavy = ['numpy', 'PIL', 'flask', 'qc_tool.services.jobs', "
        "'qc_tool.services.uploads.store', 'qc_tool.services.previews', "
        "'qc_tool.services.checks.run']; "
        "print(' '.join(m for m in heavy if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(Path(tempfile.mkdtemp()))],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.split() == []
