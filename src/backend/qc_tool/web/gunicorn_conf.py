"""gunicorn settings for start_qc_tool.sh (``--config python:qc_tool.web.gunicorn_conf``)."""

from __future__ import annotations

from typing import Any

# One worker process: logins and jobs live in this process's memory (passwords are
# never written anywhere), so every request must reach the process that holds them.
workers = 1
threads = 16
# gthread, except that a request is read in full on the event loop before a thread takes it:
# a client sending its head slowly no longer holds a thread (docs/deployment.md).
worker_class = "qc_tool.web.worker.RequestBufferingWorker"
# Connections open at once, the slow ones included; past it gunicorn stops accepting until
# one closes (each being read holds at most 96 KiB: worker.py).
worker_connections = 1000
timeout = 120
accesslog = "-"
errorlog = "-"
# gunicorn's control socket sits at one path per user (~/.gunicorn/gunicorn.ctl): a second
# instance would take it over and stopping either removes it. Nothing here uses it.
control_socket_disable = True


def worker_exit(server: Any, worker: Any) -> None:
    """Cancel running scans and close their connections when the worker stops."""
    app = getattr(worker, "wsgi", None)
    context = getattr(app, "extensions", {}).get("qc")
    if context is not None:
        context.close()
