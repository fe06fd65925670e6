"""One training job at a time: a FIFO queue with positions, shared by all browser sessions.

A finished job gives back its model, tokenizer and rows at once; only its events stay (what a reloaded page
replays), and only for the last ``KEEP_FINISHED`` jobs."""
from __future__ import annotations

import gc
import itertools
import threading
from collections import deque

from .engine import TrainingJob

KEEP_FINISHED = 100  # finished jobs whose events a reloaded page can still replay

class JobQueue:
    """Runs submitted jobs one after another in a single worker thread."""

    def __init__(self) -> None:
        self._jobs: dict[str, TrainingJob] = {}
        self._waiting: deque[str] = deque()
        self._running: str | None = None
        self._finished: deque[str] = deque()
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        threading.Thread(target=self._work, name="sft-job-queue", daemon=True).start()

    def submit(self, job: TrainingJob) -> str:
        with self._cond:
            job_id = f"job-{next(self._ids)}"
            self._jobs[job_id] = job
            self._waiting.append(job_id)
            self._cond.notify_all()
            return job_id

    def get(self, job_id: str | None) -> TrainingJob | None:
        with self._cond:
            return self._jobs.get(job_id) if job_id else None

    def position(self, job_id: str) -> int:
        """0 while running (or done), n when n-th in line behind the running job."""
        with self._cond:
            return self._waiting.index(job_id) + 1 if job_id in self._waiting else 0

    @property
    def busy(self) -> bool:
        """Whether a job is training now."""
        with self._cond:
            return self._running is not None

    def is_waiting(self, job_id: str) -> bool:
        with self._cond:
            return job_id in self._waiting

    def cancel(self, job_id: str) -> None:
        """Stop a running job, or take a waiting one out of the line."""
        with self._cond:
            job = self._jobs.get(job_id)
            was_waiting = job_id in self._waiting
            if was_waiting:
                self._waiting.remove(job_id)
        if job:
            job.cancel()
            if was_waiting:
                job.run()  # returns at once with a Cancelled event
                self._retire(job_id)

    def _work(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._waiting))
                job_id = self._running = self._waiting.popleft()
            self._jobs[job_id].run()
            with self._cond:
                self._running = None
            self._retire(job_id)

    def _retire(self, job_id: str) -> None:
        """Free a finished job's model and rows; forget the oldest finished jobs beyond KEEP_FINISHED."""
        self._jobs[job_id].release()
        gc.collect()  # a model's modules refer to each other: free them now, not at some later collection
        with self._cond:
            self._finished.append(job_id)
            while len(self._finished) > KEEP_FINISHED:
                self._jobs.pop(self._finished.popleft(), None)
