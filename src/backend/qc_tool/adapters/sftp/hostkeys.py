"""Host keys: checked against QC_KNOWN_HOSTS before the password is sent; optionally learnt once.

Without trust-on-first-use an unknown or changed key refuses the connection. With it
(QC_TRUST_ON_FIRST_USE=1) an *unknown* host is let through to the login, and its key is
written to the known_hosts file only once that login has succeeded, so a server that cannot
log the user in never gets its key trusted. A *changed* key is refused either way.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from pathlib import Path

import paramiko

from qc_tool.errors import HostKeyRejected

log = logging.getLogger(__name__)

_RECORDING = threading.Lock()  # one writer of known_hosts files per process


def load_known_hosts(path: Path | None, *, trust_on_first_use: bool) -> paramiko.HostKeys:
    """The known hosts to verify against; a missing file is empty only when keys may be learnt."""
    if path is None:
        raise HostKeyRejected(
            "no known_hosts file is configured (QC_KNOWN_HOSTS), so the server cannot be verified"
        )
    if trust_on_first_use and not path.exists():
        return paramiko.HostKeys()
    try:
        return paramiko.HostKeys(str(path))
    except OSError as exc:
        raise HostKeyRejected(f"cannot read the known_hosts file {path}: {exc.strerror}") from exc


def key_types(known: paramiko.HostKeys, name: str) -> set[str]:
    """The key types known for ``name`` (asked for first, as OpenSSH does)."""
    entry = known.lookup(name)
    return set(entry.keys()) if entry else set()


def verify(
    known: paramiko.HostKeys, name: str, key: paramiko.PKey, *, trust_on_first_use: bool
) -> bool:
    """Raise HostKeyRejected for a changed key, or an unknown one unless it may be learnt.

    Returns True when the key is unknown and must be recorded after a successful login.
    """
    entry = known.lookup(name)
    if entry is None:
        if trust_on_first_use:
            log.warning(
                "first use of %s: trusting %s %s if the login succeeds",
                name,
                key.get_name(),
                key.fingerprint,
            )
            return True
        raise HostKeyRejected(
            f"the SFTP server's host key is unknown: {name} is not in the known_hosts file "
            f"(offered {key.get_name()} {key.fingerprint})"
        )
    expected = entry.get(key.get_name())
    if expected is None or expected != key:
        log.warning("host key mismatch for %s: offered %s", name, key.fingerprint)
        raise HostKeyRejected(
            f"the SFTP server's host key has CHANGED for {name} (offered {key.get_name()} "
            f"{key.fingerprint}); refusing to send the password"
        )
    return False


def record(path: Path, name: str, key: paramiko.PKey) -> None:
    """Add ``name``'s key to ``path`` atomically (0600); refuse if another key got there first.

    Called only after a successful login. Two connections learning the same host at once both
    land here: the second finds the key already recorded and leaves the file alone.
    """
    with _RECORDING:
        known = load_known_hosts(path, trust_on_first_use=True)
        if not verify(known, name, key, trust_on_first_use=True):
            return  # recorded meanwhile, with this very key
        existing = path.read_text(encoding="utf-8") if path.exists() else ""
        if existing and not existing.endswith("\n"):
            existing += "\n"
        line = f"{name} {key.get_name()} {key.get_base64()}\n"
        try:
            _write_atomically(path, existing + line)
        except OSError as exc:
            raise HostKeyRejected(
                f"cannot record the host key of {name} in {path}: {exc.strerror or exc}"
            ) from exc
    log.warning(
        "recorded the host key of %s in %s: %s %s", name, path, key.get_name(), key.fingerprint
    )


def _write_atomically(path: Path, text: str) -> None:
    """Write to a private temporary file next to ``path``, then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:  # mkstemp makes it 0600
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
