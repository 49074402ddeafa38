"""Named points where a test can make the process die, to prove a step is crash-safe.

`checkpoint(name)` does nothing unless `CRM_FAULT_POINT` equals `name`; then the process
kills itself with SIGKILL (no cleanup, no exception handlers, like a lost machine). Only
tests set the variable.
"""

from __future__ import annotations

import os
import signal


def checkpoint(name: str) -> None:
    if os.environ.get("CRM_FAULT_POINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
