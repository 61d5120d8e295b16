"""Run the `huiliu` command line as a subprocess with a test's settings."""

from __future__ import annotations

import os
import subprocess
import sys

from deploy.settings import Settings, settings_env


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **settings_env(settings)}
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )
