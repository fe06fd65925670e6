"""Work a person is waiting for (a chat answer, a prediction, an evaluation) comes first: background work that
would slow it down, such as the Train tab's short speed test, yields at once and starts again once nobody waits."""
from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Yielding(Protocol):
    def yield_now(self) -> None:
        """Stop the background work under way (it may start again once nobody waits)."""


_lock = threading.Lock()
_waiting = 0
_background: weakref.WeakSet[Yielding] = weakref.WeakSet()


def yields_to_people(worker: Yielding) -> None:
    """Register background work to stop whenever a person starts waiting."""
    with _lock:
        _background.add(worker)


@contextmanager
def person_waiting() -> Iterator[None]:
    """While the block runs, registered background work stops and waits."""
    global _waiting
    with _lock:
        _waiting += 1
        workers = list(_background)
    for worker in workers:
        worker.yield_now()
    try:
        yield
    finally:
        with _lock:
            _waiting -= 1


def someone_waiting() -> bool:
    return _waiting > 0
