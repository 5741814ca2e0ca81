"""Work one step ahead: a thread makes the next batch while the caller sends (or stages) the current one.

A push builds batch k+1 (database reads, the model's guesses, the `sending` bookkeeping) while Label Studio
imports batch k; a pull fetches page k+1 from Label Studio while page k is staged. Each side waits on the
other only when it is ahead by more than `depth` items, so memory stays bounded by depth + 2 batches (the one in
use, those waiting, the one being made).
"""

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_POLL_S = 0.1  # how often a blocked producer looks whether the caller stopped listening


def ahead(items: Iterable[T], depth: int = 1, name: str = "s2-ahead") -> Iterator[T]:
    """Yield items in order while a thread produces up to `depth` more; the producer's error is raised here, in order.

    Leaving the loop early (break, an error in the caller) stops the producer after the item it is making and
    waits for it, so no work continues behind the caller's back.
    """
    made: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand(entry: tuple[bool, object]) -> bool:
        while not stop.is_set():
            try:
                made.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        source = None
        try:
            source = iter(items)
            for item in source:
                if not hand((True, item)):
                    return
            hand((False, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, who raises it
            hand((False, exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()  # a generator's own finally blocks run in the thread that ran it

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            more, value = made.get()
            if more:
                yield value  # type: ignore[misc]
            elif value is None:
                return
            else:
                raise value  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
