"""Resident memory and CPU time of each service process of a running stack, from /proc.

honcho starts one uvicorn per service (``exec``, so the uvicorn is honcho's
child); a service's RSS is its process plus any descendants it spawned.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

_SERVICE = re.compile(r"vectrion_(\w+)\.main")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(stat.parent.name))
    return tree


def _descendants(pid: int, tree: dict[int, list[int]]) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, []))
    return found


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # after the comm: state is field 3 of stat, so utime (14) and stime (15) are at 11 and 12 here
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def service_pids(root_pid: int) -> dict[str, list[int]]:
    """``{service: [its uvicorn pid and descendants]}`` under the stack's process group leader."""
    tree = _children()
    services: dict[str, list[int]] = {}
    for pid in _descendants(root_pid, tree):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        match = _SERVICE.search(cmdline)
        if match and "uvicorn" in cmdline:
            services[match.group(1)] = _descendants(pid, tree)
    return services


@dataclass
class RssSampler:
    """Samples every service's RSS in a thread; ``peaks`` since the last ``reset_window``."""

    root_pid: int
    interval: float = 0.5
    overall_peak: dict[str, float] = field(default_factory=dict)
    window_peak: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def current(self) -> dict[str, float]:
        return {
            service: round(sum(rss_mb(pid) for pid in pids), 1)
            for service, pids in sorted(service_pids(self.root_pid).items())
        }

    def cpu(self) -> dict[str, float]:
        """CPU seconds each service has used since it started (diff two calls for a run's share)."""
        return {
            service: round(sum(cpu_seconds(pid) for pid in pids), 2)
            for service, pids in sorted(service_pids(self.root_pid).items())
        }

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            sample = self.current()
            with self._lock:
                for service, mb in sample.items():
                    self.overall_peak[service] = max(self.overall_peak.get(service, 0.0), mb)
                    self.window_peak[service] = max(self.window_peak.get(service, 0.0), mb)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def reset_window(self) -> None:
        with self._lock:
            self.window_peak = {}

    def window(self) -> dict[str, float]:
        with self._lock:
            return dict(sorted(self.window_peak.items()))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None
        time.sleep(0)
