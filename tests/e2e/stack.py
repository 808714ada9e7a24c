"""Start the whole local stack exactly as `task up` does, on free ports, for black-box tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.harness import REPO_ROOT, drop_database, migrate_services

SERVICES = ("gateway", "ingest", "chunker", "embedder", "query", "guardrails")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    ports: dict[str, int]
    var_dir: Path
    log_path: Path
    db_name: str

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    @property
    def admin_password(self) -> str:
        return (self.var_dir / "secrets" / "bootstrap_admin_password").read_text().strip()

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        drop_database(self.db_name)


def start_stack(var_dir: Path, broker_namespace: str, timeout: float = 240.0) -> Stack:
    """A stack with its own database (``vectrion_<namespace>``) and broker namespace."""
    db_name = f"vectrion_{broker_namespace}"
    migrate_services("gateway", "ingest", "chunker", "query", db=db_name)
    ports = {service: free_port() for service in SERVICES}
    env = {
        **os.environ,
        "VECTRION_VAR_DIR": str(var_dir),
        "VECTRION_DB_NAME": db_name,
        "VECTRION_BROKER_NAMESPACE": broker_namespace,
        "VECTRION_REDIS_KEY_PREFIX": f"{broker_namespace}:gw",  # the gateway's Redis keys, per stack
        "VECTRION_BOOTSTRAP_ADMIN_EMAIL": "admin@e2e.test",
        **{f"VECTRION_{service.upper()}_PORT": str(port) for service, port in ports.items()},
    }
    env_file = subprocess.run(
        ["bash", "scripts/local-env.sh"], cwd=REPO_ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    log_path = var_dir / "stack.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(REPO_ROOT / ".venv/bin/honcho"), "start", "-f", "Procfile", "-e", env_file, "--no-prefix"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack = Stack(process, ports, var_dir, log_path, db_name)
    deadline = time.monotonic() + timeout
    pending = set(SERVICES)
    while pending and time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"stack exited early:\n{stack.log_tail()}")
        for service in sorted(pending):
            try:
                if httpx.get(f"http://127.0.0.1:{ports[service]}/readyz", timeout=2).status_code == 200:
                    pending.discard(service)
            except httpx.HTTPError:
                pass
        time.sleep(0.5)
    if pending:
        stack.stop()
        raise RuntimeError(f"services not ready after {timeout}s: {sorted(pending)}\n{stack.log_tail()}")
    return stack
