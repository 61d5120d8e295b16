"""What the console benchmarks share: start the API as a process on seeded settings, sign in
through the console's form (and for a bearer token), and time GETs of pages and JSON routes
(p50/p95 ms, by the client on the same machine)."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import httpx


def time_pages(
    settings,
    user: str,
    password: str,
    pages: list[str],
    api_routes: list[str],
    requests: int,
    check: Callable[[str, httpx.Response], None] | None = None,
    width: int = 48,
) -> None:
    """Prints one line per path; every answer must be 200 (and pass `check`, when given)."""
    from deploy.settings import settings_env

    env = {**os.environ, **settings_env(settings)}
    log = open(settings.state_dir / "api.out", "ab")
    api = subprocess.Popen([sys.executable, "-m", "api.cli", "api"], env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{settings.api_port}"
    try:
        for _ in range(120):
            try:
                httpx.get(base + "/livez", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        client = httpx.Client(base_url=base, timeout=60)
        form = client.get("/console/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        signed = client.post("/console/login", data={"username": user, "password": password, "csrf_token": token})
        assert signed.status_code in (200, 303) and "huiliu_session" in client.cookies, signed.text[:300]
        bearer = httpx.post(base + "/auth/token", data={"username": user, "password": password}).json()
        headers = {"Authorization": f"Bearer {bearer['access_token']}"}
        print(f"{'GET':{width}} {'p50 ms':>8} {'p95 ms':>8}  (goal for a page < 300)")
        for path, extra in [(p, {}) for p in pages] + [(p, headers) for p in api_routes]:
            times = []
            for _ in range(requests):
                began = time.perf_counter()
                answer = client.get(path, headers=extra)
                times.append((time.perf_counter() - began) * 1000)
                assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
            if check:
                check(path, answer)
            times.sort()
            p95 = times[max(0, int(len(times) * 0.95) - 1)]
            print(f"{path[:width]:{width}} {statistics.median(times):8.1f} {p95:8.1f}", flush=True)
    finally:
        api.terminate()
        api.wait(20)
