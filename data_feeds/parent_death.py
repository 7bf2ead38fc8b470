"""Child processes that stop when their parent dies, however it dies (Linux)."""
from __future__ import annotations

import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1


def stop_with_parent() -> None:
    """``preexec_fn`` for ``subprocess.Popen``: the kernel sends the child SIGTERM when the parent exits.

    Without it a dashboard killed with SIGKILL (or by the OOM killer) would leave its feed
    consumer, simulator and Redis server running with nobody to stop them.
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
