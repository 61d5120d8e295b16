"""Outbound connections a caller can ask for (connector live checks, pipeline captures): which
host:port pairs are allowed, and how often a principal may ask.

Allow-list entries (settings `probe_allow` for every tenant, `probe_allow_tenants` per tenant):
`<address, CIDR network or host name>:<port | lo-hi | *>`, IPv6 in brackets (`[::1]:5432`). With
`probe_allow_local` (default on) 127.0.0.1 and ::1 on the local databases' ports (5432, 3306,
6379, 9000, 8123) and on the ports of the configured stack (broker, registry, ClickHouse, Redis,
HDFS, HBase Thrift, Flink, the demo source) are allowed too. A host is resolved before anything
connects and every address it resolves to must be allowed; a host name entry allows the
addresses its name resolves to.

Rate limit: a token bucket per principal (`probe_burst` checks at once, refilled at
`probe_rate_per_minute`); beyond it `ProbeRateLimited(retry_after)` (the API answers 429 with
Retry-After).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from urllib.parse import urlsplit

LOCAL_PORTS = (5432, 3306, 6379, 9000, 8123)
DEFAULT_PORTS = {
    "postgresql": 5432,
    "mysql": 3306,
    "mariadb": 3306,
    "clickhouse": 9000,
    "redis": 6379,
    "http": 80,
    "https": 443,
    "ftp": 21,
    "sftp": 22,
    "mssql": 1433,
    "oracle": 1521,
    "hive": 10000,
}
_RESOLVER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="probe-resolve")


class HostRefused(ValueError):
    def __init__(self, param: str, host: str, port: int | None):
        where = f"{host}:{port}" if port else host
        super().__init__(f"{param}: {where} is not in the allowed hosts and ports of this tenant")
        self.param = param


class ProbeRateLimited(Exception):
    def __init__(self, retry_after: float):
        super().__init__(f"too many connection checks; retry in {max(1, round(retry_after))} s")
        self.retry_after = max(1, int(retry_after + 0.999))


def _port_spec(spec: str) -> tuple[int, int]:
    if spec == "*":
        return 1, 65535
    lo, _, hi = spec.partition("-")
    return int(lo), int(hi or lo)


def _split_entry(entry: str) -> tuple[str, str]:
    entry = entry.strip()
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, rest.lstrip(":") or "*"
    if entry.count(":") > 1 and "/" not in entry.rsplit(":", 1)[-1]:  # bare IPv6 without port
        try:
            ipaddress.ip_address(entry)
            return entry, "*"
        except ValueError:
            host, _, port = entry.rpartition(":")
            return host, port
    host, sep, port = entry.rpartition(":")
    return (host, port) if sep else (entry, "*")


def _stack_ports(settings) -> set[int]:
    ports = set(LOCAL_PORTS)
    for url in (
        settings.schema_registry_url,
        settings.clickhouse_url,
        settings.redis_url,
        settings.hdfs_url,
        settings.flink_rest_url,
        settings.demo_source_url,
    ):
        if url:
            try:
                p = urlsplit(url).port
            except ValueError:
                p = None
            if p:
                ports.add(p)
    for address in [*settings.kafka_bootstrap.split(","), settings.hbase_thrift]:
        if address and ":" in address:
            try:
                ports.add(settings.port_of(address.strip()))
            except ValueError:
                pass
    ports.add(int(settings.clickhouse_http_port))
    return ports


def allow_list(settings, tenant: str | None) -> list[str]:
    entries = list(settings.probe_allow or [])
    if tenant is not None:
        entries += list((settings.probe_allow_tenants or {}).get(tenant, []))
    if settings.probe_allow_local:
        for port in sorted(_stack_ports(settings)):
            entries += [f"127.0.0.1:{port}", f"[::1]:{port}", f"localhost:{port}"]
    return entries


def resolve(host: str, timeout: float) -> set[str]:
    """Every address `host` resolves to, within `timeout` (empty when it does not resolve)."""
    future = _RESOLVER.submit(socket.getaddrinfo, host, None, 0, socket.SOCK_STREAM)
    try:
        infos = future.result(timeout)
    except (FutureTimeout, OSError, UnicodeError):
        return set()
    return {info[4][0].split("%")[0] for info in infos}


def _networks(entries: list[str], timeout: float) -> list[tuple[ipaddress._BaseNetwork, tuple[int, int]]]:
    out = []
    for entry in entries:
        host, port = _split_entry(entry)
        try:
            ports = _port_spec(port)
        except ValueError:
            continue
        try:
            out.append((ipaddress.ip_network(host, strict=False), ports))
        except ValueError:
            for address in resolve(host, timeout):
                out.append((ipaddress.ip_network(address), ports))
    return out


def check_host(settings, tenant: str | None, host: str, port: int | None, param: str) -> set[str]:
    """Raise HostRefused unless every address of host (and the port) is allowed; returns them."""
    timeout = float(settings.probe_timeout_s)
    host = (host or "").strip().strip("[]")
    if not host or port is None or not 0 < int(port) < 65536:
        raise HostRefused(param, host or "(no host)", port)
    addresses = resolve(host, timeout)
    if not addresses:
        raise HostRefused(param, host, port)
    networks = _networks(allow_list(settings, tenant), timeout)
    for address in addresses:
        ip = ipaddress.ip_address(address)
        if not any(ip.version == net.version and ip in net and lo <= int(port) <= hi for net, (lo, hi) in networks):
            raise HostRefused(param, host, port)
    return addresses


def check_url(settings, tenant: str | None, url: str, param: str) -> None:
    """The host and port of a URL (SQLAlchemy or http/ftp-like); non-network URLs pass."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            return
        host, port = parsed.host, parsed.port or DEFAULT_PORTS.get(backend)
        query_host = parsed.query.get("host")  # libpq: host= in the query overrides
        if query_host:
            raise HostRefused(param, str(query_host), port)
    except ArgumentError:
        try:
            parts = urlsplit(url)
            host, port = parts.hostname, parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
        except ValueError:
            raise HostRefused(param, "(unparsable URL)", None) from None
    if not host:
        raise HostRefused(param, "(no host)", port)
    check_host(settings, tenant, host, port, param)


def pinned_address(settings, tenant: str | None, url: str) -> str | None:
    """An address the URL's host resolved to *and was checked as* (IPv4 first), for the live check
    to connect to instead of resolving the name again (a DNS answer changing between check and
    connect cannot redirect it); None for URLs without a network host. Raises HostRefused."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        if backend == "sqlite" or not parsed.host:
            return None
        host, port = parsed.host, parsed.port or DEFAULT_PORTS.get(backend)
    except ArgumentError:
        return None
    addresses = check_host(settings, tenant, host, port, "url")
    return sorted(addresses, key=lambda a: (":" in a, a))[0]


class TokenBuckets:
    """`burst` tokens per key, refilled at `rate_per_minute`; `take(key)` or ProbeRateLimited."""

    def __init__(self):
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, rate_per_minute: float, burst: int) -> None:
        now = time.monotonic()
        rate = max(rate_per_minute, 1e-6) / 60.0
        with self._lock:
            tokens, last = self._buckets.get(key, (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                raise ProbeRateLimited((1.0 - tokens) / rate)
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > 10_000:  # forget idle principals
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 3600}


BUCKETS = TokenBuckets()


def take_probe_token(settings, principal, purpose: str = "") -> None:
    """Rate limit of live checks per principal (superusers included: a leaked key is one too).
    `purpose` gives a bucket of its own (reading a source's columns on save must not use up the
    checks a deploy needs next)."""
    key = f"{purpose}{getattr(principal, 'kind', 'user')}:{getattr(principal, 'name', '?')}"
    BUCKETS.take(key, float(settings.probe_rate_per_minute), int(settings.probe_burst))
