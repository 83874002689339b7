"""SFTP packets on one channel: many requests per SSH packet out, many replies per read in.

paramiko sends every SFTP request as its own SSH packet (one encryption, one MAC,
one syscall) and reads every reply with two small channel reads. At a thousand
images a second that per-packet cost is most of the client's CPU. The wire
frames requests itself, sends everything queued in one ``sendall``, and splits
replies out of large channel reads. Request ids come from the SFTPClient's own
counter, so paramiko's later requests (its CLOSE of the channel) never collide.

``Wire(sftp, framed=False)`` sends and reads the way paramiko does (one write per request,
two reads per reply), through paramiko's own functions. Only the benchmark uses it
(``python -m bench.run --no-framing``), to measure what the framing buys.

The paramiko internals used here (``SFTPClient._lock``, ``request_number``,
``_send_packet``, ``_read_packet``, ``SFTPAttributes._from_msg``) are pinned by
tests/unit/test_wire_contract.py, which fails with the reason if an upgrade changes them.
"""

from __future__ import annotations

import struct

import paramiko
from paramiko.message import Message
from paramiko.sftp import (
    CMD_CLOSE,
    CMD_LSTAT,
    CMD_OPEN,
    CMD_OPENDIR,
    CMD_READ,
    CMD_READDIR,
    SFTP_FLAG_READ,
    SFTPError,
)
from paramiko.sftp_attr import SFTPAttributes

from qc_tool.domain.paths import display_name

RECV_SIZE = 1 << 20
MAX_REPLY = 16 * 1024 * 1024  # a length above this is not an SFTP reply: the stream is corrupt

_HEAD = struct.Struct(">IBI")  # length, type, request id
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_TWO = struct.Struct(">II")
_READ = struct.Struct(">QI")


class WireError(EOFError):
    """The channel closed or carried something that is not SFTP."""


def _string(data: bytes) -> bytes:
    return _U32.pack(len(data)) + data


class Reply:
    """One decoded reply: its type and request id, and the fields of its body."""

    __slots__ = ("body", "id", "type")

    def __init__(self, type_: int, id_: int, body: bytes) -> None:
        self.type, self.id, self.body = type_, id_, body

    def _need(self, size: int) -> None:
        """A body shorter than its type's fields is not SFTP: never decoded from what is not."""
        if len(self.body) < size:
            raise WireError(f"garbage on the SFTP channel (a reply of type {self.type} cut short)")

    def _u32(self, offset: int) -> int:
        self._need(offset + 4)
        value: int = _U32.unpack_from(self.body, offset)[0]
        return value

    def string(self) -> bytes:
        n = self._u32(0)
        self._need(4 + n)
        return bytes(self.body[4 : 4 + n])

    def status(self) -> tuple[int, str]:
        code = self._u32(0)
        text = ""
        if len(self.body) >= 8:  # the message is optional; a short one is shown as it is
            n = self._u32(4)
            text = self.body[8 : 8 + n].decode("utf-8", "replace")
        return code, text

    def names(self) -> list[SFTPAttributes]:
        """The entries of a READDIR reply; each ``filename`` as ``paths.display_name`` shows it.

        Names are bytes on the server and need not be UTF-8 (paramiko's ``get_text`` would
        raise on them): one that is not, or that holds control characters, comes out escaped.
        Decoded here with struct rather than by paramiko's Message, a call per field: a
        site's 1,400 entries cost a few milliseconds, not twenty, on the rescan's critical
        path. A field running past the body is garbage (paramiko would pad it with zeros).
        """
        body = self.body
        count = self._u32(0)
        # Each entry takes at least three words (name, long name, attribute flags): a count
        # above what the body can hold is garbage, never decoded from paramiko's zero padding.
        if count > (len(body) - 4) // 12:
            raise WireError(f"garbage on the SFTP channel (a listing of {count} entries)")
        pos, entries = 4, []
        try:
            for _ in range(count):
                raw, pos = _string_at(body, pos)
                longname, pos = _string_at(body, pos)  # ls -l text; never used
                attr = SFTPAttributes()
                attr.filename = display_name(raw)
                attr.longname = longname.decode("utf-8", "replace")
                pos = _unpack_attrs(attr, body, pos)
                entries.append(attr)
        except struct.error as exc:
            raise WireError(f"garbage on the SFTP channel (a listing cut short: {exc})") from exc
        if pos > len(body):
            raise WireError("garbage on the SFTP channel (a listing cut short)")
        return entries

    def attrs(self) -> SFTPAttributes:
        """The attributes of an ATTRS reply (to LSTAT: the entry itself, a link not followed),
        decoded as a listing's are."""
        self._need(4)
        attr = SFTPAttributes()
        try:
            end = _unpack_attrs(attr, self.body, 0)
        except struct.error as exc:
            raise WireError(f"garbage on the SFTP channel (attributes cut short: {exc})") from exc
        if end > len(self.body):
            raise WireError("garbage on the SFTP channel (attributes cut short)")
        return attr


def _string_at(body: bytes, pos: int) -> tuple[bytes, int]:
    """The length-prefixed string at ``pos`` and the offset after it (a string running past
    the body comes out short; the caller checks the final offset)."""
    (n,) = _U32.unpack_from(body, pos)
    return body[pos + 4 : pos + 4 + n], pos + 4 + n


def _unpack_attrs(attr: SFTPAttributes, body: bytes, pos: int) -> int:
    """Fill ``attr`` from the attributes at ``pos``, their flags first (as
    ``SFTPAttributes._unpack`` reads them, SFTP v3); return the offset after them."""
    (flags,) = _U32.unpack_from(body, pos)
    pos += 4
    attr._flags = flags
    if flags & SFTPAttributes.FLAG_SIZE:
        (attr.st_size,) = _U64.unpack_from(body, pos)
        pos += 8
    if flags & SFTPAttributes.FLAG_UIDGID:
        attr.st_uid, attr.st_gid = _TWO.unpack_from(body, pos)
        pos += 8
    if flags & SFTPAttributes.FLAG_PERMISSIONS:
        (attr.st_mode,) = _U32.unpack_from(body, pos)
        pos += 4
    if flags & SFTPAttributes.FLAG_AMTIME:
        attr.st_atime, attr.st_mtime = _TWO.unpack_from(body, pos)
        pos += 8
    if flags & SFTPAttributes.FLAG_EXTENDED:
        (pairs,) = _U32.unpack_from(body, pos)
        pos += 4
        for _ in range(pairs):
            key, pos = _string_at(body, pos)
            attr.attr[key], pos = _string_at(body, pos)
    return pos


class Wire:
    """The framing of one SFTP channel; owned, like the channel, by one thread at a time."""

    def __init__(self, sftp: paramiko.SFTPClient, *, framed: bool = True) -> None:
        self._sftp = sftp
        self._chan = sftp.get_channel()
        self._framed = framed  # False: paramiko's own sending and reading (benchmark only)
        self._out: list[bytes] = []
        self._in = bytearray()

    def _next_id(self) -> int:
        with self._sftp._lock:
            num = int(self._sftp.request_number)
            self._sftp.request_number += 1
        return num

    def _queue(self, t: int, payload: bytes) -> int:
        num = self._next_id()
        if self._framed:
            self._out.append(_HEAD.pack(len(payload) + 5, t, num) + payload)
        else:  # as paramiko's own requests go: one write, so one SSH packet, each
            self._sftp._send_packet(t, Message(_U32.pack(num) + payload))
        return num

    def open(self, path: str) -> int:
        # flags: read only; attrs: none (a zero attribute-flags word)
        return self._queue(
            CMD_OPEN, _string(path.encode()) + _U32.pack(SFTP_FLAG_READ) + _U32.pack(0)
        )

    def read(self, handle: bytes, offset: int, length: int) -> int:
        return self._queue(CMD_READ, _string(handle) + _READ.pack(offset, length))

    def close(self, handle: bytes) -> int:
        return self._queue(CMD_CLOSE, _string(handle))

    def opendir(self, path: str) -> int:
        return self._queue(CMD_OPENDIR, _string(path.encode()))

    def readdir(self, handle: bytes) -> int:
        return self._queue(CMD_READDIR, _string(handle))

    def lstat(self, path: str) -> int:
        return self._queue(CMD_LSTAT, _string(path.encode()))

    def flush(self) -> None:
        """Send every queued request; SSH splits them into as few packets as the window allows."""
        if self._out:
            data = b"".join(self._out)
            self._out.clear()
            self._chan.sendall(data)

    def receive(self, block: bool) -> list[Reply]:
        """The complete replies available now; with ``block``, wait for at least some bytes."""
        if not self._framed:
            return self._receive_one(block)
        if block or self._chan.recv_ready():
            chunk = self._chan.recv(RECV_SIZE)
            if not chunk:
                raise WireError("the server closed the SFTP channel")
            self._in += chunk
        replies = []
        buf, pos = self._in, 0
        while len(buf) - pos >= 9:
            length, t, num = _HEAD.unpack_from(buf, pos)
            if length > MAX_REPLY or length < 5:
                raise WireError(f"garbage on the SFTP channel (a reply of {length} bytes)")
            if len(buf) - pos < 4 + length:
                break
            replies.append(Reply(t, num, bytes(buf[pos + 9 : pos + 4 + length])))
            pos += 4 + length
        if pos:
            del self._in[:pos]
        return replies

    def _receive_one(self, block: bool) -> list[Reply]:
        """One reply, read as paramiko reads it: its length, then the rest (two channel reads)."""
        if not (block or self._chan.recv_ready()):
            return []
        try:
            t, data = self._sftp._read_packet()
        except SFTPError as exc:  # "Garbage packet received"
            raise WireError(f"garbage on the SFTP channel ({exc})") from exc
        if len(data) < 4:
            raise WireError(f"garbage on the SFTP channel (a reply of {len(data) + 1} bytes)")
        (num,) = _U32.unpack_from(data, 0)
        return [Reply(t, num, data[4:])]
