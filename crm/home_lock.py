"""One writer per CRM_HOME: the commands that write a home (`crm run`, `backfill`, `demo`,
`generate`) hold an exclusive lock on `CRM_HOME/.crm.lock` while they work.

Two runs at once on one home would interleave their writes: the BI snapshot of one date
published with the other's data, dbt's results of one read as the other's. The lock is a
`flock`, which the kernel releases when its holder exits, however it exits, so a killed run
never leaves a stale lock. A second command does not wait: it exits at once naming the
holder (pid, command, since when), which is what a scheduler or a person needs to decide.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from crm.errors import RetryableError
from crm.settings import Settings

LOCK_NAME = ".crm.lock"


class HomeBusyError(RetryableError):
    """Another command is writing this CRM_HOME."""


@contextmanager
def exclusive_home(settings: Settings, command: str) -> Iterator[None]:
    """Hold the home's lock for the block, or raise HomeBusyError naming its holder."""
    settings.home.mkdir(parents=True, exist_ok=True)
    path = settings.home / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise HomeBusyError(
                f"{settings.home} is in use by {_holder(path)}; one command writes a CRM_HOME "
                "at a time: wait for it to finish (or stop it), then run again"
            ) from None
        os.ftruncate(fd, 0)
        started = datetime.now(UTC).isoformat(timespec="seconds")
        os.write(
            fd, json.dumps({"pid": os.getpid(), "command": command, "since": started}).encode()
        )
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(path) -> str:
    try:
        held = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        held = {}
    if not held:
        return "another process"
    return f"`{held.get('command')}` (pid {held.get('pid')}, since {held.get('since')})"
