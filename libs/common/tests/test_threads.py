"""Background executors run their work at a lower CPU priority than the caller's threads."""

from __future__ import annotations

import os
import threading

from vectrion_common.threads import background_executor


def _own_niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_background_work_runs_nicer_than_the_caller_and_nice_zero_changes_nothing() -> None:
    caller = _own_niceness()
    with background_executor("test-nice", nice=5) as pool:
        assert pool.submit(_own_niceness).result() >= 5
    with background_executor("test-plain", nice=0) as pool:
        assert pool.submit(_own_niceness).result() == caller
    assert _own_niceness() == caller  # the caller's own thread keeps its priority
