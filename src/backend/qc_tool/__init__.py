"""Drone photo QC for telecom tower sites.

``create_app`` is the web app factory: importing this package has no side effects; everything
(settings, the session store, the job threads, the cache) is made when an app is created.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

    from qc_tool.config import Settings

FRONTEND_DIR = Path(__file__).resolve().parents[2] / "frontend"
QUIET_LOGGERS = ("paramiko", "asyncssh")


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the web app from the environment's settings, overlaid with ``config``.

    Keys of ``config`` that are QC settings (see ``qc_tool.config.SETTINGS``) replace the
    environment's values; any other key goes to Flask's ``app.config`` (e.g. ``TESTING``).
    """
    # Imported here so that importing qc_tool (e.g. for the CLI) does not pull in Flask.
    from flask import Flask

    from qc_tool.web import api, auth, errors, pages, review, security, uploads, vendor
    from qc_tool.web.deps import EXTENSION_KEY, build_context

    settings, flask_config = _split_config(config or {})
    _configure_logging(settings.log_level)
    app = Flask(
        __name__,
        template_folder=str(FRONTEND_DIR / "templates"),
        static_folder=str(FRONTEND_DIR / "static"),
    )
    app.url_map.merge_slashes = False  # "/api/sites//etc/qc" is a 404, not a redirect to "etc"
    security.configure(app, settings)
    app.config.from_mapping(flask_config)
    app.extensions[EXTENSION_KEY] = build_context(settings)
    api.attach(app)
    for blueprint in (auth.bp, pages.bp, api.bp, review.bp, vendor.bp, uploads.bp, uploads.api):
        app.register_blueprint(blueprint)
    errors.register(app)

    @app.context_processor
    def inject_login() -> dict[str, Any]:
        login = auth.optional_login()
        return {"current_username": login.username if login else None}

    return app


def _split_config(overrides: Mapping[str, Any]) -> tuple[Settings, dict[str, Any]]:
    """(typed QC settings, other Flask config) from the environment and ``overrides``."""
    from qc_tool import config

    names = {s.name for s in config.SETTINGS}
    environ = dict(os.environ)
    flask_config: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in names:
            environ[key] = (
                "" if value is None else str(int(value) if isinstance(value, bool) else value)
            )
        else:
            flask_config[key] = value
    return config.load(environ), flask_config


def _configure_logging(level: str) -> None:
    """Our loggers at ``level``; the SSH libraries only at WARNING (they log every packet)."""
    ours = logging.getLogger("qc_tool")
    ours.setLevel(level.upper())
    if not ours.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        ours.addHandler(handler)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
