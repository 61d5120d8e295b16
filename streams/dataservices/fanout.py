"""One reader per topic per API process for the data services' SSE streams (issue 17).

    sub = Subscriber(plan, still_allowed, generation_seen)        # its view: grant, masks, row filter
    stream = Stream((bootstrap, registry_url, topic), make_reader, generation, sub)
    stream.open(resume, start)                 # blocking: joins the topic's hub, or reads on its own
    async for chunk in stream.events(request.is_disconnected, run_in_threadpool): ...

Why: a stream that reads the topic itself decodes every record once per subscriber and builds its
events on the event loop; 20 subscribers of 1,000 changes/s spent most of the API's CPU decoding
the same records 20 times (tests/benchmarks/README.md). Here a `TopicHub` thread reads the topic
once, decodes each record once, renders each distinct grant's event text once per record (a
`View`: granted fields, masks, row filter; the subscribers of one grant share the very bytes) and
hands the bytes to each subscriber's queue; the event loop only writes them out.

Exact resume. A subscriber's position is its own: the last offset handed to it on every partition,
carried in its event ids. It joins the hub only when it has seen everything the hub has dispatched
(its positions at or past the hub's on every partition; records it already had are skipped). A
subscriber behind the hub (Last-Event-ID from the past, `start=earliest`) reads on a reader of its
own from its positions until it has caught up, then joins: nothing lost, nothing twice.

A slow subscriber. Each has a bounded queue (`QUEUE_BYTES` of event text; a batch larger than that
is let only into an empty queue). One that falls that far behind is detached from the hub, so it
holds nobody else up and its memory stops growing; once it has written what was queued it goes on,
without a break in its stream, on a reader of its own from its own positions (pulled only as fast as it writes; librdkafka's prefetch is capped), and joins the
hub again when it has caught up. Chosen over ending the stream (the client would have to reconnect
and resume by Last-Event-ID for the same result) and over pausing the reader (one slow client would
hold up every other).

Revocation. Before every batch the hub reads the services' change counter (one Redis GET:
cache.Generation, bumped by every revocation, decision, review and offline) and re-checks, from the
control DB, each subscriber whose last check was at another counter value, every `RECHECK_S`
anyway, and one whose credential has expired; without Redis every subscriber on every batch. A
refused subscriber gets its end event at once and nothing of what was still queued for it.

Counted per API process in /metrics: readers open, subscribers on a shared reader and on their own,
records decoded, subscribers detached.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from streams.dataservices.downloads import Plan
from streams.dataservices.serving import CallRefused
from streams.dataservices.subscriptions import TopicReader, to_event

log = logging.getLogger(__name__)

QUEUE_BYTES = 8 << 20  # event text waiting for one subscriber before it is detached
BATCH = 1000  # records per poll
POLL_S = 0.1  # the hub's poll wait: bounds the delivery latency it adds
IDLE_CLOSE_S = 10.0  # a hub without subscribers closes its reader after this
RECHECK_S = 30.0  # every subscriber's grant is read again at least this often
HEARTBEAT_S = 15.0
OWN_BATCH = 500
HUB_PREFETCH_KB = 16_384


def end_event(refused: CallRefused) -> bytes:
    body = json.dumps(
        {"status": refused.status, "message": refused.message, "message_zh": refused.message_zh},
        ensure_ascii=False,
    )
    return f"event: end\ndata: {body}\n\n".encode()


def _event_id(positions: dict[int, int]) -> str:
    return ",".join(f"{p}:{o}" for p, o in sorted(positions.items()))


class View:
    """What one grant sees of a record (granted fields, masks, row filter), as event text. Plans
    with the same key give the same text, so their subscribers share it."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.key: tuple = (
            plan.scope,
            plan.name,
            plan.version,
            tuple(plan.fields),
            json.dumps(plan.mask_specs, sort_keys=True, default=str),
            json.dumps(plan.app.get("row_filter") or {}, sort_keys=True, default=str),
        )
        if plan.masks and not plan.mask_specs:  # masks whose specs are unknown are never shared
            self.key += (id(plan),)

    def data(self, value: Any) -> str | None:
        event = to_event(self.plan, value)
        return None if event is None else json.dumps(event, ensure_ascii=False, default=str)


class Subscriber:
    """One stream: its view, its positions and the queue the hub fills (bytes of event text)."""

    def __init__(self, plan: Plan, still_allowed: Callable[[], CallRefused | None], generation: int | None):
        self.view = View(plan)
        self.still_allowed = still_allowed  # thread-safe: reads the grant again
        self.expires_at = plan.app.get("expires_at")
        self.checked = (generation, time.monotonic())  # counter value and time of the last check
        self.positions: dict[int, int] = {}
        self.synced = False  # its positions are the hub's (not copied per batch while so)
        self.detached = False
        self.end: CallRefused | None = None
        self._chunks: deque[bytes] = deque()
        self.queued = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._signalled = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop, self._event = loop, asyncio.Event()

    def push(self, chunk: bytes) -> None:
        with self._lock:
            self._chunks.append(chunk)
            self.queued += len(chunk)
        self.wake()

    def wake(self) -> None:
        """From the hub's thread: at most one pending wake-up per subscriber."""
        if self._loop is not None and not self._signalled:
            self._signalled = True
            try:
                self._loop.call_soon_threadsafe(self._event.set)
            except RuntimeError:  # the loop is gone: the stream is over
                pass

    def take(self) -> bytes:
        """On the event loop: everything queued (the wake-up flag is cleared first, so a push
        after this call wakes the stream again)."""
        self._signalled = False
        if self._event is not None:
            self._event.clear()
        with self._lock:
            if not self._chunks:
                return b""
            out = b"".join(self._chunks)
            self._chunks.clear()
            self.queued = 0
        return out

    def pending(self) -> bool:
        return bool(self._chunks)

    async def wait(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            pass


class HubClosed(Exception):
    pass


class TopicHub:
    """One reader of a topic and the subscribers it feeds, in a thread of its own."""

    def __init__(self, key: tuple, reader: TopicReader, generation: Callable[[], int | None], hubs: Hubs):
        self.key, self.reader, self.generation, self.hubs = key, reader, generation, hubs
        self.positions: dict[int, int] = dict(reader.positions)
        self.subs: list[Subscriber] = []
        self.lock = threading.Lock()
        self.closed = False
        self.idle_since: float | None = time.monotonic()
        self.thread = threading.Thread(target=self._run, name=f"sse-hub-{key[-1]}", daemon=True)
        self.thread.start()

    def join(self, sub: Subscriber) -> bool:
        """Feed `sub` from now on if it has seen everything dispatched (a new stream without
        positions starts where the hub is); False when it is behind. HubClosed if closing."""
        with self.lock:
            if self.closed:
                raise HubClosed()
            if not sub.positions:
                sub.positions = dict(self.positions)
            if any(sub.positions.get(p, -1) < o for p, o in self.positions.items()):
                self.idle_since = time.monotonic()  # one catching up keeps the hub open for it
                return False
            sub.synced = sub.positions == self.positions
            sub.detached = False
            self.subs.append(sub)
            self.idle_since = None
            return True

    def leave(self, sub: Subscriber) -> None:
        with self.lock:
            self._drop(sub, dict(self.positions))

    def _drop(self, sub: Subscriber, positions: dict[int, int]) -> None:
        """Under the lock: `positions` are the hub's as of what was last queued for it."""
        if sub in self.subs:
            self.subs.remove(sub)
            if sub.synced:
                sub.positions, sub.synced = positions, False
            if not self.subs:
                self.idle_since = time.monotonic()

    def _run(self) -> None:
        try:
            while True:
                batch = self.reader.poll(BATCH, POLL_S)
                with self.lock:
                    subs = list(self.subs)
                    if not subs and time.monotonic() - (self.idle_since or 0) > self.hubs.idle_close_s:
                        self.closed = True
                        break
                self.hubs.count("decoded", len(batch))
                self._recheck(subs)
                if batch:
                    self._dispatch(batch)
        except Exception:
            log.exception("the shared reader of %s failed; its subscribers go on with readers of their own", self.key)
            with self.lock:
                self.closed = True
                before = dict(self.positions)
                for sub in list(self.subs):
                    self._drop(sub, before)
                    sub.detached = True
                    sub.wake()
        finally:
            self.hubs.closed(self)
            try:
                self.reader.close()
            except Exception:
                pass

    def _recheck(self, subs: list[Subscriber]) -> None:
        if not subs:
            return
        try:
            gen = self.generation()
        except Exception:
            gen = None
        now, wall = time.monotonic(), time.time()
        for sub in subs:
            gen_seen, at = sub.checked
            expired = sub.expires_at is not None and wall >= sub.expires_at
            if gen is not None and gen == gen_seen and now - at < RECHECK_S and not expired:
                continue
            refused = sub.still_allowed()
            sub.checked = (gen, now)
            if refused is not None:
                with self.lock:
                    self._drop(sub, dict(self.positions))
                    sub.end = refused
                sub.wake()

    def _dispatch(self, batch: list[tuple[int, int, Any]]) -> None:
        from streams.topics_browse import plain

        values = [(p, o, plain(v)) for p, o, v in batch]
        datas: dict[tuple, list[str | None]] = {}  # view key -> event text per record

        def data_of(view: View) -> list[str | None]:
            found = datas.get(view.key)
            if found is None:
                found = datas[view.key] = [view.data(v) for _, _, v in values]
            return found

        with self.lock:
            before = dict(self.positions)
            ids = []
            for p, o, _ in values:
                self.positions[p] = o
                ids.append(_event_id(self.positions))
            shared: dict[tuple, bytes] = {}
            for sub in list(self.subs):
                if sub.synced:
                    chunk = shared.get(sub.view.key)
                    if chunk is None:
                        texts = data_of(sub.view)
                        chunk = shared[sub.view.key] = "".join(
                            f"id: {ids[i]}\ndata: {d}\n\n" for i, d in enumerate(texts) if d is not None
                        ).encode()
                    after = None
                else:  # joined ahead of the hub: skips what it had, its ids its own
                    after, chunk = self._own_chunk(sub, values, data_of(sub.view))
                if chunk and sub.queued and sub.queued + len(chunk) > self.hubs.queue_bytes:
                    self._drop(sub, before)  # as of its last queued batch; its stream goes on alone
                    sub.detached = True
                    self.hubs.count("detached", 1)
                    sub.wake()
                    continue
                if after is not None:
                    sub.positions = after
                    sub.synced = after == self.positions
                if chunk:
                    sub.push(chunk)

    @staticmethod
    def _own_chunk(sub: Subscriber, values, texts) -> tuple[dict[int, int], bytes]:
        pos = dict(sub.positions)
        out = []
        for (p, o, _), d in zip(values, texts, strict=True):
            if o <= pos.get(p, -1):
                continue
            pos[p] = o
            if d is not None:
                out.append(f"id: {_event_id(pos)}\ndata: {d}\n\n")
        return pos, "".join(out).encode()


class Hubs:
    """The process's hubs, one per (bootstrap, registry, topic)."""

    def __init__(self, queue_bytes: int = QUEUE_BYTES, idle_close_s: float = IDLE_CLOSE_S):
        self.queue_bytes, self.idle_close_s = queue_bytes, idle_close_s
        self.hubs: dict[tuple, TopicHub] = {}
        self.lock = threading.Lock()
        self._opening: dict[tuple, threading.Lock] = {}
        self.decoded = 0  # records decoded by the hubs
        self.detached = 0  # subscribers detached for being slow
        self.own = 0  # streams reading on readers of their own now

    def attach(
        self, key: tuple, open_reader: Callable[[], TopicReader], generation, sub: Subscriber
    ) -> tuple[TopicHub, bool]:
        """The topic's hub (opened with `open_reader()` when there is none: CallRefused if the
        topic is not there) and whether `sub` joined it. Blocking: call from a thread."""
        while True:
            hub = self.hub(key, open_reader, generation)
            try:
                return hub, hub.join(sub)
            except HubClosed:
                continue

    def hub(self, key: tuple, open_reader: Callable[[], TopicReader], generation) -> TopicHub:
        with self.lock:
            hub = self.hubs.get(key)
            if hub is not None and not hub.closed:
                return hub
            opening = self._opening.setdefault(key, threading.Lock())
        with opening:  # one opening per topic; other topics are not held up
            with self.lock:
                hub = self.hubs.get(key)
                if hub is not None and not hub.closed:
                    return hub
            hub = TopicHub(key, open_reader(), generation, self)
            with self.lock:
                self.hubs[key] = hub
            return hub

    def closed(self, hub: TopicHub) -> None:
        with self.lock:
            if self.hubs.get(hub.key) is hub:
                del self.hubs[hub.key]

    def count(self, what: str, n: int) -> None:
        with self.lock:
            setattr(self, what, getattr(self, what) + n)

    def shared(self) -> int:
        with self.lock:
            hubs = list(self.hubs.values())
        return sum(len(h.subs) for h in hubs)


HUBS = Hubs()


def _own_step(reader: TopicReader, sub: Subscriber) -> tuple[bytes, CallRefused | None]:
    """One batch of a subscriber's own reader: checked, rendered (off the event loop)."""
    from streams.topics_browse import plain

    batch = reader.poll(OWN_BATCH, 0.5)
    refused = sub.still_allowed()  # revocation, expiry, offline: on every batch, as the hub does
    if refused is not None:
        return b"", refused
    out = []
    for partition, offset, value in batch:
        reader.delivered(partition, offset)
        data = sub.view.data(plain(value))
        if data is not None:
            out.append(f"id: {reader.event_id()}\ndata: {data}\n\n")
    sub.positions = dict(reader.positions)
    return "".join(out).encode(), None


def _close_later(reader: TopicReader) -> None:
    """Close a reader off the event loop without awaiting (the stream may be being cancelled)."""
    threading.Thread(target=reader.close, daemon=True).start()


class Stream:
    """One subscriber's stream: on the topic's hub while joined, else on a reader of its own.
    `make_reader(resume, start, prefetch_kb)` opens a TopicReader of the topic (CallRefused when
    the topic is not there); `key` names the topic (bootstrap, registry, topic)."""

    def __init__(
        self,
        key: tuple,
        make_reader: Callable[..., TopicReader],
        generation: Callable[[], int | None],
        sub: Subscriber,
        hubs: Hubs = HUBS,
    ):
        self.key, self.make_reader, self.generation, self.sub, self.hubs = key, make_reader, generation, sub, hubs
        self.hub: TopicHub | None = None
        self.own: TopicReader | None = None

    def _hub_reader(self) -> TopicReader:
        return self.make_reader(None, "latest", HUB_PREFETCH_KB)

    def open(self, resume: dict[int, int] | None, start: str) -> None:
        """Blocking: join the hub, or open a reader of its own when behind it (a resume from the
        past, `start=earliest`). CallRefused (503) when the topic is not there."""
        sub = self.sub
        sub.positions = dict(resume or {})
        if resume is None and start == "earliest":
            self._own(self.make_reader(None, "earliest"))
            sub.positions = dict(self.own.positions)
        self.hub, joined = self.hubs.attach(self.key, self._hub_reader, self.generation, sub)
        if joined:
            self._own(None)
        elif self.own is None:
            self._own(self.make_reader(sub.positions, start))
            sub.positions = dict(self.own.positions)

    def _own(self, reader: TopicReader | None) -> None:
        """Switch to (or, with None, off) a reader of its own; the old one is closed."""
        if self.own is not None:
            self.hubs.count("own", -1)
            _close_later(self.own)
        if reader is not None:
            self.hubs.count("own", 1)
        self.own = reader

    def close(self) -> None:
        """Idempotent: off the hub, its own reader closed (also when the body was never iterated:
        the route runs this after the response too)."""
        if self.hub is not None:
            self.hub.leave(self.sub)
        self._own(None)

    def _rejoin(self) -> bool:
        self.hub, joined = self.hubs.attach(self.key, self._hub_reader, self.generation, self.sub)
        return joined

    async def events(
        self, is_disconnected: Callable[[], Awaitable[bool]], to_thread: Callable[..., Awaitable[Any]]
    ) -> AsyncIterator[bytes]:
        """The stream's bytes. `to_thread(fn, *args)` runs blocking work off the event loop."""
        sub = self.sub
        sub.bind(asyncio.get_running_loop())
        idle_since = time.monotonic()
        try:
            yield b"retry: 1000\n\n"
            while True:
                if sub.end is not None:
                    yield end_event(sub.end)
                    return
                if self.own is not None:
                    if await is_disconnected():
                        return
                    chunk, refused = await to_thread(_own_step, self.own, sub)
                    if refused is not None:
                        yield end_event(refused)
                        return
                    if chunk:
                        idle_since = time.monotonic()
                        yield chunk
                    elif time.monotonic() - idle_since > HEARTBEAT_S:
                        idle_since = time.monotonic()
                        yield b": keep-alive\n\n"
                    if await to_thread(self._rejoin):  # caught up with the hub
                        self._own(None)
                    continue
                chunk = sub.take()
                if sub.end is not None:
                    continue  # refused: what was still queued is not sent
                if chunk:
                    idle_since = time.monotonic()
                    yield chunk
                    continue
                if sub.detached:  # too slow for the hub: on its own from where its queue ended
                    try:
                        self._own(await to_thread(self.make_reader, dict(sub.positions), "latest"))
                    except CallRefused as exc:
                        yield end_event(exc)
                        return
                    continue
                await sub.wait(1.0)
                if not sub.pending() and sub.end is None and not sub.detached:
                    if await is_disconnected():
                        return
                    if time.monotonic() - idle_since > HEARTBEAT_S:
                        idle_since = time.monotonic()
                        yield b": keep-alive\n\n"
        finally:
            self.close()


def collect():
    """Prometheus families of this process's SSE readers (installation-wide counts, no names)."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    with HUBS.lock:
        readers = len(HUBS.hubs)
    yield GaugeMetricFamily("huiliu_service_stream_readers", "Shared topic readers of SSE streams open", value=readers)
    subs = GaugeMetricFamily("huiliu_service_stream_subscribers", "SSE streams by reader", labels=["reader"])
    subs.add_metric(["shared"], HUBS.shared())
    subs.add_metric(["own"], HUBS.own)
    yield subs
    yield CounterMetricFamily(
        "huiliu_service_stream_decoded_records", "Records decoded by the shared readers", value=HUBS.decoded
    )
    yield CounterMetricFamily(
        "huiliu_service_stream_detached",
        "SSE streams detached from a shared reader for being slow",
        value=HUBS.detached,
    )
