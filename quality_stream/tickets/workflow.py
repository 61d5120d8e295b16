"""The ticket workflow: which action a person may take in which state, and where it leads.

    open -> assigned -> in_progress -> resolved -> verified -> closed, reopened when failures come back

`verify` is the monitor's alone (the rule passed on new data); a waived ticket is closed without
verification (its failures are accepted). Anything else answers IllegalTransition naming the state
and the actions it allows.
"""

from __future__ import annotations

from quality_stream.tickets.model import RESOLUTIONS, BadInput, IllegalTransition

# action -> (states it is allowed in, the state it leads to)
ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "assign": (("open", "assigned", "in_progress", "reopened"), "assigned"),
    "start": (("assigned", "reopened"), "in_progress"),
    "resolve": (("assigned", "in_progress", "reopened"), "resolved"),
    "close": (("resolved", "verified"), "closed"),
    "reopen": (("resolved", "verified", "closed"), "reopened"),
}
STATE_ZH = {
    "open": "待分派",
    "assigned": "已分派",
    "in_progress": "处理中",
    "resolved": "已解决",
    "verified": "已验证",
    "closed": "已关闭",
    "reopened": "已重开",
}


def allowed(state: str, resolution: str | None = None) -> list[str]:
    out = [a for a, (states, _) in ACTIONS.items() if state in states]
    if state == "resolved" and resolution != "waived":
        out.remove("close")  # closed once verified by the rule on new data
    return out


def apply(ticket: dict, action: str, assignee: str | None, resolution: str | None, reason: str | None) -> dict:
    """The changes `action` makes to `ticket` (a dict with state, assignee, resolution)."""
    if action not in ACTIONS:
        raise BadInput(
            f"unknown action {action!r}; actions: {', '.join(ACTIONS)}",
            f"未知操作 {action!r}，可用：{', '.join(ACTIONS)}",
            "action",
        )
    state = ticket["state"]
    if action not in allowed(state, ticket.get("resolution")):
        can = ", ".join(allowed(state, ticket.get("resolution"))) or "none"
        extra = ""
        extra_zh = ""
        if action == "close" and state == "resolved":
            extra, extra_zh = (
                " (it closes once verified: the rule passes on new data)",
                "（新数据通过规则验证后才能关闭）",
            )
        raise IllegalTransition(
            f"cannot {action} a ticket that is {state}{extra}; allowed: {can}",
            f"工单当前为「{STATE_ZH[state]}」，不能执行 {action}{extra_zh}；可执行：{can}",
            "action",
        )
    changes: dict = {"state": ACTIONS[action][1]}
    if action == "assign":
        if not assignee:
            raise BadInput("assign needs an assignee", "分派需要指定处理人 assignee", "assignee")
        changes["assignee"] = assignee
    if action == "start" and not ticket.get("assignee"):
        raise IllegalTransition("assign the ticket first: it has no assignee", "请先分派：工单没有处理人", "assignee")
    if action == "resolve":
        if resolution not in RESOLUTIONS:
            raise BadInput(
                f"resolution must be one of {', '.join(RESOLUTIONS)}",
                f"解决方式必须是 {', '.join(RESOLUTIONS)} 之一",
                "resolution",
            )
        if not reason or not reason.strip():
            raise BadInput("resolve needs a reason", "解决需要填写原因 reason", "reason")
        changes.update(resolution=resolution, resolution_reason=reason.strip())
    if action == "reopen":
        changes.update(resolution=None, resolution_reason=None, verified_at=None, closed_at=None)
    return changes
