"""Short use cases of one connection each: check a login, list the sites.

Each opens exactly one connection (one password attempt) and closes it before returning, so a
page view never leaves a connection behind and a wrong password never costs a second attempt.
"""

from __future__ import annotations

import logging

from qc_tool.domain.models import SiteInfo
from qc_tool.services.ports import Connector

log = logging.getLogger(__name__)


def check_login(connector: Connector) -> None:
    """Log in once and log out; raises AuthFailed, HostKeyRejected or RemoteUnavailable."""
    connection = connector.connect()
    connection.close()
    log.debug("login checked against %s", connector.server_id)


def list_sites(connector: Connector) -> list[SiteInfo]:
    """The site folders under the sites root, each with its number of folders."""
    connection = connector.connect()
    try:
        return connection.list_sites()
    finally:
        connection.close()
