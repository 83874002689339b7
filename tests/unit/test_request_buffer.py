"""The web worker's reading of a request before a thread takes it (web/worker.py), without I/O.

Through gunicorn, with real slow clients: tests/integration/test_slow_clients.py.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from flask import Flask
from gunicorn.config import Config
from qc_tool import config
from qc_tool.web import security
from qc_tool.web.worker import (
    BODY_MAX_BYTES,
    FD_RESERVE,
    HEAD_MAX_BYTES,
    Progress,
    RequestBuffer,
    buffered_body_length,
    buffers_requests,
)

HEAD = b"GET /login HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\n\r\n"


def fed(*chunks: bytes) -> list[Progress]:
    buffer = RequestBuffer()
    return [buffer.feed(chunk) for chunk in chunks]


def test_a_head_is_ready_only_once_its_blank_line_is_in() -> None:
    lines = HEAD.split(b"\r\n")
    chunks = [line + b"\r\n" for line in lines[:-1]]  # the last "line" is the blank one
    progress = fed(*chunks)
    assert progress[:-1] == [Progress.MORE] * (len(chunks) - 1)
    assert progress[-1] is Progress.READY


def test_the_end_of_a_head_is_found_when_split_between_chunks() -> None:
    for cut in range(len(HEAD) - 4, len(HEAD)):
        assert fed(HEAD[:cut], HEAD[cut:]) == [Progress.MORE, Progress.READY]
    assert fed(*(HEAD[i : i + 1] for i in range(len(HEAD))))[-2:] == [
        Progress.MORE,
        Progress.READY,
    ]


def test_bytes_held_from_a_previous_read_count() -> None:
    assert RequestBuffer(HEAD).progress() is Progress.READY
    assert RequestBuffer(HEAD[:10]).progress() is Progress.MORE


def test_a_small_form_body_is_read_before_the_request_is_ready() -> None:
    body = b"username=pilot&password=secret&csrf_token=abc"
    head = b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    assert fed(head, body[:10], body[10:]) == [Progress.MORE, Progress.MORE, Progress.READY]


def test_what_follows_a_complete_request_does_not_hold_it_back() -> None:
    assert fed(HEAD + b"GET /next HTTP/1.1\r\n") == [Progress.READY]


def test_bodies_the_app_reads_as_streams_or_refuses_go_to_the_thread_after_the_head() -> None:
    def length(*headers: str) -> int | None:
        head = "\r\n".join(["POST /uploads HTTP/1.1", "Host: x", *headers])
        return buffered_body_length(head.encode())

    assert length("Content-Length: 12") == 12
    assert length("content-length:  12 ") == 12
    assert length(f"Content-Length: {BODY_MAX_BYTES}") == BODY_MAX_BYTES
    assert length(f"Content-Length: {BODY_MAX_BYTES + 1}") == 0  # an upload: streamed
    assert length("Content-Length: 12", "Expect: 100-continue") == 12  # sent after a short wait
    assert length() == 0
    # gunicorn's parser refuses these (400): no reason to wait for a body first
    assert length("Content-Length: 12", "Content-Length: 12") == 0
    assert length("Content-Length: -1") == 0
    assert length("Content-Length: 1e3") == 0
    assert length("Content-Length: " + "9" * 5000) == 0  # int() of it would raise


def test_a_chunked_body_is_refused_once_the_head_is_in() -> None:
    head = b"POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    assert fed(head, b"\r\n") == [Progress.MORE, Progress.CHUNKED]
    assert buffered_body_length(b"POST / HTTP/1.1\r\ntransfer-encoding: gzip, chunked") is None


def test_a_head_larger_than_the_limit_is_refused_whether_it_ends_or_not() -> None:
    start = b"GET / HTTP/1.1\r\nX-Big: "
    endless = start + b"a" * HEAD_MAX_BYTES
    assert fed(endless[:HEAD_MAX_BYTES], endless[HEAD_MAX_BYTES:]) == [
        Progress.MORE,
        Progress.TOO_LARGE,
    ]
    largest = start + b"a" * (HEAD_MAX_BYTES - len(start) - 4) + b"\r\n\r\n"
    assert len(largest) == HEAD_MAX_BYTES
    assert fed(largest) == [Progress.READY]
    assert fed(start + b"a" + largest[len(start) :]) == [Progress.TOO_LARGE]


def test_the_buffered_body_limit_is_the_apps_form_limit() -> None:
    app = Flask(__name__)
    security.configure(app, config.load({}))
    assert app.config["MAX_CONTENT_LENGTH"] == BODY_MAX_BYTES


def _limits_after_making_room(soft: int, hard: int, connections: int) -> tuple[int, int, int]:
    """In a child process started with these open-files limits: (fit, soft, hard) after."""
    code = textwrap.dedent(
        f"""
        import resource
        from qc_tool.web.worker import make_room_for
        fit = make_room_for({connections})
        print(fit, *resource.getrlimit(resource.RLIMIT_NOFILE))
        """
    )

    def limit() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    out = subprocess.run(
        [sys.executable, "-c", code], preexec_fn=limit, capture_output=True, check=True, text=True
    ).stdout.split()
    fit, new_soft, new_hard = (int(v) for v in out)
    return fit, new_soft, new_hard


def test_the_worker_raises_its_open_files_limit_to_fit_its_connections() -> None:
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 1000 + FD_RESERVE
    if hard != resource.RLIM_INFINITY and hard < needed:
        hard_for_child = hard
    else:
        hard_for_child = needed + 100
    fit, soft, new_hard = _limits_after_making_room(200, hard_for_child, 1000)
    assert new_hard == hard_for_child
    assert soft == min(needed, hard_for_child)
    assert fit == min(1000, hard_for_child - FD_RESERVE)


def test_with_a_low_hard_limit_fewer_connections_fit() -> None:
    fit, soft, hard = _limits_after_making_room(300, 400, 1000)
    assert (fit, soft, hard) == (400 - FD_RESERVE, 400, 400)


def test_requests_are_read_first_on_plain_http_only() -> None:
    def cfg(**settings: str) -> Config:
        made = Config()
        for name, value in settings.items():
            made.set(name, value)
        return made

    assert buffers_requests(cfg())
    assert not buffers_requests(cfg(certfile="cert.pem", keyfile="key.pem"))  # TLS in the thread
    assert not buffers_requests(cfg(protocol="uwsgi"))
    assert not buffers_requests(cfg(http2_cleartext="prior-knowledge"))
