"""labeling.labelstudio.ahead: a producer thread one step ahead of its caller, in order, bounded, stoppable."""

import threading
import time

import pytest

from labeling.labelstudio.ahead import ahead


def test_items_come_in_order_while_the_next_one_is_made_in_another_thread():
    threads = []

    def made():
        for i in range(5):
            threads.append(threading.current_thread().name)
            yield i

    assert list(ahead(made(), name="maker")) == [0, 1, 2, 3, 4]
    assert set(threads) == {"maker"}


def test_the_producer_runs_at_most_depth_items_ahead_and_stops_when_the_caller_leaves():
    produced = []
    closed = threading.Event()

    def made():
        try:
            for i in range(100):
                produced.append(i)
                yield i
        finally:
            closed.set()

    it = ahead(made(), depth=2)
    assert next(it) == 0
    time.sleep(0.3)  # time enough to run ahead, were it not bounded
    assert len(produced) <= 4  # the one handed over, two waiting, one being handed
    it.close()  # the caller leaves early: the producer stops and its generator is closed
    assert closed.is_set()
    assert len(produced) <= 4


def test_the_producers_error_reaches_the_caller_after_the_items_before_it():
    def made():
        yield 1
        yield 2
        raise ValueError("Label Studio went away")

    seen = []
    with pytest.raises(ValueError, match="went away"):
        for item in ahead(made()):
            seen.append(item)
    assert seen == [1, 2]


def test_an_error_in_the_caller_stops_the_producer():
    stopped = threading.Event()

    def made():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            stopped.set()

    with pytest.raises(RuntimeError):
        it = ahead(made())
        try:
            for item in it:
                if item == 3:
                    raise RuntimeError("the import failed")
        finally:
            it.close()
    assert stopped.is_set()


def test_what_cannot_be_iterated_is_an_error_for_the_caller_not_a_hang():
    with pytest.raises(TypeError):
        list(ahead(5))
