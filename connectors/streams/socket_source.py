"""Socket collector (AGG-04): TCP or UDP listener, line / length-prefixed / octet-counted framing,
raw text or syslog (RFC 3164/5424), into Kafka through the runtime.

Listener threads put frames into a bounded buffer; `poll()` drains it. When the buffer is full a
TCP reader waits (`tcp_backpressure`, the sender's window fills: nothing lost) while UDP cannot
wait, so the frame is dropped and counted. Every drop (full buffer, oversize frame) is counted in
`stats` and reported through `take_counters()` (stage counters via SourceRuntime) and a log
warning; messages that are not valid text or syslog go to quarantine with the reason.
A socket cannot be replayed: frames still in the buffer when the process dies are lost (keep
`buffer_size` small and use TCP with backpressure to bound that); there are no offsets.
"""

from __future__ import annotations

import logging
import queue
import socket
import struct
import threading
import time
from datetime import UTC, datetime

import sqlalchemy.types as sa
from pydantic import Field

from connectors.base import CapturedTable, ChangeEvent, RejectedEvent, SourceBatch, SourceSettings, SourceTask
from connectors.streams import syslog
from schemas.sqltypes import ColumnSpec

log = logging.getLogger(__name__)
RAW_COLUMNS = (
    ColumnSpec("message", sa.String()),
    ColumnSpec("peer", sa.String()),
    ColumnSpec("received_at", sa.DateTime()),
)


class SocketSourceConfig(SourceSettings):
    system: str
    table: str = "messages"
    db_schema: str | None = None
    protocol: str = Field("tcp", pattern="^(tcp|udp)$")
    host: str = "0.0.0.0"
    port: int = Field(gt=0, lt=65536)
    framing: str = Field(
        "line",
        pattern="^(line|length|octet)$",
        description="tcp: line = newline-terminated; length = 4-byte big-endian length prefix; "
        "octet = RFC 6587 octet counting ('LEN SP MSG'); udp: one datagram = one message",
    )
    parse: str = Field("raw", pattern="^(raw|syslog)$")
    encoding: str = "utf-8"
    max_frame_bytes: int = Field(65536, gt=0)
    buffer_size: int = Field(100_000, gt=0, description="messages held between the listener and the runtime")
    tcp_backpressure: bool = True
    batch_size: int = Field(5000, gt=0)


class SocketSourceTask(SourceTask):
    def __init__(self, config: SocketSourceConfig):
        self.config = config
        self.name = config.name
        columns = syslog.SYSLOG_COLUMNS if config.parse == "syslog" else RAW_COLUMNS
        self.table = CapturedTable(config.system, config.table, columns, None, config.db_schema)
        self.buffer: queue.Queue = queue.Queue(config.buffer_size)
        self.stats = {"received": 0, "dropped_buffer_full": 0, "dropped_oversize": 0, "quarantined": 0}
        self._reported: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sock: socket.socket | None = None
        self._seq = 0
        self.address: tuple[str, int] | None = None

    # -- listening ---------------------------------------------------------------------------
    def start(self, offsets) -> None:
        kind = socket.SOCK_STREAM if self.config.protocol == "tcp" else socket.SOCK_DGRAM
        sock = socket.socket(socket.AF_INET, kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if kind == socket.SOCK_DGRAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind((self.config.host, self.config.port))
        sock.settimeout(0.5)
        self._sock, self.address = sock, sock.getsockname()
        if kind == socket.SOCK_STREAM:
            sock.listen(64)
            self._spawn(self._accept_loop)
        else:
            self._spawn(self._udp_loop)

    def _spawn(self, target, *args) -> None:
        t = threading.Thread(target=target, args=args, daemon=True, name=f"{self.name}-{target.__name__}")
        t.start()
        self._threads.append(t)

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.stats[key] += n

    def _offer(self, frame: bytes, peer: str, block: bool) -> None:
        if len(frame) > self.config.max_frame_bytes:
            self._count("dropped_oversize")
            log.warning(
                "%s: frame of %d bytes from %s over max_frame_bytes, dropped (counted)", self.name, len(frame), peer
            )
            return
        item = (frame, peer, time.time())
        try:
            if block:
                while not self._stop.is_set():
                    try:
                        self.buffer.put(item, timeout=0.5)
                        break
                    except queue.Full:
                        continue
            else:
                self.buffer.put_nowait(item)
            self._count("received")
        except queue.Full:
            self._count("dropped_buffer_full")

    def _udp_loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self._offer(data.rstrip(b"\r\n"), f"{addr[0]}:{addr[1]}", False)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, addr = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._spawn(self._tcp_reader, conn, f"{addr[0]}:{addr[1]}")

    def _tcp_reader(self, conn: socket.socket, peer: str) -> None:
        conn.settimeout(0.5)
        block, framing, buf = self.config.tcp_backpressure, self.config.framing, b""
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(1 << 16)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                buf += data
                try:
                    buf = self._frames(buf, peer, block, framing)
                except (ConnectionError, ValueError) as exc:  # lost framing: the stream cannot be resynced
                    log.warning("%s: %s", self.name, exc)
                    return
        if buf.strip() and framing == "line":
            self._offer(buf.rstrip(b"\r"), peer, block)  # the last line had no newline
        elif buf:
            self._count("dropped_oversize" if len(buf) > self.config.max_frame_bytes else "quarantined")
            log.warning("%s: %s closed mid-frame, %d bytes dropped (counted)", self.name, peer, len(buf))

    def _frames(self, buf: bytes, peer: str, block: bool, framing: str) -> bytes:
        """Offers every complete frame of `buf`, returns the incomplete rest."""
        if framing == "line":
            *lines, rest = buf.split(b"\n")
            for line in lines:
                if line:
                    self._offer(line.rstrip(b"\r"), peer, block)
            if len(rest) > self.config.max_frame_bytes:  # a line that never ends: drop it, counted
                self._offer(rest, peer, block)
                return b""
            return rest
        while True:
            if framing == "length":
                if len(buf) < 4:
                    return buf
                size, head = struct.unpack(">I", buf[:4])[0], 4
            else:
                sp = buf.find(b" ", 0, 12)
                if sp < 0:
                    if len(buf) >= 12:
                        raise ConnectionError(f"{peer}: octet-counted frame without a length")
                    return buf
                size, head = int(buf[:sp]), sp + 1
            if size > self.config.max_frame_bytes:
                self._count("dropped_oversize")
                raise ConnectionError(f"{peer}: frame of {size} bytes, over max_frame_bytes; connection dropped")
            if len(buf) < head + size:
                return buf
            self._offer(buf[head : head + size], peer, block)
            buf = buf[head + size :]

    # -- the runtime side --------------------------------------------------------------------
    def poll(self) -> SourceBatch:
        events: list[ChangeEvent] = []
        parse = self.config.parse == "syslog"
        while len(events) < self.config.batch_size:
            try:
                frame, peer, received = self.buffer.get_nowait()
            except queue.Empty:
                break
            self._seq = max(self._seq + 1, int(received * 1_000_000))  # monotonic across restarts too
            at = datetime.fromtimestamp(received, UTC).replace(tzinfo=None)
            ts_ms, position = int(received * 1000), {"peer": peer, "received_us": int(received * 1_000_000)}
            try:
                text = frame.decode(self.config.encoding)
                row = syslog.parse(text) if parse else {"message": text}
                row.update(peer=peer, received_at=at)
                events.append(ChangeEvent(self.table, "c", None, row, ts_ms, position, self._seq))
            except ValueError as exc:  # UnicodeDecodeError is a ValueError too
                self._count("quarantined")
                raw = {"message": frame.decode(self.config.encoding, "replace"), "peer": peer}
                events.append(
                    RejectedEvent(
                        self.table,
                        "c",
                        None,
                        raw,
                        ts_ms,
                        position,
                        self._seq,
                        reason=f"{self.config.protocol} message from {peer}: {exc}",
                    )
                )
        return SourceBatch(events, {})

    def take_counters(self) -> dict[str, int]:
        """Drops since the last call (added to the stage counters by SourceRuntime)."""
        with self._lock:
            now = {k: v for k, v in self.stats.items() if k.startswith("dropped")}
        delta = {k: v - self._reported.get(k, 0) for k, v in now.items()}
        self._reported = now
        for k, v in delta.items():
            if v:
                log.warning("%s: %d message(s) %s since the last report", self.name, v, k)
        return delta

    def close(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()
        for t in self._threads:
            t.join(2)
