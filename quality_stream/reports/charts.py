"""The report's charts with matplotlib (Agg, no display): PNG for the PDF, SVG for the HTML."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _save(fig, fmt: str) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def dimension_chart(data: dict[str, Any], fmt: str = "png") -> bytes:
    rows = data["by_dimension"]
    fig, ax = plt.subplots(figsize=(6, 2.6))
    names = [r["dimension"] for r in rows] or ["-"]
    values = [100 * r["ratio"] for r in rows] or [0]
    bars = ax.bar(names, values, color="#d9534f")
    ax.bar_label(bars, labels=[f"{v:.2f}%" for v in values], fontsize=8)
    ax.set_ylabel("problem ratio %")
    ax.set_title("Problems by dimension")
    return _save(fig, fmt)


def trend_chart(data: dict[str, Any], fmt: str = "png") -> bytes:
    rows = [r for r in data["trend"] if r["score"] is not None]
    fig, ax = plt.subplots(figsize=(6, 2.6))
    days = [r["day"][5:] for r in rows]
    ax.plot(days, [r["score"] for r in rows], marker="o", color="#2f7ed8")
    ax.axvline(x=sum(1 for r in rows if r["day"] < data["start"]) - 0.5, color="#999", linestyle="--")
    ax.set_ylabel("score")
    ax.set_title("Daily quality score (previous | current period)")
    ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    return _save(fig, fmt)


def rule_chart(data: dict[str, Any], fmt: str = "png") -> bytes:
    rows = data["by_rule"][:10][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.4 * max(len(rows), 3) + 0.8))
    ax.barh([r["rule"][:40] for r in rows] or ["-"], [r["failed"] for r in rows] or [0], color="#f0ad4e")
    ax.set_xlabel("failed")
    ax.set_title("Problems by rule")
    return _save(fig, fmt)


CHARTS = {"dimension": dimension_chart, "trend": trend_chart, "rule": rule_chart}
