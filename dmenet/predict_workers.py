"""The worker processes of ``dmenet.predict --workers N``: the default number (:func:`auto_workers`), a worker's
setup (:func:`_start_worker`: its own model and threads; it leaves with its batch) and the pool that gives a batch's
results in input order (:func:`parallel`; a dead worker's photos get :data:`WORKER_DIED`)."""

from __future__ import annotations

import argparse
import os
import signal
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from dmenet import memory
from dmenet.predict_inputs import Job
from dmenet.predict_photo import predict_one
from syndof import cli
from syndof import io as sio


AUTO_WORKERS_MIN_PHOTOS = 8
"""Smallest batch that gets several workers by default: each worker loads the model (1–2 s), which a few photos do
not pay back."""
AUTO_WORKERS_MAX = 4
"""Most workers started by default (each holds a model and its working memory)."""


def auto_workers(jobs: list[Job], args: argparse.Namespace, max_side: int | None, available: int | None,
                 extra_per_pixel: int = 0, input_per_pixel: int = 0, min_short_side: int | None = None) -> int:
    """The default ``--workers``: 1 on a GPU, with ``--threads`` given, or for a batch smaller than
    :data:`AUTO_WORKERS_MIN_PHOTOS`; else the usable cores (at most :data:`AUTO_WORKERS_MAX`), no more than
    ``available`` bytes hold at :func:`dmenet.memory.estimate_memory` (with ``extra_per_pixel``, ``input_per_pixel``,
    ``min_short_side``) of the batch's largest photo (sizes from the file headers; unreadable headers are left to the
    workers, which report them). ``available`` None: unknown, no memory bound."""
    import torch

    on_cpu = torch.device(args.device or "cpu").type == "cpu"  # "cpu:0" too (check_device accepts it)
    if args.threads is not None or not on_cpu or len(jobs) < AUTO_WORKERS_MIN_PHOTOS:
        return 1
    workers = min(cli.available_cpus(), AUTO_WORKERS_MAX)
    if available is not None and workers > 1:
        sizes = [size for size in map(sio.header_size, (j.source for j in jobs)) if size is not None]
        need = max((memory.estimate_memory(h, w, max_side, extra_per_pixel, input_per_pixel, min_short_side)
                    for w, h in sizes), default=memory.MEMORY_FIXED_BYTES)
        workers = max(1, min(workers, available // need))
    return workers


_worker: dict = {}
"""Per worker process (``--workers``): its estimator, the parsed options, the working size and the lock its photos
hold, set once by :func:`_start_worker`."""


def _quiet(departure: str) -> None:
    """A worker's recipe departure: the main process has printed it already."""


def _start_worker(args: argparse.Namespace, options, threads: int, parent: int, stop) -> None:
    """A worker's setup; ``parent`` is the batch's process id (passed in: it may be gone before this runs); ``stop``:
    the batch's event, set when it is interrupted (no photo starts after it)."""
    import threading
    import warnings

    warnings.formatwarning = cli.warning_line  # one "warning: …" line, as the batch's own (spawned: not inherited)
    cli.apply_threads(threads)
    from syndof.allocator import reuse_freed_memory

    reuse_freed_memory()
    busy = threading.Lock()

    def leave(status: int) -> None:
        """Exit the worker process with ``status`` once no photo is being written."""
        with busy:  # never in the middle of a photo's files
            os._exit(status)

    def leave_with_parent() -> None:  # a killed batch leaves no idle workers behind (each holds a model)
        """Wait until the batch process ``parent`` is gone, then leave with status 1."""
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        leave(1)

    def on_sigterm(signum: int, frame) -> None:  # noqa: ARG001 - finish the photo in progress, then leave
        """SIGTERM handler: leave with 128 + ``signum`` after the photo in progress."""
        threading.Thread(target=leave, args=(128 + signum,), daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C reaches the whole group: the batch stops us
    threading.Thread(target=leave_with_parent, daemon=True).start()
    _worker.update(estimator=args.method.make(options), args=args, max_side=options.max_side, busy=busy,
                   stop=stop, batch_alive=lambda: os.getppid() == parent)


PARENT_POLL_S = 0.5
"""How often a worker checks that the batch's process is still there, seconds."""


def _worker_job(item: tuple[int, int, Job]) -> float | str:
    number, count, job = item
    if _worker["stop"].is_set():  # queued before the batch was interrupted
        return "not started: the batch was interrupted"
    with _worker["busy"]:
        return predict_one(job, number, count, _worker["estimator"], _worker["max_side"], _worker["args"],
                           _worker["batch_alive"])


WORKER_DIED = ("not done: a worker process died (killed, e.g. out of memory); rerun the batch into the same --out "
               "to finish the rest (--workers 1 holds one model)")
"""The reason reported for each photo a dead worker pool left undone."""


def parallel(jobs: list[tuple[int, Job]], count: int, args: argparse.Namespace, options, workers: int):
    """The results of ``jobs`` (each with its number in the batch of ``count`` photos) in their order from
    ``workers`` spawned processes (a generator). When a worker dies (it
    was killed, e.g. by the kernel's out-of-memory killer), the photos not done yet get :data:`WORKER_DIED` as their
    result, so the batch reports them and ends with its summary."""
    import dataclasses
    import multiprocessing as mp

    threads = args.threads or max(1, cli.available_cpus() // workers)
    options = dataclasses.replace(options, on_departure=_quiet)  # this process has reported any departure
    given = 0
    # spawn: never fork a process whose OpenMP pool is running; a worker that dies raises BrokenProcessPool here
    # instead of leaving the batch waiting
    context = mp.get_context("spawn")
    stop = context.Event()
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(args, options, threads, os.getpid(), stop)) as pool:
        try:
            for result in pool.map(_worker_job, [(number, count, job) for number, job in jobs]):
                yield result
                given += 1
        except BrokenProcessPool:
            yield from [WORKER_DIED] * (len(jobs) - given)
        except BaseException:  # Ctrl-C, SIGTERM: no photo starts any more; those in progress finish their files
            stop.set()  # the calls already queued to a worker, which cancel_futures cannot reach
            pool.shutdown(wait=True, cancel_futures=True)
            raise
