"""Small file helpers every stage uses: names safe for a folder, and writes a crash cannot
leave half-done."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path


def safe_name(text: str) -> str:
    """A file-name-safe form of a run id or other user-provided label."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return cleaned or "run"


def folder_name(identifier: str) -> str:
    """The folder of an id that may hold any character (an offer id from a CRM: `Travel
    Insurance/2027`): the id itself when it is a plain name, else its safe form and a short
    hash of the id, so that two ids never share a folder and none leaves its parent."""
    name = safe_name(identifier)
    if name == identifier:
        return name
    return f"{name}-{hashlib.sha256(identifier.encode()).hexdigest()[:8]}"


def fsync_path(path: Path) -> None:
    """Flush a file, or a folder's entries (after a rename), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def atomic_copy(source: Path, target: Path) -> None:
    """Copy `source` over `target` so a reader sees the old file or the new one, whole (the
    temporary name is the process's own, so two copies at once do not collide)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.copyfile(source, tmp)
    tmp.replace(target)
