"""What a person is told about a quality ticket, in Chinese (the default) or English: one catalogue
of (subject, body) templates per event, filled from the ticket.

    notice("assigned", ticket, "zh") -> (subject, body)
    EVENTS: assigned (someone, or the monitor, gave it to you), opened (a rule's failures crossed the
            threshold and the ticket is yours), escalated (past its SLA due time, unfinished)
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from quality_stream.reports.labels import LABELS  # the dimensions' Chinese names, as reports say them
from quality_stream.tickets.workflow import STATE_ZH

LANGS = ("zh", "en")

CATALOGUE: dict[str, dict[str, tuple[str, str]]] = {
    "assigned": {
        "zh": (
            "[汇流] 质量工单 #{id} 已分派给您",
            "质量工单 #{id} 已分派给您（{assignee}）。\n\n{facts}\n\n请在截止时间前处理：{due}。",
        ),
        "en": (
            "[Huiliu] Quality ticket #{id} is assigned to you",
            "Quality ticket #{id} is assigned to you ({assignee}).\n\n{facts}\n\nPlease handle it by {due}.",
        ),
    },
    "opened": {
        "zh": (
            "[汇流] 质量规则 {rule} 失败超过阈值：工单 #{id}",
            "规则 {rule} 在数据集 {dataset} 上的失败数超过阈值，已自动新建质量工单 #{id} 并分派给您"
            "（{assignee}）。\n\n{facts}\n\n截止时间：{due}。",
        ),
        "en": (
            "[Huiliu] Rule {rule} crossed its failure threshold: ticket #{id}",
            "Rule {rule} failed more often than its threshold allows on {dataset}; quality ticket #{id} "
            "was opened and assigned to you ({assignee}).\n\n{facts}\n\nDue: {due}.",
        ),
    },
    "escalated": {
        "zh": (
            "[汇流] 质量工单 #{id} 已超期",
            "质量工单 #{id} 已超过截止时间 {due}，当前状态为「{state}」，请尽快处理（处理人：{assignee}）。\n\n{facts}",
        ),
        "en": (
            "[Huiliu] Quality ticket #{id} is overdue",
            "Quality ticket #{id} passed its due time {due} and is still {state}; please handle it "
            "(assignee: {assignee}).\n\n{facts}",
        ),
    },
}
EVENTS = tuple(CATALOGUE)

FACTS = {
    "zh": "数据集：{dataset}\n管道：{pipeline}\n规则：{rule}（{dimension}）\n失败记录数：{failed}",
    "en": "Dataset: {dataset}\nPipeline: {pipeline}\nRule: {rule} ({dimension})\nFailed records: {failed}",
}
NOBODY = {"zh": "未分派", "en": "unassigned"}


def _due(due_at: float | None) -> str:
    if not due_at:
        return "-"
    return dt.datetime.fromtimestamp(due_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def notice(event: str, ticket: dict[str, Any], lang: str | None = "zh") -> tuple[str, str]:
    """The subject and body telling of `event` on `ticket`, in `lang` (anything else: Chinese)."""
    lang = lang if lang in LANGS else "zh"
    subject, body = CATALOGUE[event][lang]
    dimension = ticket.get("dimension") or ""
    values = {
        "id": ticket["id"],
        "rule": ticket.get("rule") or "",
        "dataset": ticket.get("dataset") or "",
        "pipeline": ticket.get("pipeline") or "",
        "dimension": LABELS["zh"].get(dimension, dimension) if lang == "zh" else dimension,
        "failed": ticket.get("failed") or 0,
        "assignee": ticket.get("assignee") or NOBODY[lang],
        "state": STATE_ZH.get(ticket.get("state"), ticket.get("state")) if lang == "zh" else ticket.get("state"),
        "due": _due(ticket.get("due_at")),
    }
    values["facts"] = FACTS[lang].format(**values)
    return subject.format(**values), body.format(**values)
