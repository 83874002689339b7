"""Many SFTP requests in flight on one channel, driven by the one thread that owns it.

SFTP lets a client send requests without waiting for replies; paramiko only does
that for prefetching one file. This engine runs many *tasks* (generators that
yield batches of SFTP operations and receive the replies) at once: it sends
every operation a task asks for, reads replies as they come, and resumes each
task when its batch is complete. Round trips overlap across hundreds of files,
so a scan costs a handful of round trips per wave instead of several per image.

It uses paramiko's request plumbing (``_async_request``/``_read_response``, the
same calls SFTPFile.prefetch uses); that is pinned by requirements.txt and
covered by the integration tests against OpenSSH and the in-process server.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import paramiko
from paramiko.message import Message
from paramiko.sftp import (
    CMD_CLOSE,
    CMD_DATA,
    CMD_HANDLE,
    CMD_NAME,
    CMD_OPEN,
    CMD_OPENDIR,
    CMD_READ,
    CMD_READDIR,
    CMD_STATUS,
    SFTP_EOF,
    SFTP_FLAG_READ,
    SFTP_NO_SUCH_FILE,
    SFTP_OK,
    SFTP_PERMISSION_DENIED,
    int64,
)
from paramiko.sftp_attr import SFTPAttributes

from qc_tool.errors import QCError, RemoteUnavailable, UnreadableImage

log = logging.getLogger(__name__)

K = TypeVar("K")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Open:
    path: str


@dataclass(frozen=True, slots=True)
class Read:
    handle: bytes
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class OpenDir:
    path: str


@dataclass(frozen=True, slots=True)
class ReadDir:
    handle: bytes


Op = Open | Read | OpenDir | ReadDir
# A task yields a batch of operations and receives their replies, in order:
# Open/OpenDir -> handle (bytes); Read -> data (b"" at EOF); ReadDir -> list of
# SFTPAttributes (None at the end of the directory).
Task = Generator[list[Op], list[Any], T]


class SftpStatus(Exception):
    """The server answered a request with an error status."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text

    def describe(self) -> str:
        if self.code == SFTP_NO_SUCH_FILE:
            return "no such file on the server"
        if self.code == SFTP_PERMISSION_DENIED:
            return "permission denied by the server"
        return f"the server refused the request: {self.text or 'failure'}"


@dataclass(slots=True)
class EngineStats:
    requests: int = 0
    files_opened: int = 0
    bytes_read: int = 0


@dataclass(slots=True)
class _Running(Generic[K]):
    key: K
    task: Task[Any]
    handles: list[bytes] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    replies: list[Any] = field(default_factory=list)
    waiting: int = 0
    failure: BaseException | None = None


OnDone = Callable[[K, Any, "str | None"], None]


class Engine:
    """Runs tasks over one SFTPClient; only the owning thread may call ``run``."""

    def __init__(self, sftp: paramiko.SFTPClient, *, max_tasks: int = 64, max_requests: int = 256):
        self._sftp = sftp
        self._max_tasks = max_tasks
        self._max_requests = max_requests
        self._pending: dict[int, tuple[_Running[Any] | None, int]] = {}
        self._finished = 0
        self._on_done: OnDone[Any] = _ignore
        self.stats = EngineStats()

    def run(self, tasks: Iterator[tuple[K, Task[Any]]], on_done: OnDone[K]) -> None:
        """Run every task; ``on_done(key, value, error)`` is called once per finished task.

        Raises RemoteUnavailable if the connection fails; tasks already reported are
        final, the others were not reported and may be retried elsewhere.
        """
        active = 0
        exhausted = False
        self._on_done = on_done
        try:
            while True:
                while (
                    not exhausted
                    and active < self._max_tasks
                    and (len(self._pending) < self._max_requests)
                ):
                    item = next(tasks, None)
                    if item is None:
                        exhausted = True
                        break
                    running = _Running(item[0], item[1])
                    active += 1
                    if self._advance(running, None, on_done):
                        active -= 1
                if exhausted and active == 0:
                    # Replies to the last CLOSEs are left in flight rather than waited for:
                    # whoever reads this channel next drops them (they are registered to us).
                    return
                if not self._pending:
                    continue
                finished = self._read_one()
                active -= finished
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise _connection_error(exc) from exc

    def _read_one(self) -> int:
        """Read one reply; return how many tasks finished because of it."""
        self._finished = 0
        self._sftp._read_response()  # dispatches to self._async_response
        return self._finished

    # paramiko calls this (from _read_response, in our thread) for each reply.
    def _async_response(self, t: int, msg: Message, num: int) -> None:
        entry = self._pending.pop(num, None)
        if entry is None:
            return
        running, slot = entry
        if running is None:  # a CLOSE: nothing waits on it
            return
        try:
            running.replies[slot] = self._decode(running.ops[slot], t, msg, running)
        except SftpStatus as exc:
            running.failure = running.failure or exc
        running.waiting -= 1
        if running.waiting == 0 and self._advance(running, running.replies, self._on_done):
            self._finished += 1

    def _decode(self, op: Op, t: int, msg: Message, running: _Running[Any]) -> Any:
        if t == CMD_STATUS:
            code, text = msg.get_int(), msg.get_text()
            if code == SFTP_EOF and isinstance(op, Read):
                return b""
            if code == SFTP_EOF and isinstance(op, ReadDir):
                return None
            if code != SFTP_OK:
                raise SftpStatus(code, text)
            return None
        if t == CMD_HANDLE and isinstance(op, (Open, OpenDir)):
            handle = msg.get_binary()
            running.handles.append(handle)
            return handle
        if t == CMD_DATA and isinstance(op, Read):
            data = msg.get_string()
            self.stats.bytes_read += len(data)
            return data
        if t == CMD_NAME and isinstance(op, ReadDir):
            entries = []
            for _ in range(msg.get_int()):
                name, longname = msg.get_text(), msg.get_text()
                entries.append(SFTPAttributes._from_msg(msg, name, longname))
            return entries
        raise SftpStatus(-1, f"unexpected reply type {t} to {type(op).__name__}")

    def _advance(self, running: _Running[K], replies: list[Any] | None, on_done: OnDone[K]) -> bool:
        """Resume a task with its replies; send its next batch. True when the task ended."""
        try:
            if replies is None:
                ops = next(running.task)
            elif running.failure is not None:
                failure, running.failure = running.failure, None
                ops = running.task.throw(failure)
            else:
                ops = running.task.send(replies)
        except StopIteration as stop:
            self._close_handles(running)
            on_done(running.key, stop.value, None)
            return True
        except SftpStatus as exc:
            self._close_handles(running)
            on_done(running.key, None, exc.describe())
            return True
        except QCError as exc:
            self._close_handles(running)
            on_done(running.key, None, exc.message)
            return True
        except Exception as exc:  # a bug in a task must cost one result, not the scan
            log.exception("internal error while reading %r", running.key)
            self._close_handles(running)
            on_done(running.key, None, f"internal error: {type(exc).__name__}")
            return True
        if not ops:
            raise UnreadableImage("internal error: a task asked for nothing")
        running.ops, running.replies, running.waiting = ops, [None] * len(ops), len(ops)
        for slot, op in enumerate(ops):
            num = self._send(running, op)
            self._pending[num] = (running, slot)
        return False

    def _send(self, running: _Running[Any] | None, op: Op) -> int:
        sftp = self._sftp
        self.stats.requests += 1
        if isinstance(op, Read):
            return int(sftp._async_request(self, CMD_READ, op.handle, int64(op.offset), op.length))
        if isinstance(op, Open):
            self.stats.files_opened += 1
            return int(
                sftp._async_request(
                    self, CMD_OPEN, op.path.encode(), SFTP_FLAG_READ, SFTPAttributes()
                )
            )
        if isinstance(op, OpenDir):
            return int(sftp._async_request(self, CMD_OPENDIR, op.path.encode()))
        return int(sftp._async_request(self, CMD_READDIR, op.handle))

    def _close_handles(self, running: _Running[Any]) -> None:
        # Fire-and-forget: the reply is read (and dropped) by the loop, keeping the channel clean.
        for handle in running.handles:
            self.stats.requests += 1
            num = int(self._sftp._async_request(self, CMD_CLOSE, handle))
            self._pending[num] = (None, 0)
        running.handles.clear()


def _ignore(key: Any, value: Any, error: str | None) -> None:
    """Placeholder callback before ``run`` installs the real one."""


def _connection_error(exc: BaseException) -> RemoteUnavailable:
    if isinstance(exc, socket.timeout):
        return RemoteUnavailable("the SFTP server stopped answering (timed out)")
    if isinstance(exc, OSError) and exc.errno in (errno.ECONNRESET, errno.EPIPE):
        return RemoteUnavailable("the SFTP server closed the connection")
    return RemoteUnavailable(f"the SFTP connection failed: {exc}")
