"""Runs a pipeline's three stages on one machine: source in-process, Faust runner as a child
process (Faust owns its event loop and signals), sink in a thread; and tells when it drained."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from connectors.pipeline import PipelineSpec, build_sink, build_source, counters_for, prepare_topics
from deploy.settings import Settings, settings_env


class LocalPipelineRun:
    def __init__(self, spec_path: str | Path, settings: Settings, runner_log: Path | None = None):
        self.spec_path = str(spec_path)
        self.spec = PipelineSpec.load(spec_path)
        self.settings = settings
        self.counters = counters_for(self.spec, settings)
        self.runner_log = runner_log or settings.state_dir / "logs" / f"runner-{self.spec.name}.log"
        self.runner: subprocess.Popen | None = None
        self.sink_thread: threading.Thread | None = None
        self.sink = None
        self._sink_stop = threading.Event()
        self.sink_error: BaseException | None = None
        prepare_topics(self.spec, settings)

    def capture(self) -> int:
        """Publish every row past the stored offset (snapshot first, then increments)."""
        return build_source(self.spec, self.settings).drain()

    def start_runner(self) -> None:
        env = {**os.environ, **settings_env(self.settings)}
        self.runner_log.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.runner_log, "ab")
        self.runner = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "pipeline", "runner", self.spec_path],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop_runner(self, kill: bool = False) -> None:
        if self.runner and self.runner.poll() is None:
            self.runner.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.runner.wait(30)
            except subprocess.TimeoutExpired:
                self.runner.kill()
                self.runner.wait()
        self.runner = None

    def start_sink(self, **runner_kwargs) -> None:
        self._sink_stop.clear()
        self.sink = build_sink(self.spec, self.settings, **runner_kwargs)

        def run():
            try:
                self.sink.run(self._sink_stop)
            except BaseException as exc:  # surfaced by wait_drained
                self.sink_error = exc

        self.sink_thread = threading.Thread(target=run, name=f"sink-{self.spec.name}", daemon=True)
        self.sink_thread.start()

    def stop_sink(self) -> None:
        self._sink_stop.set()
        if self.sink_thread:
            self.sink_thread.join(60)
        self.sink_thread = None

    def stats(self) -> dict[str, dict[str, int]]:
        return self.counters.read()

    def wait_drained(self, timeout: float = 180.0, progress=None) -> dict[str, dict[str, int]]:
        """Wait until the runner has read all the source published and the sink wrote all it passed."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.sink_error:
                raise RuntimeError(f"sink failed: {self.sink_error!r}") from self.sink_error
            if self.runner and self.runner.poll() is not None:
                raise RuntimeError(f"runner exited with {self.runner.returncode}; see {self.runner_log}")
            s = self.stats()
            read = s.get("source", {}).get("read", 0)
            runner = s.get("runner", {})
            written = s.get("sink", {}).get("written", 0)
            if progress:
                progress(s)
            if read and runner.get("read", 0) >= read and written >= runner.get("valid", 0):
                return s
            time.sleep(0.5)
        raise TimeoutError(
            f"pipeline {self.spec.name} did not drain in {timeout}s: {self.stats()}; runner log {self.runner_log}"
        )

    def stop(self) -> None:
        self.stop_runner()
        self.stop_sink()
