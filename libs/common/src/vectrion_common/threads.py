"""Worker threads for background CPU work that must yield to latency-sensitive work.

Linux niceness is per thread: a thread pool whose workers lower their own priority
lets ingestion (extraction, batch encodes) use every idle cycle while a query's
embedding, running at normal priority in the same or another process, wins the CPU.
Threads a worker starts (torch's intra-op pool) inherit its niceness.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor


def lower_thread_priority(nice: int) -> None:
    """Executor initializer. Where raising niceness is not permitted, run at normal priority
    rather than not at all."""
    if nice > 0:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


def background_executor(name: str, *, nice: int, max_workers: int = 1) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(
        max_workers=max_workers, thread_name_prefix=name, initializer=lower_thread_priority, initargs=(nice,)
    )
