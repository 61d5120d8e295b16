"""Start and stop the real API as a process for HTTP tests (settings passed as HUILIU_* variables)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from deploy.settings import Settings, settings_env


def start_api(settings: Settings, port: int | None = None) -> tuple[subprocess.Popen, str]:
    port = port or settings.api_port
    env = {**os.environ, **settings_env(settings), "HUILIU_API_PORT": str(port)}
    log = open(settings.state_dir / f"api-{port}.out", "ab")  # a file, never an unread pipe
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "api"], env=env, stdout=log, stderr=log)
    base = f"http://{settings.api_host}:{port}"
    deadline = time.time() + 150  # a shared 2-core machine under load: starting can take over a minute
    while time.time() < deadline:
        try:
            httpx.get(base + "/livez", timeout=5)  # serving; /health also asks every component
            return proc, base
        except httpx.TransportError:
            if proc.poll() is not None:
                pytest.fail(f"API exited: {(settings.state_dir / f'api-{port}.out').read_text()[-3000:]}")
            time.sleep(0.3)
    stop_api(proc, kill=True)  # never left behind, answering the next module's start on this port
    pytest.fail("API did not answer in 150s")


def stop_api(proc: subprocess.Popen, kill: bool = False) -> None:
    proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:  # never leave an API behind on the shared machine
        proc.kill()
        proc.wait(10)
        raise


def wait_for(fn, timeout=20.0, every=0.2):
    """Poll `fn` until it returns something truthy; fail with its last value."""
    deadline = time.time() + timeout
    value = None
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met in {timeout}s; last value {value!r}")


@pytest.fixture(scope="module", name="stack_settings")
def own_state_settings(stack_settings, tmp_path_factory):
    """For modules that import it: the session's servers, but a state dir with a SQLite control
    database of the module's own (their tests read the control DB file directly)."""
    return stack_settings.model_copy(update={"state_dir": tmp_path_factory.mktemp("own-state"), "control_db_url": ""})


@pytest.fixture(scope="module", name="api")
def api_client(stack_settings):
    """For modules that import it: the API as a real process and a client with the operator key."""
    from api.auth import api_key_for

    proc, base = start_api(stack_settings)
    client = httpx.Client(base_url=base, headers={"X-API-Key": api_key_for(stack_settings)}, timeout=60)
    yield client
    client.close()
    stop_api(proc)
