"""Property-based fuzzing of the whole OpenAPI document with a superuser credential: whatever
schemathesis sends, the API never answers 5xx. A few examples per operation keep it short.

Runs the `st` CLI against the real server (same start-up as the other API tests); on failure the
CLI's report (with reproducing curl commands, secrets sanitised) is the assertion message.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.identity import start_keyed_api

MAX_EXAMPLES = int(os.environ.get("HUILIU_FUZZ_EXAMPLES", "10"))


@pytest.fixture(scope="module")
def api(stack_settings):
    proc, base, key = start_keyed_api(stack_settings)
    yield base, key
    proc.terminate()
    proc.wait(10)


@pytest.mark.timeout(600)
def test_no_operation_answers_a_server_error(api, tmp_path):
    base, key = api
    st = Path(sys.executable).with_name("st")
    cmd = [
        str(st),
        "run",
        f"{base}/openapi.json",
        "--header",
        f"X-API-Key: {key}",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--phases",
        "examples,fuzzing",
        "--workers",
        "1",
        "--seed",
        "20261125",
        "--request-timeout",
        "30",
        "--no-shrink",
        "--suppress-health-check",
        "all",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=540)
    output = result.stdout + result.stderr
    assert key not in output
    assert result.returncode == 0, output[-15000:]
