"""Data elements and code sets in the control DB: versions, lifecycle and review.

    store = StandardsStore(engine)
    store.save_drafts(scope, "element", [ElementSpec, ...], author)   # one transaction: all or none
    store.get(scope, kind, code, version=None) / .published(...) / .versions(...) / .diff(...)
    store.items(scope, kind, status=None, category=None, q=None, limit, offset) -> (total, [latest per code])
    review = store.submit(scope, author, [("element", code), ...], title)    # drafts -> in_review, one review
    store.decide(scope, review_id, reviewer, approve, comment)             # -> published (or back to draft)
    store.retire(scope, kind, code, actor)                                 # published -> retired

Lifecycle: draft -> in_review -> published -> retired; publishing a version supersedes the one
published before it. A published row is never changed: editing a published element makes a new
draft version. The reviewer may not be the author of the review. `scope` is the owning tenant.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from quality_stream.governance import diff as diffs
from quality_stream.governance.model import CodeSetSpec, ElementSpec, StandardsError, body_of, problem
from quality_stream.governance.tables import std_categories, std_code_sets, std_elements, std_reviews

KINDS: dict[str, tuple[Table, type]] = {
    "element": (std_elements, ElementSpec),
    "code_set": (std_code_sets, CodeSetSpec),
}
LABELS = {"element": ("data element", "数据元"), "code_set": ("code set", "代码集")}


class NotFound(LookupError):
    """Unknown (or another tenant's) element, code set, version or review."""


class Conflict(StandardsError):
    """The object is not in a state that allows the change (HTTP 409)."""


class ReviewRefused(StandardsError):
    """The caller may not decide this review (the author reviewing their own submission)."""


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _plain(kind: str, row, with_items: bool = True) -> dict[str, Any]:
    body = json.loads(row.body)
    if kind == "code_set" and not with_items:
        body["item_count"] = len(body.pop("items", []))
    return {
        "kind": kind,
        "code": row.code,
        "version": row.version,
        "status": row.status,
        "author": row.author,
        "review_id": row.review_id,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        **body,
    }


def _missing(kind: str, code: str, version: int | None = None) -> NotFound:
    en, zh = LABELS[kind]
    if version is None:
        return NotFound(f"no {en} {code!r} / 没有{zh} {code!r}")
    return NotFound(f"{en} {code!r} has no version {version} / {zh} {code!r} 没有第 {version} 版")


class StandardsStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    # -- versions ---------------------------------------------------------------------------
    @staticmethod
    def _latest(conn: Connection, table: Table, scope: str, code: str):
        return conn.execute(
            select(table).where(table.c.scope == scope, table.c.code == code).order_by(table.c.version.desc()).limit(1)
        ).first()

    def save_drafts(self, scope: str, kind: str, specs: list, author: str, now: float | None = None) -> list[dict]:
        """Each spec becomes its code's draft: a new code's version 1, the draft edited in place, or
        the next version after a published/retired one. A code in review refuses the whole batch."""
        with self.engine.begin() as conn:
            return self._save(conn, scope, kind, specs, author, now or time.time())

    def import_drafts(self, scope: str, kind: str, specs: list, author: str, title: str) -> dict[str, Any]:
        """Save every spec as a draft and submit them all as one review, in one transaction: a
        refusal of any item (in review already, an unknown category or code set) applies nothing.
        Specs equal to their published version are left alone (`unchanged`)."""
        table, _ = KINDS[kind]
        with self.engine.begin() as conn:
            index = [n for n, s in enumerate(specs) if not self._unchanged(conn, table, scope, s)]
            changed = [specs[n] for n in index]
            if not changed:
                return {"saved": 0, "unchanged": len(specs), "review": None}
            try:
                self._save(conn, scope, kind, changed, author, time.time(), batch=True)
                review_id = self._submit(conn, scope, author, [(kind, spec.code) for spec in changed], title)
            except StandardsError as exc:  # items.<n> of the changed ones -> items.<n> of `specs`
                for p in exc.problems:
                    head, _, rest = p["field"].partition(".")
                    n, _, tail = rest.partition(".")
                    if head == "items" and n.isdigit():
                        p["field"] = ".".join(x for x in ("items", str(index[int(n)]), tail) if x)
                raise
        return {"saved": len(changed), "unchanged": len(specs) - len(changed), "review": self.review(scope, review_id)}

    def _unchanged(self, conn: Connection, table: Table, scope: str, spec) -> bool:
        """The code's latest version is published with exactly these attributes (no new version needed)."""
        latest = self._latest(conn, table, scope, spec.code)
        return latest is not None and latest.status == "published" and json.loads(latest.body) == body_of(spec)

    def _save(
        self, conn: Connection, scope: str, kind: str, specs: list, author: str, now: float, batch: bool = False
    ) -> list[dict]:
        table, _ = KINDS[kind]
        out = []
        for n, spec in enumerate(specs):
            body = _dumps(body_of(spec))
            latest = self._latest(conn, table, scope, spec.code)
            if latest is not None and latest.status == "in_review":
                en, zh = LABELS[kind]
                raise Conflict(
                    [
                        problem(
                            f"items.{n}.code" if batch or len(specs) > 1 else "code",
                            f"{en} {spec.code!r} is in review (review {latest.review_id}); wait for its decision",
                            f"{zh} {spec.code!r} 正在审核（审核单 {latest.review_id}），请等待审核结果",
                        )
                    ]
                )
            if latest is not None and latest.status == "draft":
                conn.execute(update(table).where(table.c.id == latest.id).values(body=body, updated_at=now))
            else:
                conn.execute(
                    insert(table).values(
                        scope=scope,
                        code=spec.code,
                        version=(latest.version + 1) if latest is not None else 1,
                        status="draft",
                        body=body,
                        author=author,
                        review_id=None,
                        created_at=now,
                        updated_at=now,
                    )
                )
            out.append(_plain(kind, self._latest(conn, table, scope, spec.code)))
        return out

    def get(self, scope: str, kind: str, code: str, version: int | None = None) -> dict[str, Any]:
        table, _ = KINDS[kind]
        with self.engine.connect() as conn:
            if version is None:
                row = self._latest(conn, table, scope, code)
            else:
                row = conn.execute(
                    select(table).where(table.c.scope == scope, table.c.code == code, table.c.version == version)
                ).first()
        if row is None:
            known_code = version is not None and self.exists(scope, kind, code)
            raise _missing(kind, code, version if known_code else None)
        return _plain(kind, row)

    def exists(self, scope: str, kind: str, code: str) -> bool:
        table, _ = KINDS[kind]
        with self.engine.connect() as conn:
            return self._latest(conn, table, scope, code) is not None

    def published(self, scope: str, kind: str, code: str) -> dict[str, Any] | None:
        table, _ = KINDS[kind]
        with self.engine.connect() as conn:
            row = conn.execute(
                select(table).where(table.c.scope == scope, table.c.code == code, table.c.status == "published")
            ).first()
        return _plain(kind, row) if row is not None else None

    def items(
        self,
        scope: str,
        kind: str,
        status: str | None = None,
        category: str | None = None,
        q: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[int, list[dict[str, Any]]]:
        """The latest version of each code, filtered; code sets without their items (item_count)."""
        table, _ = KINDS[kind]
        newest = (
            select(table.c.code, func.max(table.c.version).label("v"))
            .where(table.c.scope == scope)
            .group_by(table.c.code)
            .subquery()
        )
        query = (
            select(table)
            .join(newest, (table.c.code == newest.c.code) & (table.c.version == newest.c.v))
            .where(table.c.scope == scope)
            .order_by(table.c.code)
        )
        if status:
            query = query.where(table.c.status == status)
        with self.engine.connect() as conn:
            rows = [_plain(kind, r, with_items=False) for r in conn.execute(query)]
        if category:
            rows = [r for r in rows if r.get("category") == category]
        if q:
            words = q.lower().split()
            rows = [r for r in rows if all(w in _dumps(r).lower() for w in words)]
        return len(rows), rows[offset : offset + limit]

    def versions(self, scope: str, kind: str, code: str) -> list[dict[str, Any]]:
        table, _ = KINDS[kind]
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(table).where(table.c.scope == scope, table.c.code == code).order_by(table.c.version)
            ).all()
        if not rows:
            raise _missing(kind, code)
        return [_plain(kind, r, with_items=False) for r in rows]

    def diff(self, scope: str, kind: str, code: str, a: int, b: int) -> dict[str, Any]:
        old, new = self.get(scope, kind, code, a), self.get(scope, kind, code, b)
        meta = {"kind", "code", "version", "status", "author", "review_id", "created_at", "updated_at"}
        change = diffs.diff_bodies(
            {k: v for k, v in old.items() if k not in meta}, {k: v for k, v in new.items() if k not in meta}
        )
        return {"kind": kind, "code": code, "from": a, "to": b, "summary": diffs.summary(change), "diff": change}

    def retire(self, scope: str, kind: str, code: str, actor: str, now: float | None = None) -> dict[str, Any]:
        table, _ = KINDS[kind]
        with self.engine.begin() as conn:
            row = conn.execute(
                select(table).where(table.c.scope == scope, table.c.code == code, table.c.status == "published")
            ).first()
            if row is None:
                if self._latest(conn, table, scope, code) is None:
                    raise _missing(kind, code)
                en, zh = LABELS[kind]
                raise Conflict(
                    [problem("code", f"{en} {code!r} has no published version", f"{zh} {code!r} 没有已发布的版本")]
                )
            conn.execute(
                update(table).where(table.c.id == row.id).values(status="retired", updated_at=now or time.time())
            )
            return _plain(kind, conn.execute(select(table).where(table.c.id == row.id)).first())

    # -- review -----------------------------------------------------------------------------
    def submit(self, scope: str, author: str, items: list[tuple[str, str]], title: str = "") -> dict[str, Any]:
        """Drafts -> in_review, together as one review. Every item must be a draft; an element's
        code set and category must exist (a code set may be published or in this same review)."""
        with self.engine.begin() as conn:
            review_id = self._submit(conn, scope, author, items, title)
        return self.review(scope, review_id)

    def _submit(self, conn: Connection, scope: str, author: str, items: list[tuple[str, str]], title: str) -> int:
        if not items:
            raise StandardsError([problem("items", "nothing to review", "没有要审核的条目")])
        now, problems, rows = time.time(), [], []
        in_batch = {code for kind, code in items if kind == "code_set"}
        for n, (kind, code) in enumerate(items):
            table, _ = KINDS[kind]
            en, zh = LABELS[kind]
            row = self._latest(conn, table, scope, code)
            if row is None:
                problems.append(problem(f"items.{n}", f"no {en} {code!r}", f"没有{zh} {code!r}"))
                continue
            if row.status != "draft":
                problems.append(
                    problem(
                        f"items.{n}",
                        f"{en} {code!r} version {row.version} is {row.status}, not a draft",
                        f"{zh} {code!r} 第 {row.version} 版状态为 {row.status}，不是草稿",
                    )
                )
                continue
            if kind == "element":
                problems += self._references(conn, scope, n, json.loads(row.body), in_batch)
            rows.append((table, row))
        if problems:
            raise Conflict(problems)
        review_id = conn.execute(
            insert(std_reviews).values(
                scope=scope,
                title=title or f"{len(items)} item(s)",
                author=author,
                status="open",
                items=_dumps([{"kind": k, "code": c, "version": r.version} for (k, c), (_, r) in zip(items, rows)]),
                created_at=now,
            )
        ).inserted_primary_key[0]
        for table, row in rows:
            conn.execute(
                update(table)
                .where(table.c.id == row.id)
                .values(status="in_review", review_id=review_id, updated_at=now)
            )
        return review_id

    @staticmethod
    def _references(conn: Connection, scope: str, n: int, body: dict, in_batch: set[str]) -> list[dict]:
        out = []
        code_set = body.get("code_set")
        if code_set and code_set not in in_batch:
            found = conn.execute(
                select(std_code_sets.c.id).where(
                    std_code_sets.c.scope == scope,
                    std_code_sets.c.code == code_set,
                    std_code_sets.c.status == "published",
                )
            ).first()
            if found is None:
                out.append(
                    problem(
                        f"items.{n}.code_set",
                        f"code set {code_set!r} is neither published nor in this review",
                        f"代码集 {code_set!r} 既未发布也不在本次审核中",
                    )
                )
        category = body.get("category")
        if (
            category
            and not conn.execute(
                select(std_categories.c.id).where(std_categories.c.scope == scope, std_categories.c.code == category)
            ).first()
        ):
            out.append(problem(f"items.{n}.category", f"no category {category!r}", f"没有分类 {category!r}"))
        return out

    def decide(self, scope: str, review_id: int, reviewer: str, approve: bool, comment: str = "") -> dict[str, Any]:
        """Approve (every item published, the versions before them superseded) or reject (back to draft)."""
        now = time.time()
        with self.engine.begin() as conn:
            review = conn.execute(
                select(std_reviews).where(std_reviews.c.scope == scope, std_reviews.c.id == review_id)
            ).first()
            if review is None:
                raise NotFound(f"no review {review_id} / 没有审核单 {review_id}")
            if review.status != "open":
                raise Conflict(
                    [
                        problem(
                            "review",
                            f"review {review_id} is already {review.status}",
                            f"审核单 {review_id} 已{review.status}",
                        )
                    ]
                )
            if review.author == reviewer:
                raise ReviewRefused(
                    [problem("reviewer", "the author of a review cannot decide it", "提交人不能审核自己提交的标准")]
                )
            items = sorted(json.loads(review.items), key=lambda i: i["kind"] != "code_set")  # code sets first
            for item in items:
                table, _ = KINDS[item["kind"]]
                where = (table.c.scope == scope) & (table.c.code == item["code"])
                if approve:
                    conn.execute(
                        update(table)
                        .where(where, table.c.status == "published")
                        .values(status="superseded", updated_at=now)
                    )
                conn.execute(
                    update(table)
                    .where(where, table.c.version == item["version"])
                    .values(status="published" if approve else "draft", updated_at=now)
                )
            conn.execute(
                update(std_reviews)
                .where(std_reviews.c.id == review_id)
                .values(
                    status="approved" if approve else "rejected", reviewer=reviewer, comment=comment, decided_at=now
                )
            )
        return self.review(scope, review_id)

    def review(self, scope: str, review_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(std_reviews).where(std_reviews.c.scope == scope, std_reviews.c.id == review_id)
            ).first()
        if row is None:
            raise NotFound(f"no review {review_id} / 没有审核单 {review_id}")
        return self._review(row)

    @staticmethod
    def _review(row) -> dict[str, Any]:
        return {
            "id": row.id,
            "title": row.title,
            "author": row.author,
            "status": row.status,
            "items": json.loads(row.items),
            "reviewer": row.reviewer,
            "comment": row.comment,
            "created_at": row.created_at,
            "decided_at": row.decided_at,
        }

    def reviews(self, scope: str, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query = select(std_reviews).where(std_reviews.c.scope == scope).order_by(std_reviews.c.id.desc()).limit(limit)
        if status:
            query = query.where(std_reviews.c.status == status)
        with self.engine.connect() as conn:
            return [self._review(r) for r in conn.execute(query)]

    # -- categories -------------------------------------------------------------------------
    def categories(self, scope: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(std_categories).where(std_categories.c.scope == scope).order_by(std_categories.c.code)
            ).all()
        return [{"code": r.code, "name": r.name, "parent": r.parent} for r in rows]

    def add_category(self, scope: str, code: str, name: str, parent: str | None) -> dict[str, Any]:
        with self.engine.begin() as conn:
            known = {r[0] for r in conn.execute(select(std_categories.c.code).where(std_categories.c.scope == scope))}
            if code in known:
                raise Conflict([problem("code", f"category {code!r} exists", f"分类 {code!r} 已存在")])
            if parent and parent not in known:
                raise StandardsError([problem("parent", f"no category {parent!r}", f"没有上级分类 {parent!r}")])
            conn.execute(insert(std_categories).values(scope=scope, code=code, name=name, parent=parent))
        return {"code": code, "name": name, "parent": parent}
