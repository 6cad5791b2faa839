"""Ctrl-C and SIGTERM during a run: prompt, remembered, and never lost in native code.

Three layers, because native libraries handle signals in their own ways:

1. A Python-level handler for SIGINT and SIGTERM raises KeyboardInterrupt. Unlike Python's
   default SIGINT handler it is called from the signal checks native code makes, so DuckDB
   aborts a query at once (reporting ``RuntimeError('Query interrupted')``, which the step loop
   recognises as an interruption because the request is remembered here).
2. Native code may swallow that exception at an unlucky moment; until the step loop
   acknowledges the interruption, a thread raises the signal again every second.
3. Native code may also not check for signals at all for a long time (seen with DuckDB's
   statement submission under load): no Python handler can run then. The C-level handler
   still writes to the signal wake-up fd; a watchdog reading it gives the main thread a grace
   period, then records the interruption itself and ends the process with exit code 130.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["GRACE_S", "ignore_signals", "interrupt_requested", "signals_as_interrupt"]

#: How long the main thread may take to act on a signal before the watchdog acts for it.
GRACE_S = 5.0
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _State:
    requested = False
    handled = threading.Event()
    repeater: threading.Thread | None = None


_STATE = _State()


def interrupt_requested() -> bool:
    """Whether Ctrl-C or SIGTERM arrived during the current run."""
    return _STATE.requested


@contextmanager
def signals_as_interrupt(on_stuck: Callable[[], None]) -> Iterator[None]:
    """Install the three layers for the duration of a run (main thread only).

    Args:
        on_stuck: Called from the watchdog thread when the main thread did not act on a signal
            within :data:`GRACE_S`; it must record the interruption. The process then exits.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def insist(signum: int) -> None:
        while not _STATE.handled.wait(1.0):
            signal.raise_signal(signum)

    def handler(signum: int, frame: FrameType | None) -> None:
        if _STATE.handled.is_set():
            return  # already acknowledged: the bookkeeping must not be interrupted again
        if not _STATE.requested:
            _STATE.requested = True
            _STATE.repeater = threading.Thread(target=insist, args=(signum,), daemon=True)
            _STATE.repeater.start()
        raise KeyboardInterrupt

    reader, writer = socket.socketpair()
    writer.setblocking(False)
    stop = threading.Event()

    def watchdog() -> None:
        while not stop.is_set():
            ready, _, _ = select.select([reader], [], [], 0.5)
            if not ready:
                continue
            signals = set(reader.recv(64))
            if not signals & {int(s) for s in _SIGNALS}:
                continue
            if _STATE.handled.wait(GRACE_S) or stop.is_set():
                continue
            print(
                "conveyor: the running step did not respond to the interrupt; the run is "
                "marked interrupted; continue it with `conveyor run --resume`",
                file=sys.stderr,
                flush=True,
            )
            try:
                on_stuck()
            finally:
                os._exit(130)

    _STATE.requested = False
    _STATE.handled.clear()
    previous = {sig: signal.signal(sig, handler) for sig in _SIGNALS}
    previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    guard = threading.Thread(target=watchdog, name="conveyor-interrupt-watchdog", daemon=True)
    guard.start()
    try:
        yield
    finally:
        stop.set()
        _STATE.handled.set()
        if _STATE.repeater is not None:  # no repeated signal may reach the default handlers
            _STATE.repeater.join()
            _STATE.repeater = None
        signal.set_wakeup_fd(previous_fd)
        for sig, old in previous.items():
            signal.signal(sig, old)
        guard.join()
        reader.close()
        writer.close()
        _STATE.requested = False


@contextmanager
def ignore_signals() -> Iterator[None]:
    """Acknowledge an interruption and let the bookkeeping finish even if a signal comes again."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _STATE.handled.set()  # the repeating thread and the watchdog stand down
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
