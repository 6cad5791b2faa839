"""Tuning worker processes: started with ``spawn``, watched, and never left behind."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from conveyor.errors import ConveyorError
from conveyor.train.tuning._runner import WorkerJob, run_trials

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

__all__ = ["run_workers"]

POLL_S: Final = 0.5
"""How often the parent checks the study (progress) and its workers."""
_STOP_S: Final = 5.0
_logger = logging.getLogger(__name__)


def describe(err: BaseException) -> str:
    """One line for an error: the message of Conveyor's own errors, else type and message."""
    if isinstance(err, ConveyorError):
        return str(err)
    return f"{type(err).__name__}: {err}"


def _exit_with_parent(parent: int) -> None:
    """End this process when its parent is gone (killed without a chance to stop us)."""

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="conveyor-tune-parent-watch", daemon=True).start()


def worker_main(job: WorkerJob, errors: Any) -> None:
    """Entry point of a spawned worker; its error goes to the parent through ``errors``."""
    import optuna

    _exit_with_parent(os.getppid())
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        run_trials(job)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except BaseException as err:
        errors.put((job.worker, describe(err)))
        raise SystemExit(1) from None


def run_workers(jobs: Sequence[WorkerJob], poll: Callable[[], None]) -> list[str]:
    """Run one spawned process per job until all end, calling ``poll`` every ``POLL_S``.

    A worker that fails does not stop the others. On any exception in the parent
    (``KeyboardInterrupt`` included) every worker is terminated before it propagates.

    Returns:
        One message per failed worker, in worker order.
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    errors = context.SimpleQueue()
    processes: list[BaseProcess] = [
        context.Process(
            target=worker_main, args=(job, errors), name=f"conveyor-tune-worker-{job.worker}"
        )
        for job in jobs
    ]
    try:
        for process in processes:
            process.start()
        while alive := [p for p in processes if p.is_alive()]:
            poll()
            alive[0].join(POLL_S)  # returns at once if it ended meanwhile
        poll()
    finally:
        _stop(processes)
    reported: dict[int, str] = {}
    while not errors.empty():
        worker, message = errors.get()
        reported[worker] = message
    failed = []
    for job, process in zip(jobs, processes, strict=True):
        if process.exitcode == 0:
            continue
        message = reported.get(job.worker, f"the process exited with code {process.exitcode}")
        _logger.warning("tuning worker %d failed: %s", job.worker, message)
        failed.append(message)
    return failed


def _stop(processes: Sequence[BaseProcess]) -> None:
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + _STOP_S
    for process in processes:
        if process.pid is None:
            continue  # never started
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
