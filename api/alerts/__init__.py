"""Alerts (AGG-07, ENG-04): rules on platform metrics, e-mail over SMTP, throttling, message centre."""

from __future__ import annotations

import threading

from api.alerts.engine import AlertEngine
from api.alerts.rules import KINDS, kind

_lock = threading.Lock()


def alert_engine_for(app) -> AlertEngine:
    with _lock:
        engine = getattr(app.state, "alerts", None)
        if engine is None:
            engine = app.state.alerts = AlertEngine(app.state.settings)
        return engine


__all__ = ["AlertEngine", "KINDS", "kind", "alert_engine_for"]
