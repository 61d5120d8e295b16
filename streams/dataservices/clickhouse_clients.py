"""The ClickHouse client a data-API worker thread keeps between calls.

    client = CallClient(url)          # .execute(...) as clickhouse-driver's Client; .connection; .disconnect()

clickhouse-driver pings the server before every query on a connection it already has (a round
trip of its own, ~1/10 of the API's time per call under load: py-spy of the call route, issue 17).
A connection that answered a query less than `FRESH_S` seconds ago is used without that ping; if
it turns out to be dead (the server restarted or dropped it: EOF, reset, broken pipe), the driver
has already closed it and the query is sent once more on a new connection. Only such connection
failures are retried, and only on a connection whose ping was skipped: a timeout or a server
error is not (a slow server is not asked twice), and a query on a connection that was pinged
fails as before. The call route's queries are SELECTs, so sending one twice changes nothing.
"""

from __future__ import annotations

import time

from clickhouse_driver.errors import NetworkError

FRESH_S = 10.0
# What a dead connection raises on its next query: the driver's own network error, EOF while
# reading the answer, or the socket's reset / broken pipe. Not socket.timeout (a slow server).
DEAD = (NetworkError, EOFError, ConnectionError)


class CallClient:
    def __init__(self, url: str, fresh_s: float = FRESH_S):
        from sinks.clickhouse import client_from_url

        self.client = client_from_url(url)
        self.fresh_s = fresh_s
        self.pings = 0  # pings actually sent (for tests and profiles)
        self.retries = 0
        self._used = 0.0  # monotonic time a query last completed on this connection
        conn = self.client.connection
        real_ping = conn.ping

        def ping():
            if time.monotonic() - self._used < self.fresh_s:
                return True
            self.pings += 1
            return real_ping()

        conn.ping = ping  # clickhouse-driver's force_connect() calls it before every query

    @property
    def connection(self):
        return self.client.connection

    def execute(self, *args, **kwargs):
        skipped = bool(self.client.connection.connected) and time.monotonic() - self._used < self.fresh_s
        try:
            out = self.client.execute(*args, **kwargs)
        except DEAD:
            if not skipped:
                raise
            self._used = 0.0  # the driver closed the dead connection: the next one is new (and pinged)
            self.retries += 1
            out = self.client.execute(*args, **kwargs)
        self._used = time.monotonic()
        return out

    def disconnect(self) -> None:
        self._used = 0.0
        self.client.disconnect()
