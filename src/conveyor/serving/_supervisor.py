"""The server's parent process: watches the workers, reads what they report, stops them.

Each worker reports on its own ``multiprocessing`` queue: that it is ready, that its models
failed to load, which plan it applied, and its rollout statistics (every two seconds and once
more while it stops; one float per row predicted, so hundreds of kilobytes after heavy
traffic). Three properties of such a queue shape this module:

* ``put`` hands the message to a feeder thread that writes it into a pipe (64 KiB), and a
  process joins that thread before it exits: a worker whose last report does not fit cannot
  exit until the parent reads it. :meth:`Supervisor.stop` therefore keeps reading while the
  workers stop.
* A worker killed while its feeder was writing leaves half a message in the pipe, and ``get``
  then waits for the rest forever, whatever its timeout (the parent holds the pipe's write
  end too, so no end of file comes). :class:`WorkerEvents` therefore reads every queue in a
  daemon thread: the parent's own waits are all bounded, and a reader stuck on a dead
  worker's half message is abandoned with it.
* The feeder holds a lock shared by every writer of the queue while it writes: one queue per
  worker keeps a worker killed mid-message from silencing the others.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

__all__ = ["Supervisor", "WorkerEvents", "WorkerReady"]

logger = logging.getLogger("conveyor.serving")

#: How often a reader thread looks again at a queue it was told to finish.
READ_POLL_S: Final = 0.1
#: Longest wait for the reports of the stopped workers still in their queues.
DRAIN_TIMEOUT_S: Final = 3.0
#: Longest wait for a killed worker to be gone.
KILL_WAIT_S: Final = 5.0


@dataclass(frozen=True)
class WorkerReady:
    """A worker's report that its models are loaded and warmed up."""

    index: int
    pid: int
    models: tuple[tuple[str, int, str, float], ...]  # name, version, runtime, load seconds


class WorkerEvents:
    """The workers' events in one local queue, moved there by one daemon thread per worker.

    Thread-safe. A reader is told to finish when its worker is replaced and at shutdown
    (:meth:`finish`); it then reads what is left in its queue and ends at the first silence.
    """

    def __init__(self) -> None:
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._readers: list[tuple[int, threading.Thread, threading.Event]] = []
        self._lock = threading.Lock()

    def attach(self, index: int, events: multiprocessing.Queue[Any]) -> None:
        """Read worker ``index``'s queue from now on (the previous worker's reader finishes)."""
        done = threading.Event()
        thread = threading.Thread(
            target=_read, args=(events, self._inbox, done), name=f"conveyor-events-{index}"
        )
        thread.daemon = True  # it may wait forever on half a message: never joined
        with self._lock:
            for other, _, other_done in self._readers:
                if other == index:
                    other_done.set()
            self._readers = [r for r in self._readers if r[1].is_alive()]
            self._readers.append((index, thread, done))
        thread.start()

    def get(self, timeout: float) -> Any:
        """The next event, or None after ``timeout`` seconds without one."""
        try:
            return self._inbox.get(timeout=timeout)
        except queue.Empty:
            return None

    def finish(self) -> None:
        """Tell every reader to finish once its queue is empty (the workers have exited)."""
        with self._lock:
            for _, _, done in self._readers:
                done.set()

    def reading(self) -> list[int]:
        """The workers whose queues are still read."""
        with self._lock:
            return sorted({index for index, thread, _ in self._readers if thread.is_alive()})

    def empty(self) -> bool:
        """Whether no event waits in the local queue."""
        return self._inbox.empty()


def _read(
    events: multiprocessing.Queue[Any], inbox: queue.SimpleQueue[Any], done: threading.Event
) -> None:
    while True:
        try:
            event = events.get(timeout=READ_POLL_S)
        except queue.Empty:
            if done.is_set():
                return
            continue
        except (EOFError, OSError):  # closed: nothing more will come
            return
        except Exception:  # a message that cannot be unpickled: skip it
            logger.exception("a worker's event could not be read")
            continue
        inbox.put(event)


class Supervisor:
    """Waits for readiness, restarts workers that die, and stops them all within bounds.

    A worker that dies after it was ready (a crash in native code, the OOM killer) is started
    again with the same index, so the others keep serving meanwhile; its prediction log
    reports at startup how many rows the dead one lost. More than ``MAX_RESTARTS`` restarts
    within ``RESTART_WINDOW_S`` stop the server (exit code 1), as does a worker that dies or
    fails before it was ever ready (models that cannot load would fail again).

    Args:
        processes: The started workers, by index (replaced in place when restarted).
        spawn: Starts worker ``index`` (and attaches its queue to ``events``).
        events: The workers' events.
        report: Receives one line per event.
        url: The server's URL, for the ready line.
        on_stats: Receives each worker's rollout statistics.
    """

    MAX_RESTARTS = 5
    RESTART_WINDOW_S = 60.0

    def __init__(
        self,
        processes: list[BaseProcess],
        spawn: Callable[[int], BaseProcess],
        events: WorkerEvents,
        report: Callable[[str], None],
        url: str,
        on_stats: Callable[[list[Any]], None] | None = None,
    ) -> None:
        self._on_stats = on_stats
        self._processes = processes
        self._spawn = spawn
        self._events = events
        self._report = report
        self._url = url
        self._ready: set[int] = set()
        self._ever_ready = False
        self._spawned = {index: time.monotonic() for index in range(len(processes))}
        self._restarts: list[float] = []
        self._stopping: Sequence[int] = ()
        self._signals_at_stop = 0

    def run(self, stopping: Sequence[int], ready_timeout: float) -> int:
        """Supervise until a signal arrives (0) or the server must stop (1).

        Args:
            stopping: The stop signals received so far (appended to by the signal handler).
            ready_timeout: Longest wait for every worker to be ready.
        """
        self._stopping = stopping
        deadline = time.monotonic() + ready_timeout
        while not stopping:
            failure = self._handle(self._events.get(timeout=0.1))
            if failure is not None:
                self._report(failure)
                return 1
            for index, process in enumerate(self._processes):
                if process.exitcode is not None and not stopping and not self._restart(index):
                    return 1
            if not self._ever_ready and time.monotonic() > deadline:
                self._report(f"the workers were not ready after {ready_timeout:.0f}s")
                return 1
        self._report("stopping: answering requests in flight and flushing the prediction log")
        return 0

    @property
    def hurried(self) -> bool:
        """Whether a stop signal arrived after :meth:`stop` began: shut down at once."""
        return len(self._stopping) > self._signals_at_stop

    def stop(self, timeout: float) -> None:
        """Ask every worker to stop (SIGTERM) and handle their events until they have exited.

        A worker still running after ``timeout`` seconds, or once another stop signal
        arrives, is killed, and that is reported.
        """
        self._signals_at_stop = min(len(self._stopping), 1)  # later ones hurry the stop
        for process in self._processes:
            if process.exitcode is None:
                process.terminate()
        deadline = time.monotonic() + timeout
        reason = ""
        while any(process.exitcode is None for process in self._processes):
            if self.hurried:
                reason = "another stop signal arrived"
                break
            if time.monotonic() >= deadline:
                reason = f"it did not stop within {timeout:.0f}s"
                break
            failure = self._handle(self._events.get(timeout=0.05))
            if failure is not None:
                self._report(failure)
        for index, process in enumerate(self._processes):
            if process.exitcode is None:
                self._report(
                    f"killing worker {index} (pid {process.pid}): {reason}; its requests in "
                    "flight and prediction log rows not yet written are lost"
                )
                process.kill()
                process.join(KILL_WAIT_S)

    def drain_events(self, timeout: float = DRAIN_TIMEOUT_S) -> None:
        """Handle the events the stopped workers sent last (their final statistics)."""
        self._events.finish()
        deadline = time.monotonic() + timeout
        while not self.hurried:
            event = self._events.get(timeout=0.05)
            if event is not None:
                self._handle(event)
                continue
            reading = self._events.reading()
            if not reading and self._events.empty():
                return
            if time.monotonic() >= deadline:
                self._report(
                    f"the last reports of worker(s) {', '.join(map(str, reading))} were cut "
                    "off (killed while sending them); their last statistics are lost"
                )
                return

    def _handle(self, event: Any) -> str | None:
        """Act on one event (None: nothing came); returns what a ``failed`` event says."""
        if isinstance(event, WorkerReady):
            self._on_ready(event)
        elif isinstance(event, tuple) and event[0] == "stats":
            if self._on_stats is not None:
                self._on_stats(event[2])
        elif isinstance(event, tuple) and event[0] == "applied":
            self._report(f"worker {event[1]} now serves {event[2]}")
        elif isinstance(event, tuple) and event[0] == "failed":
            return f"worker {event[1]} failed to load the models: {event[2]}"
        return None

    def _on_ready(self, event: WorkerReady) -> None:
        self._ready.add(event.index)
        models = ", ".join(
            f"{name} v{version} ({runtime}, {seconds:.2f}s)"
            for name, version, runtime, seconds in event.models
        )
        took = time.monotonic() - self._spawned.get(event.index, time.monotonic())
        self._report(f"worker {event.index} (pid {event.pid}) ready in {took:.2f}s: {models}")
        if len(self._ready) == len(self._processes) and not self._ever_ready:
            self._ever_ready = True
            self._report(f"ready: serving on {self._url} (docs at {self._url}/docs)")

    def _restart(self, index: int) -> bool:
        process = self._processes[index]
        what = (
            f"worker {index} (pid {process.pid}) exited unexpectedly (exit code {process.exitcode})"
        )
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < self.RESTART_WINDOW_S]
        if index not in self._ready:
            self._report(f"{what} before it was ready")
            return False
        if len(self._restarts) >= self.MAX_RESTARTS:
            self._report(
                f"{what}; {len(self._restarts)} restarts in the last "
                f"{self.RESTART_WINDOW_S:.0f}s, giving up"
            )
            return False
        self._report(f"{what}; starting a new one")
        self._restarts.append(now)
        self._ready.discard(index)
        self._spawned[index] = now
        self._processes[index] = self._spawn(index)
        return True
