"""The local stack: a Kafka-compatible broker (tansu) on a local object store (SeaweedFS), the
schema registry and ClickHouse.

`Stack(settings).up()` starts each component detached (own session, survives the CLI), with
data under `state_dir/data/<component>`, output in `state_dir/logs/<component>.log` and a pid
file in `state_dir/run/<component>.pid`; `down()` stops them; `status()` also reports the
external PostgreSQL (demo source) and Redis, which the stack does not run. A component with
`depends_on` is started once those answer (the broker after the object store holding its log);
with `broker_storage: memory` the object store is not run and the broker keeps nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from deploy.components import (
    Broker,
    ClickHouse,
    Component,
    ComponentStatus,
    ObjectStore,
    Postgres,
    Redis,
    SchemaRegistry,
    StackError,
)
from deploy.components.base import pid_alive
from deploy.settings import Settings, get_settings

__all__ = ["Stack", "ComponentStatus", "StackError", "MANAGED", "EXTERNAL"]

MANAGED = ("objectstore", "broker", "registry", "clickhouse")
EXTERNAL = ("postgres", "redis")


@dataclass
class _Pending:
    comp: Component
    deadline: float
    pid: int | None
    started: bool
    task: object = None
    done: bool = False
    error: str | None = None
    version: str | None = None
    notes: list[str] = field(default_factory=list)


class Stack:
    """The local single-machine stack described by `settings`."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        ready_timeout: float = 60.0,
        stop_timeout: float = 15.0,
        registry_command: list[str] | None = None,
    ):
        """`ready_timeout`: seconds each component gets to answer after start; `stop_timeout`:
        seconds between SIGTERM and SIGKILL on `down`; `registry_command` replaces the schema
        registry's command line (placeholders {host}, {port}, {data_dir})."""
        self.settings = settings or get_settings()
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.components: dict[str, Component] = {
            "objectstore": ObjectStore(self.settings),
            "broker": Broker(self.settings),
            "registry": SchemaRegistry(self.settings, command=registry_command),
            "clickhouse": ClickHouse(self.settings),
            "postgres": Postgres(self.settings),
            "redis": Redis(self.settings),
        }

    def component(self, name: str) -> Component:
        try:
            return self.components[name]
        except KeyError:
            raise StackError(f"unknown component {name!r}; known: {', '.join(self.components)}") from None

    def _managed(self, only: list[str] | tuple[str, ...] | None) -> list[Component]:
        durable = self.settings.broker_storage == "s3"
        names = list(only) if only else [n for n in MANAGED if durable or n != "objectstore"]
        comps = [self.component(n) for n in names]
        for c in comps:
            if not c.managed:
                raise StackError(f"{c.name} is not run by the stack (it is only reported by `status`)")
        return comps

    # ------------------------------------------------------------------ up
    def up(self, progress: bool = True, only: list[str] | tuple[str, ...] | None = None) -> list[ComponentStatus]:
        """Start the managed components (all, or those named in `only`) and wait until each answers.

        Components already answering are left alone. Raises StackError naming every component
        that failed, with its log file and the last lines of that log.
        """
        self.settings.ensure_dirs()
        comps = self._managed(only)
        with self._lock():
            return self._up(comps, progress)

    def _up(self, comps: list[Component], progress: bool) -> list[ComponentStatus]:
        results: dict[str, ComponentStatus] = {}
        failures: list[str] = []
        display = _Display(progress)
        with display:
            # Two waves: components nothing waits for, then those that depend on one of them (the
            # broker on the object store holding its log), each started once its dependencies answer.
            first = [c for c in comps if not c.depends_on]
            for wave in (first, [c for c in comps if c.depends_on]):
                ready = []
                for comp in wave:
                    missing = [d for d in comp.depends_on if not self._answers(d, results)]
                    if missing:
                        failures.append(f"{comp.name} not started: {', '.join(missing)} does not answer")
                    else:
                        ready.append(comp)
                self._start_wave(ready, display, results, failures)
        if failures:
            raise StackError("\n\n".join(failures))
        return [results[c.name] for c in comps if c.name in results]

    def _answers(self, name: str, results: dict[str, ComponentStatus]) -> bool:
        return name in results or self.components[name].answering(timeout=1.0)[0]

    def _start_wave(self, comps: list[Component], display, results: dict, failures: list[str]) -> None:
        """Start each component, then wait until each answers (or fails); results and failures are filled."""
        pending: list[_Pending] = []
        if comps:
            for comp in comps:
                task = display.add(comp.name, "checking")
                ok, version, _ = comp.answering(timeout=1.0)
                if ok:
                    display.update(task, f"[green]already up[/] {version or ''}", done=True)
                    results[comp.name] = ComponentStatus(comp.name, comp.address, True, version, "already up")
                    continue
                pid = comp.running_pid()
                started = False
                if pid is None:
                    display.update(task, "starting")
                    try:
                        pid = comp.start()
                        started = True
                    except StackError as exc:
                        failures.append(str(exc))
                        display.update(task, "[red]failed[/]", done=True)
                        continue
                    except OSError as exc:
                        failures.append(str(comp.failure(f"could not launch: {exc}")))
                        display.update(task, "[red]failed[/]", done=True)
                        continue
                display.update(task, f"waiting for {comp.address} (pid {pid})")
                pending.append(_Pending(comp, time.monotonic() + self.ready_timeout, pid, started, task))

            while any(not p.done for p in pending):
                for p in pending:
                    if p.done:
                        continue
                    ok, version, err = p.comp.answering(timeout=2.0)
                    if ok:
                        try:
                            after = getattr(p.comp, "after_ready", None)
                            if after:
                                after()
                        except Exception as exc:  # noqa: BLE001
                            p.error = f"answered but post-start setup failed: {exc}"
                        else:
                            p.done, p.version = True, version
                            display.update(p.task, f"[green]up[/] {version or ''}", done=True)
                            results[p.comp.name] = ComponentStatus(
                                p.comp.name, p.comp.address, True, version, f"pid {p.pid}"
                            )
                            continue
                    elif p.pid is not None and not pid_alive(p.pid):
                        p.error = "its process exited"
                    elif time.monotonic() > p.deadline:
                        p.error = f"no answer within {self.ready_timeout:.0f}s ({err})"
                        p.comp.stop(timeout=5)
                    if p.error:
                        p.done = True
                        if p.comp.running_pid() is None:
                            p.comp.pid_path.unlink(missing_ok=True)
                        failures.append(str(p.comp.failure(p.error)))
                        display.update(p.task, "[red]failed[/]", done=True)
                if any(not p.done for p in pending):
                    time.sleep(0.3)

    # ------------------------------------------------------------------ down
    def down(self, only: list[str] | tuple[str, ...] | None = None) -> dict[str, str]:
        """Stop the managed components (SIGTERM, SIGKILL after `stop_timeout`); name -> outcome."""
        outcome: dict[str, str] = {}
        comps = self._managed(only)
        with self._lock():
            for comp in reversed(comps):
                outcome[comp.name] = comp.stop(min(self.stop_timeout, comp.stop_timeout))
        return dict(reversed(list(outcome.items())))

    @contextlib.contextmanager
    def _lock(self):
        """Serialise up/down of the same state dir across processes (run/stack.lock)."""
        run = self.settings.state_dir / "run"
        run.mkdir(parents=True, exist_ok=True)
        with open(run / "stack.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # ------------------------------------------------------------------ status
    def status(self) -> list[ComponentStatus]:
        """One ComponentStatus per component (managed ones first, then postgres and redis)."""
        comps = list(self.components.values())
        with ThreadPoolExecutor(max_workers=len(comps)) as pool:
            return list(pool.map(lambda c: c.status(), comps))


class _Display:
    """A rich progress display on stderr (or nothing when progress=False)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._progress = None

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                SpinnerColumn(finished_text="•"),
                TextColumn("[bold]{task.fields[component]:<11}"),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def add(self, name: str, text: str):
        if self._progress is None:
            return None
        return self._progress.add_task(text, total=1, component=name)

    def update(self, task, text: str, done: bool = False) -> None:
        if self._progress is None or task is None:
            return
        self._progress.update(task, description=text, completed=1 if done else 0)
