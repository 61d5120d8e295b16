"""Shared pieces of the local stack: status record, error type, detached process management."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from deploy.settings import Settings

LOG_TAIL_LINES = 20
_RUN_MARK = "=== huiliu stack: starting"


@dataclass
class ComponentStatus:
    """What `Stack.status()` reports for one component."""

    name: str
    address: str
    up: bool
    version: str | None = None
    detail: str = ""


class StackError(RuntimeError):
    """A stack operation failed; the message names the component and where its log is."""


# --------------------------------------------------------------------------- helpers


def host_port(address: str) -> tuple[str, int]:
    """'tcp://h:p', 'h:p', 'http://h:p/x' or 'a:1,b:2' (first wins) -> (h, p)."""
    first = address.split(",")[0].strip()
    if "://" in first:
        first = first.split("://", 1)[1]
    first = first.split("/", 1)[0]
    if "@" in first:
        first = first.rsplit("@", 1)[1]
    host, _, port = first.rpartition(":")
    return (host.strip("[]") or "127.0.0.1"), int(port)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_in_use(host: str, port: int) -> bool:
    """True when host:port cannot be bound because some socket listens on it."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def pid_alive(pid: int) -> bool:
    """True when pid names a live (non-zombie) process."""
    try:
        # Reap it if it happens to be our own child.
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        state = stat.rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of the most recent run recorded in a log file."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log file)"
    idx = text.rfind(_RUN_MARK)
    if idx >= 0:
        text = text[idx:]
    out = text.rstrip().splitlines()[-lines:]
    return "\n".join(out) if out else "(log is empty)"


# The launcher runs as a short-lived intermediate process: it starts the real command in a new
# session with output appended to the log file, prints the pid and exits, so the component is
# re-parented to init and survives the CLI (and is never a zombie child of it).
_LAUNCHER = r"""
import json, subprocess, sys
spec = json.loads(sys.argv[1])
log = open(spec["log"], "ab", buffering=0)
p = subprocess.Popen(spec["cmd"], cwd=spec["cwd"], env=spec["env"], stdin=subprocess.DEVNULL,
                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
sys.stdout.write(str(p.pid))
"""


def spawn_detached(cmd: list[str], log_path: Path, cwd: Path, env: dict[str, str] | None = None) -> int:
    """Start cmd in its own session, output appended to log_path; return its pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n{_RUN_MARK} {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(cmd)}\n")
    spec = {"cmd": cmd, "cwd": str(cwd), "log": str(log_path), "env": dict(env if env is not None else os.environ)}
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _LAUNCHER, json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if out.returncode != 0 or not out.stdout.strip().isdigit():
        raise OSError(f"could not start {cmd[0]}: {out.stderr.strip() or out.stdout.strip()}")
    return int(out.stdout.strip())


# --------------------------------------------------------------------------- components


class Component:
    """One piece of the local stack.

    Subclasses give `address`, `probe()` and, when the stack runs the component (`managed`),
    `command()` and optionally `prepare()`.
    """

    name: str = ""
    managed: bool = True
    depends_on: tuple[str, ...] = ()  # components that must answer before this one starts
    ready_timeout: float = 60.0
    stop_timeout: float = 15.0

    def __init__(self, settings: Settings):
        self.settings = settings

    # -- locations
    @property
    def data_dir(self) -> Path:
        return self.settings.state_dir / "data" / self.name

    @property
    def log_path(self) -> Path:
        return self.settings.state_dir / "logs" / f"{self.name}.log"

    @property
    def pid_path(self) -> Path:
        return self.settings.state_dir / "run" / f"{self.name}.pid"

    # -- to implement
    @property
    def address(self) -> str:
        raise NotImplementedError

    def probe(self, timeout: float = 2.0) -> str | None:
        """Return the version (or None if unknown) when the component answers; raise otherwise."""
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Create directories / config files before start."""
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str] | None:
        return None

    def listen_address(self) -> tuple[str, int] | None:
        """The TCP host and port the component should own (for 'port in use' diagnostics)."""
        try:
            return host_port(self.address)
        except (ValueError, IndexError):
            return None

    # -- probing
    def answering(self, timeout: float = 2.0) -> tuple[bool, str | None, str]:
        try:
            version = self.probe(timeout)
            return True, version, ""
        except Exception as exc:  # noqa: BLE001 - any failure means "not answering"
            return False, None, f"{type(exc).__name__}: {exc}".strip()

    def status(self) -> ComponentStatus:
        ok, version, err = self.answering()
        detail = ""
        if self.managed:
            pid = self.read_pid()
            if pid is not None and pid_alive(pid):
                detail = f"pid {pid}"
            elif ok:
                detail = "not started by this stack"
            if not ok and err:
                detail = f"{detail}; {err}" if detail else err
        else:
            detail = "external" if ok else (err or "not reachable")
        return ComponentStatus(self.name, self.address, ok, version, detail)

    # -- process management
    def read_pid(self) -> int | None:
        try:
            return int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None

    def running_pid(self) -> int | None:
        """Pid from our pid file if that process is alive and looks like ours."""
        pid = self.read_pid()
        if pid is None or not pid_alive(pid):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            exe = os.path.basename(self.command()[0]).encode()
            if not any(os.path.basename(part) == exe for part in cmdline[:3]):
                return None  # pid was reused by something else
        except Exception:  # noqa: BLE001 - /proc unavailable: trust the pid file
            pass
        return pid

    def start(self) -> int:
        self.settings.ensure_dirs()
        self.prepare()
        pid = spawn_detached(self.command(), self.log_path, cwd=self.data_dir, env=self.env())
        self.pid_path.parent.mkdir(parents=True, exist_ok=True)
        self.pid_path.write_text(f"{pid}\n")
        return pid

    def stop(self, timeout: float | None = None) -> str:
        """SIGTERM the component's process group, SIGKILL after timeout. Returns what happened."""
        timeout = self.stop_timeout if timeout is None else timeout
        pid = self.running_pid()
        if pid is None:
            self.pid_path.unlink(missing_ok=True)
            return "not running"
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                break
            time.sleep(0.1)
        else:
            _signal_group(pid, signal.SIGKILL)
            for _ in range(50):
                if not pid_alive(pid):
                    break
                time.sleep(0.1)
            self.pid_path.unlink(missing_ok=True)
            return f"killed (pid {pid}, no exit {timeout:.0f}s after SIGTERM)"
        self.pid_path.unlink(missing_ok=True)
        return f"stopped (pid {pid})"

    def failure(self, reason: str) -> StackError:
        addr = self.listen_address()
        hint = ""
        if addr is not None and "exited" in reason and port_in_use(*addr):
            hint = f" (port {addr[1]} on {addr[0]} is already in use by another process)"
        return StackError(
            f"{self.name} failed to start: {reason}{hint}\n"
            f"log file: {self.log_path}\n"
            f"last lines of the log:\n{log_tail(self.log_path)}"
        )


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
