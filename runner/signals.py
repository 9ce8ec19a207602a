"""SIGTERM (a scheduler's preemption) and SIGINT (Ctrl-C) end a run between steps, not inside one.

The first signal sets a request; the trainer finishes the step, writes a checkpoint and ends with
status ``preempted`` (SIGTERM, exit code 143) or ``interrupted`` (SIGINT, exit code 130). Every
process must stop at the same step, so the request is agreed over the communicator's side channel
(the strongest request of any process wins). A second Ctrl-C stops at once (KeyboardInterrupt).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

# what signal.signal returns and accepts: a handler, SIG_DFL/SIG_IGN (ints), or None (not set from Python)
SignalHandler = Callable[[int, FrameType | None], Any] | int | None

STATUS = {0: None, 1: "interrupted", 2: "preempted"}
EXIT_CODES = {"interrupted": 130, "preempted": 143}


class StopRequest:
    def __init__(self) -> None:
        self.code = 0
        self._previous: dict[int, SignalHandler] = {}

    def _handle(self, signum, frame) -> None:
        if signum == signal.SIGINT and self.code:
            raise KeyboardInterrupt
        self.code = max(self.code, 2 if signum == signal.SIGTERM else 1)

    def install(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def agreed(self, comm) -> str | None:
        """The status every process stops with after this step, or None to go on."""
        codes = comm.gather_floats([float(self.code)] * len(comm.local_workers))
        return STATUS[int(max(codes))]
