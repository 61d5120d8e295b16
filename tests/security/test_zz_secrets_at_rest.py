"""Last in the package, after every case ran with passwords, tokens, API keys and sealed connector
secrets: none of them is in the API's logs, its console output, the audit log or the metrics
(issue 19: "no secret ever in logs, the audit log, error messages or the metrics")."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, select

from api.audit.log import audit_log

pytestmark = pytest.mark.security


def _credentials(world) -> dict[str, str]:
    """Every bearer token and API key a principal of the suite used, by who used it."""
    found = {}
    for tenant in (world.a, world.b):
        for role, headers in tenant.headers.items():
            for value in headers.values():
                secret = value.removeprefix("Bearer ").strip()
                if len(secret) >= 16:  # a credential, not a short header value
                    found[f"{tenant.name} {role} credential"] = secret
    return found


def _leaks(world, text: str, credentials: dict[str, str]) -> list[str]:
    return world.leaks(text) + [label for label, secret in credentials.items() if secret in text]


def test_no_secret_in_logs_audit_or_metrics(world, sec_settings):
    credentials = _credentials(world)
    assert credentials, "the suite's principals carry credentials"
    state = sec_settings.state_dir
    logs = [*state.glob("logs/*"), *state.glob("api-*.out")]
    assert logs, f"the API wrote no log under {state}"
    found = []
    for path in logs:
        leaks = _leaks(world, path.read_text(errors="replace"), credentials)
        found += [f"{path.name}: {leak}" for leak in leaks]

    engine = create_engine(sec_settings.resolved_control_db_url)
    with engine.connect() as conn:
        rows = [" ".join(str(v) for v in row) for row in conn.execute(select(audit_log))]
    engine.dispose()
    assert len(rows) > 100, "the suite's requests are in the audit log"
    found += [f"audit log: {leak}" for leak in _leaks(world, "\n".join(rows), credentials)]

    metrics = world.op("GET", "/metrics")
    assert metrics.status_code == 200 and "huiliu" in metrics.text
    found += [f"metrics: {leak}" for leak in _leaks(world, metrics.text, credentials)]
    assert not found, "secrets at rest:\n" + "\n".join(sorted(set(found))[:50])
