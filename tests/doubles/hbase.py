"""Start and stop the HBase Thrift TEST DOUBLE (hbase_thrift_double.py) as a subprocess: no HBase
server exists here."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

DOUBLE = Path(__file__).parent / "hbase_thrift_double.py"


PORTS = range(29090, 29100)


class Double:
    def __init__(self, port: int, proc: subprocess.Popen) -> None:
        self.port, self.proc = port, proc

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_double(port: int | None = None, *extra: str) -> Double:
    """Start the double on `port`, or on the first free port of PORTS; `extra`: its CLI flags."""
    for candidate in [port] if port else PORTS:
        if port is None and not _port_free(candidate):
            continue
        proc = subprocess.Popen(
            [sys.executable, str(DOUBLE), "--port", str(candidate), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = proc.stdout.readline()  # printed once the port is bound; EOF if bind failed
        if "listening" in line:
            return Double(candidate, proc)
        proc.wait(5)
    raise RuntimeError(f"could not start the HBase Thrift test double on {port or list(PORTS)}")
