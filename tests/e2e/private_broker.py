"""A RabbitMQ node of a test's own (own node name, port and data directory), so a test can stop
and start the broker without disturbing anything else that uses the shared one."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.stack import free_port


@dataclass(frozen=True)
class PrivateBroker:
    node: str
    url: str

    def ctl(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(["rabbitmqctl", "-q", "-n", self.node, *args], check=True, capture_output=True, timeout=timeout)

    def stop_app(self) -> None:
        self.ctl("stop_app")

    def start_app(self) -> None:
        self.ctl("start_app")
        self.ctl("await_startup", "--timeout", "60", timeout=70)


@contextmanager
def private_rabbitmq() -> Iterator[PrivateBroker]:
    if shutil.which("rabbitmq-server") is None or shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmq-server is not installed here; the broker-restart test needs a node of its own")
    # Not under pytest's private tmp: the server script drops to the rabbitmq user, who must reach it.
    directory = Path(tempfile.mkdtemp(prefix="vectrion-rabbitmq-"))
    directory.chmod(0o777)
    port, dist_port = free_port(), free_port()
    config = directory / "rabbitmq.conf"
    config.write_text(f"listeners.tcp.default = 127.0.0.1:{port}\nloopback_users = none\n")
    config.chmod(0o644)
    node = f"vt{uuid.uuid4().hex[:8]}@localhost"
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_CONFIG_FILE": str(config),
        "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
        "RABBITMQ_LOG_BASE": str(directory / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
        "RABBITMQ_FEATURE_FLAGS_FILE": str(directory / "feature_flags"),
        "RABBITMQ_PID_FILE": str(directory / "pid"),
    }
    with (directory / "server.out").open("wb") as out:
        server = subprocess.Popen(["rabbitmq-server"], env=env, stdout=out, stderr=subprocess.STDOUT)
    broker = PrivateBroker(node, f"amqp://guest:guest@127.0.0.1:{port}/")
    try:
        for _ in range(60):  # until the node answers at all; await_startup then waits for the boot
            try:
                broker.ctl("await_startup", "--timeout", "60", timeout=70)
                break
            except subprocess.CalledProcessError:
                if server.poll() is not None:
                    raise RuntimeError((directory / "server.out").read_text(errors="replace")[-3000:]) from None
                time.sleep(1)
        yield broker
    finally:
        try:
            broker.ctl("stop", timeout=60)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            server.kill()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(directory, ignore_errors=True)
