"""The steady load of a chaos run: a PostgreSQL table written by one thread (inserts, updates that
turn rows valid or invalid, deletes), and what ClickHouse must hold once the stream has caught up.

Rows are valid when the trimmed name is present and the trimmed phone is a mobile number: the
pipeline's two rules. An update that breaks a row is quarantined, so ClickHouse keeps the row's last
valid version: the writer keeps that model as it writes (one thread, each transaction retried until
it commits, so the model is what the table went through).
"""

from __future__ import annotations

import random
import re
import threading
import time

import psycopg

PHONE = re.compile(r"^1[3-9]\d{9}$")
TABLE = "chaos_people"


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def create_table(url: str) -> None:
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(
            f"CREATE TABLE {TABLE} (id bigint PRIMARY KEY, name text, phone text, "
            "updated_at timestamptz NOT NULL DEFAULT now())"
        )


def valid(name: str | None, phone: str | None) -> bool:
    return bool((name or "").strip()) and bool(PHONE.match((phone or "").strip()))


def phone(rng: random.Random) -> str:
    """A mobile number, or one time in ten a number the phone rule rejects."""
    return "12345" if rng.random() < 0.1 else f"13{rng.randrange(10**9):09d}"


def person(rng: random.Random, id_: int) -> tuple[int, str, str]:
    """A new row: one time in twenty without a name (rejected), padded with blanks the trim removes."""
    name = "" if rng.random() < 0.05 else f" 居民{id_} "
    return id_, name, phone(rng)


def rejected_now(url: str) -> set[int]:
    """Ids of the source rows whose current version the rules reject."""
    with psycopg.connect(libpq(url)) as conn:
        rows = conn.execute(f"SELECT id, name, phone FROM {TABLE}").fetchall()
    return {id_ for id_, name, phone in rows if not valid(name, phone)}


class SourceLoad:
    """Writes ~`rate` new rows per second plus updates and deletes, from one thread, seeded."""

    def __init__(self, url: str, rate: int, seed: int):
        self.url, self.rate = url, rate
        self.rng = random.Random(seed)
        self.next_id = 1
        self.written = 0
        self.names: dict[int, str] = {}  # live rows
        self.last_valid: dict[int, tuple[str, str]] = {}  # what ClickHouse must hold per live row
        self.retries = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-load", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(60)

    def insert_canary(self, id_: int) -> None:
        """A valid row the run waits for to time a recovery."""
        self._write([(id_, f"探针{id_}", "13700000000")], [], [])

    def _batch(self):
        per_tick = max(1, self.rate // 10)
        inserts = []
        for _ in range(per_tick):
            inserts.append(person(self.rng, self.next_id))
            self.next_id += 1
        existing = max(1, self.next_id - 1)
        updates = [(phone(self.rng), self.rng.randrange(1, existing + 1)) for _ in range(max(1, per_tick // 3))]
        deletes = [self.rng.randrange(1, existing + 1)] if self.rng.random() < 0.05 else []
        return inserts, updates, deletes

    def _write(self, inserts, updates, deletes) -> None:
        while True:
            try:
                with psycopg.connect(libpq(self.url), connect_timeout=5) as conn:
                    with conn.transaction():
                        cur = conn.cursor()
                        if inserts:  # ON CONFLICT: a commit whose answer was lost, retried
                            cur.executemany(
                                f"INSERT INTO {TABLE} (id, name, phone) VALUES (%s, %s, %s) ON CONFLICT (id) DO NOTHING",
                                inserts,
                            )
                        if updates:
                            cur.executemany(f"UPDATE {TABLE} SET phone = %s, updated_at = now() WHERE id = %s", updates)
                        for id_ in deletes:
                            cur.execute(f"DELETE FROM {TABLE} WHERE id = %s", (id_,))
                self.written += len(inserts) + len(updates) + len(deletes)
                self._remember(inserts, updates, deletes)
                return
            except psycopg.OperationalError:  # the server restarts under the load: the same write again
                self.retries += 1
                if self._stop.is_set():
                    return
                time.sleep(0.5)

    def _remember(self, inserts, updates, deletes) -> None:
        for id_, name, phone in inserts:
            if id_ not in self.names:  # ON CONFLICT DO NOTHING
                self.names[id_] = name
                self._version(id_, phone)
        for phone, id_ in updates:
            if id_ in self.names:  # an update of a deleted row changes nothing
                self._version(id_, phone)
        for id_ in deletes:
            self.names.pop(id_, None)
            self.last_valid.pop(id_, None)

    def _version(self, id_: int, phone: str) -> None:
        name = self.names[id_]
        if valid(name, phone):
            self.last_valid[id_] = (name.strip(), phone.strip())

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self._write(*self._batch())
            self._stop.wait(max(0.0, 0.1 - (time.monotonic() - started)))
