"""Many SFTP requests in flight on one channel, driven by the one thread that owns it.

SFTP lets a client send requests without waiting for replies; paramiko only does
that for prefetching one file. This engine runs many *tasks* (generators that
yield batches of SFTP operations and receive the replies) at once: it sends
every operation a task asks for, reads replies as they come, and resumes each
task when its batch is complete. Round trips overlap across hundreds of files,
so a scan costs a handful of round trips per wave instead of several per image.

The bytes go through ``wire.Wire``, which batches requests into few SSH packets;
paramiko still owns the SSH transport, the channel and its encryption.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from paramiko.sftp import (
    CMD_ATTRS,
    CMD_DATA,
    CMD_HANDLE,
    CMD_NAME,
    CMD_STATUS,
    SFTP_EOF,
    SFTP_NO_SUCH_FILE,
    SFTP_OK,
    SFTP_PERMISSION_DENIED,
)

from qc_tool.adapters.sftp.errors import translate
from qc_tool.adapters.sftp.wire import Reply, Wire
from qc_tool.errors import QCError, UnreadableImage

log = logging.getLogger(__name__)

K = TypeVar("K")
K_contra = TypeVar("K_contra", contravariant=True)
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


@dataclass(frozen=True, slots=True)
class LStat:
    path: str


Op = Open | Read | OpenDir | ReadDir | LStat
# A task yields a batch of operations and receives their replies, in order:
# Open/OpenDir -> handle (bytes); Read -> data (b"" at EOF); ReadDir -> list of
# SFTPAttributes (None at the end of the directory); LStat -> SFTPAttributes of the entry
# itself (a link is not followed).
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


class Admission(Protocol[K_contra]):
    """Room for a task's bytes: asked before a task starts, told of its reads and its end.

    A task is started only once admitted, and once started it is never held back: what it
    reads afterwards was reserved when it was admitted (or is taken past the reservation and
    counted, ``requested``). The engine waits for room (``admit``) only when it has nothing in
    flight, so the replies that end other tasks (and free room) are never left unread.
    """

    def try_admit(self, key: K_contra) -> bool:
        """Admit the task now if there is room; otherwise it waits its turn."""
        ...

    def admit(self, key: K_contra) -> bool:
        """Wait for room and admit the task; False: give up (the reads were cancelled)."""
        ...

    def requested(self, key: K_contra, nbytes: int) -> None:
        """The task asks for ``nbytes`` more bytes."""
        ...

    def finished(self, key: K_contra) -> None:
        """The task ended and was reported (``on_done`` returned)."""
        ...

    def abandon(self, key: K_contra) -> None:
        """The task was admitted (or waited for room) and will not be reported by this run."""
        ...


class Engine:
    """Runs tasks over one SFTP channel's wire; only the owning thread may call ``run``."""

    def __init__(self, wire: Wire, *, max_tasks: int = 64, max_requests: int = 256):
        self._wire = wire
        self._max_tasks = max_tasks
        self._max_requests = max_requests
        self._pending: dict[int, tuple[_Running[Any] | None, int]] = {}
        self._admission: Admission[Any] | None = None
        self.stats = EngineStats()

    def run(
        self,
        tasks: Iterator[tuple[K, Task[Any]]],
        on_done: OnDone[K],
        admission: Admission[K] | None = None,
    ) -> None:
        """Run every task; ``on_done(key, value, error)`` is called once per finished task.

        With ``admission``, a task starts only once admitted (Admission). Raises
        RemoteUnavailable if the connection fails; tasks already reported are final, the
        others were not reported (their admission is abandoned) and may be retried elsewhere.
        """
        active = 0
        exhausted = False
        parked: tuple[K, Task[Any]] | None = None  # the next task, waiting for room
        admitted: set[K] = set()
        self._admission = admission

        def done(key: K, value: Any, error: str | None) -> None:
            on_done(key, value, error)
            if admission is not None:
                admitted.discard(key)
                admission.finished(key)

        try:
            with translate("the SFTP server stopped answering"):
                while True:
                    while (
                        not exhausted
                        and active < self._max_tasks
                        and (len(self._pending) < self._max_requests)
                    ):
                        item, parked = parked or next(tasks, None), None
                        if item is None:
                            exhausted = True
                            break
                        if admission is not None:
                            if not admission.try_admit(item[0]):
                                if active:  # replies will come: read them, ask again after
                                    parked = item
                                    break
                                if not admission.admit(item[0]):
                                    exhausted = True
                                    break
                            admitted.add(item[0])
                        active += 1
                        if self._advance(_Running(item[0], item[1]), None, done):
                            active -= 1
                    self._wire.flush()
                    if exhausted and active == 0:
                        # Replies to the last CLOSEs stay in flight rather than be waited for;
                        # the next run on this wire reads and drops them.
                        return
                    for reply in self._wire.receive(block=True):
                        active -= self._dispatch(reply, done)
        finally:
            self._admission = None
            if admission is not None:
                for key in [*admitted, *([parked[0]] if parked else [])]:
                    admission.abandon(key)

    def _dispatch(self, reply: Reply, on_done: OnDone[Any]) -> int:
        """Hand one reply to its task; return 1 if that finished the task."""
        running, slot = self._pending.pop(reply.id, (None, 0))
        if running is None:
            return 0  # a CLOSE, or a reply left over from an earlier run
        try:
            running.replies[slot] = self._decode(running.ops[slot], reply, running)
        except SftpStatus as exc:
            running.failure = running.failure or exc
        running.waiting -= 1
        if running.waiting == 0 and self._advance(running, running.replies, on_done):
            return 1
        return 0

    def _decode(self, op: Op, reply: Reply, running: _Running[Any]) -> Any:
        if reply.type == CMD_STATUS:
            code, text = reply.status()
            if code == SFTP_EOF and isinstance(op, Read):
                return b""
            if code == SFTP_EOF and isinstance(op, ReadDir):
                return None
            if code != SFTP_OK:
                raise SftpStatus(code, text)
            return None
        if reply.type == CMD_HANDLE and isinstance(op, (Open, OpenDir)):
            handle = reply.string()
            running.handles.append(handle)
            return handle
        if reply.type == CMD_DATA and isinstance(op, Read):
            data = reply.string()
            self.stats.bytes_read += len(data)
            return data
        if reply.type == CMD_NAME and isinstance(op, ReadDir):
            return reply.names()
        if reply.type == CMD_ATTRS and isinstance(op, LStat):
            return reply.attrs()
        raise SftpStatus(-1, f"unexpected reply type {reply.type} to {type(op).__name__}")

    def _advance(self, running: _Running[K], replies: list[Any] | None, on_done: OnDone[K]) -> bool:
        """Resume a task with its replies; queue its next batch. True when the task ended."""
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
        if self._admission is not None:
            asked = sum(op.length for op in ops if isinstance(op, Read))
            if asked:
                self._admission.requested(running.key, asked)
        for slot, op in enumerate(ops):
            self._pending[self._send(op)] = (running, slot)
        return False

    def _send(self, op: Op) -> int:
        self.stats.requests += 1
        if isinstance(op, Read):
            return self._wire.read(op.handle, op.offset, op.length)
        if isinstance(op, Open):
            self.stats.files_opened += 1
            return self._wire.open(op.path)
        if isinstance(op, OpenDir):
            return self._wire.opendir(op.path)
        if isinstance(op, LStat):
            return self._wire.lstat(op.path)
        return self._wire.readdir(op.handle)

    def _close_handles(self, running: _Running[Any]) -> None:
        for handle in running.handles:
            self.stats.requests += 1
            self._pending[self._wire.close(handle)] = (None, 0)
        running.handles.clear()
