"""Reads and writes users, groups, roles and API keys; resolves who someone is and what they hold.

Rows leave this module as plain dicts without any secret column (password_hash, secret_hash),
so a router cannot return a secret by accident.
"""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from api.identity import apikeys, passwords
from api.identity.permissions import BUILTIN_ROLES
from api.identity.tables import JSON_COLUMNS, api_keys, groups, login_throttle, roles, users
from deploy.control import engine_for

SECRET_COLUMNS = {"password_hash", "secret_hash"}


class Conflict(Exception):
    """The name is taken, or the thing is still in use."""


def _encode(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (json.dumps(sorted(set(v))) if k in JSON_COLUMNS else v) for k, v in values.items()}


def _decode(row) -> dict[str, Any]:
    d = dict(row._mapping)
    for k in JSON_COLUMNS & d.keys():
        d[k] = json.loads(d[k] or "[]")
    for k in SECRET_COLUMNS & d.keys():
        d.pop(k)
    return d


@lru_cache(maxsize=8)
def store_for(url: str) -> IdentityStore:
    return IdentityStore(url)


class IdentityStore:
    def __init__(self, url: str):
        self.engine = engine_for(url)
        self._ensure_builtin_roles()
        self._ensure_user_ids()

    def _ensure_user_ids(self) -> None:
        """Rows of older releases get their random account id (tokens are bound to it), and their
        keys created by a user get that user as owner."""
        with self.engine.begin() as conn:
            people = select(users.c.username)
            conn.execute(
                update(api_keys)
                .where(
                    api_keys.c.owner.is_(None), api_keys.c.created_by != "operator", api_keys.c.created_by.in_(people)
                )
                .values(owner=api_keys.c.created_by)
            )
            for (name,) in conn.execute(select(users.c.username).where(users.c.user_id.is_(None))).all():
                conn.execute(
                    update(users)
                    .where(users.c.username == name, users.c.user_id.is_(None))
                    .values(user_id=secrets.token_hex(16))
                )

    def _ensure_builtin_roles(self) -> None:
        for name, spec in BUILTIN_ROLES.items():
            try:
                with self.engine.begin() as conn:
                    if conn.execute(select(roles.c.name).where(roles.c.name == name)).first() is None:
                        conn.execute(
                            insert(roles).values(**_encode({"name": name, "builtin": True, "grants": [], **spec}))
                        )
            except IntegrityError:  # another process seeded it at the same moment
                pass

    # generic helpers -------------------------------------------------------------------------
    def _one(self, table, key_col, key) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(table).where(key_col == key)).first()
        return _decode(row) if row else None

    def _all(self, table, order_col, tenant: str | None = None, any_tenant: bool = True) -> list[dict]:
        query = select(table).order_by(order_col)
        if not any_tenant:
            query = query.where(table.c.tenant == tenant)
        with self.engine.connect() as conn:
            return [_decode(r) for r in conn.execute(query)]

    def _insert(self, table, values: dict) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(table).values(**_encode(values)))
        except IntegrityError as e:
            raise Conflict("already exists") from e

    def _update(self, table, key_col, key, values: dict) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(update(table).where(key_col == key).values(**_encode(values))).rowcount > 0

    def _delete(self, table, key_col, key) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(delete(table).where(key_col == key)).rowcount > 0

    # users -----------------------------------------------------------------------------------
    def user(self, username: str) -> dict | None:
        return self._one(users, users.c.username, username)

    def users(self, tenant: str | None = None, any_tenant: bool = True) -> list[dict]:
        return self._all(users, users.c.username, tenant, any_tenant)

    def create_user(self, username: str, password: str, **fields) -> dict:
        self._insert(
            users,
            {
                "username": username,
                "password_hash": passwords.hash_password(password),
                "created_at": passwords.now().isoformat(),
                "failed_logins": 0,
                "user_id": secrets.token_hex(16),  # a recreated name is a new account: old tokens do not match
                "generation": 0,
                **fields,
            },
        )
        return self.user(username)

    # Changes after which tokens issued before them stop working.
    TOKEN_BREAKING = {"password_hash", "disabled", "roles", "groups", "tenants", "grants", "superuser", "tenant"}

    def update_user(self, username: str, password: str | None = None, **fields) -> dict | None:
        if password is not None:
            fields["password_hash"] = passwords.hash_password(password)
        if not fields:
            return self.user(username)
        values = _encode(fields)
        if self.TOKEN_BREAKING & fields.keys():
            values["generation"] = users.c.generation + 1
        with self.engine.begin() as conn:
            if not conn.execute(update(users).where(users.c.username == username).values(**values)).rowcount:
                return None
        if fields.get("disabled"):
            self.revoke_keys_of(username)
        return self.user(username)

    def delete_user(self, username: str) -> bool:
        self.revoke_keys_of(username)
        return self._delete(users, users.c.username, username)

    def token_claims_match(self, user: dict, user_id: str | None, generation: int | None) -> bool:
        return bool(user_id) and user.get("user_id") == user_id and user.get("generation") == generation

    def check_login(self, username: str, password: str) -> tuple[str, dict | None]:
        """('ok'|'bad', user). Unknown user, wrong password and disabled account are all 'bad'
        (the user is returned when known, for the audit entry); a dummy hash is verified for
        unknown users so the time taken is the same."""
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.username == username)).first()
        if row is None:
            passwords.verify_password(None, password)
            return "bad", None
        user = row._mapping
        if not passwords.verify_password(user["password_hash"], password) or user["disabled"]:
            return "bad", _decode(row)
        return "ok", _decode(row)

    # the sign-in back-off, per (source address, account name) ---------------------------------
    def throttled_for(self, source: str, account: str) -> int:
        """Seconds this source must still wait before trying this account again (0 = may try)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(login_throttle.c.blocked_until).where(
                    login_throttle.c.source == source[:64], login_throttle.c.account == account[:200]
                )
            ).first()
        if row is None or not row[0]:
            return 0
        wait = (_parse(row[0]) - passwords.now()).total_seconds()
        return max(0, int(wait + 0.999))

    def note_failure(self, source: str, account: str) -> int:
        """Counts a failed sign-in of `source` on `account`; returns the seconds it must now wait."""
        source, account = source[:64], account[:200]
        where = (login_throttle.c.source == source) & (login_throttle.c.account == account)
        moment = passwords.now()
        if secrets.randbelow(100) == 0:  # now and then, forget failures nobody is waiting on any more
            stale = (moment - passwords.FORGET_AFTER - passwords.MAX_DELAY).isoformat()
            with self.engine.begin() as conn:
                conn.execute(delete(login_throttle).where(login_throttle.c.last_failure < stale))
        for _ in range(3):  # an insert racing another process's: retry, then as an update
            try:
                with self.engine.begin() as conn:
                    row = conn.execute(select(login_throttle.c.last_failure).where(where)).first()
                    if row is None:
                        conn.execute(
                            insert(login_throttle).values(
                                source=source, account=account, failures=1, last_failure=moment.isoformat()
                            )
                        )
                    else:  # counted in SQL, so parallel guesses all count
                        forgotten = moment - _parse(row[0]) > passwords.FORGET_AFTER
                        conn.execute(
                            update(login_throttle)
                            .where(where)
                            .values(
                                failures=1 if forgotten else login_throttle.c.failures + 1,
                                last_failure=moment.isoformat(),
                            )
                        )
                    failures = conn.execute(select(login_throttle.c.failures).where(where)).scalar_one()
                    delay = passwords.backoff(failures)
                    until = (moment + delay).isoformat() if delay else None
                    conn.execute(update(login_throttle).where(where).values(blocked_until=until))
                    return int(delay.total_seconds()) if delay else 0
            except IntegrityError:
                continue
        return 0

    def clear_throttle(self, account: str, source: str | None = None) -> None:
        """After a successful sign-in (that source), or an administrator's unlock / new password (all)."""
        where = login_throttle.c.account == account[:200]
        if source is not None:
            where = where & (login_throttle.c.source == source[:64])
        with self.engine.begin() as conn:
            conn.execute(delete(login_throttle).where(where))

    def throttled_sources(self, account: str) -> int:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(login_throttle.c.blocked_until).where(login_throttle.c.account == account[:200])
            ).all()
        now_iso = passwords.now().isoformat()
        return sum(1 for (until,) in rows if until and until > now_iso)

    # groups and roles ------------------------------------------------------------------------
    def group(self, name: str) -> dict | None:
        return self._one(groups, groups.c.name, name)

    def groups(self, tenant: str | None = None, any_tenant: bool = True) -> list[dict]:
        return self._all(groups, groups.c.name, tenant, any_tenant)

    def create_group(self, **values) -> dict:
        self._insert(groups, values)
        return self.group(values["name"])

    def update_group(self, name: str, **values) -> dict | None:
        if values and not self._update(groups, groups.c.name, name, values):
            return None
        return self.group(name)

    def delete_group(self, name: str) -> bool:
        for u in self.users():
            if name in u["groups"]:
                self._update(users, users.c.username, u["username"], {"groups": [g for g in u["groups"] if g != name]})
        return self._delete(groups, groups.c.name, name)

    def role(self, name: str) -> dict | None:
        return self._one(roles, roles.c.name, name)

    def roles(self) -> list[dict]:
        return self._all(roles, roles.c.name)

    def create_role(self, **values) -> dict:
        self._insert(roles, {**values, "builtin": False})
        return self.role(values["name"])

    @staticmethod
    def role_usable_in(role: dict | None, tenant: str | None) -> bool:
        """A global role (tenant NULL) is usable everywhere; a tenant's role only by its holders there."""
        return role is not None and (role.get("tenant") is None or role["tenant"] == tenant)

    def update_role(self, name: str, **values) -> dict | None:
        if values and not self._update(roles, roles.c.name, name, values):
            return None
        return self.role(name)

    def role_holders(self, name: str) -> list[dict]:
        """Users, groups and live API keys holding the role: [{kind, name, tenant}]."""
        holders = [
            {"kind": "user", "name": u["username"], "tenant": u["tenant"]} for u in self.users() if name in u["roles"]
        ]
        holders += [
            {"kind": "group", "name": g["name"], "tenant": g["tenant"]} for g in self.groups() if name in g["roles"]
        ]
        holders += [
            {"kind": "API key", "name": k["name"], "tenant": k["tenant"]}
            for k in self.api_keys()
            if name in k["roles"] and not k["revoked_at"]
        ]
        return holders

    def delete_role(self, name: str) -> bool:
        if self.role_holders(name):
            raise Conflict(f"role {name!r} is still held")
        return self._delete(roles, roles.c.name, name)

    def missing_roles(self, names: list[str], tenant: str | None = None, any_tenant: bool = False) -> list[str]:
        """Names that are not roles usable in `tenant` (another tenant's role counts as missing)."""
        known = {r["name"] for r in self.roles() if any_tenant or self.role_usable_in(r, tenant)}
        return sorted(set(names) - known)

    def resolve(
        self, role_names: list[str], group_names: list[str] = (), tenant: str | None = None, any_tenant: bool = False
    ) -> tuple[set[str], set[str]]:
        """(permissions, grants) of the roles, directly and through the groups. Only roles usable
        in the holder's `tenant` count (global ones, or that tenant's own), and only groups of that
        tenant; `any_tenant` (superusers, the operator) counts every role and group."""
        names = set(role_names)
        for g in group_names:
            group = self.group(g)
            if group and (any_tenant or group["tenant"] == tenant):
                names |= set(group["roles"])
        perms: set[str] = set()
        grants: set[str] = set()
        for name in names:
            role = self.role(name)
            if role and (any_tenant or self.role_usable_in(role, tenant)):
                perms |= set(role["permissions"])
                grants |= set(role["grants"])
        return perms, grants

    # API keys --------------------------------------------------------------------------------
    def api_keys(self, tenant: str | None = None, any_tenant: bool = True) -> list[dict]:
        return self._all(api_keys, api_keys.c.created_at, tenant, any_tenant)

    def api_key(self, key_id: str) -> dict | None:
        return self._one(api_keys, api_keys.c.id, key_id)

    def create_api_key(
        self,
        name: str,
        tenant: str | None,
        role_names: list[str],
        created_by: str,
        expires_in_days: int | None = None,
        owner: str | None = None,
    ) -> tuple[dict, str]:
        key_id, key, secret_hash = apikeys.new_key()
        created = passwords.now()
        self._insert(
            api_keys,
            {
                "id": key_id,
                "name": name,
                "tenant": tenant,
                "roles": role_names,
                "secret_hash": secret_hash,
                "created_by": created_by,
                "created_at": created.isoformat(),
                "expires_at": (created + timedelta(days=expires_in_days)).isoformat() if expires_in_days else None,
                "owner": owner,
            },
        )
        return self.api_key(key_id), key

    def revoke_api_key(self, key_id: str) -> bool:
        return self._update(api_keys, api_keys.c.id, key_id, {"revoked_at": passwords.now().isoformat()})

    def reassign_api_key(self, key_id: str, owner: str) -> dict | None:
        self._update(api_keys, api_keys.c.id, key_id, {"owner": owner})
        return self.api_key(key_id)

    def keys_of(self, username: str) -> list[dict]:
        """Live keys the user is answerable for (keys created by the operator or a key have no owner)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(api_keys).where(api_keys.c.revoked_at.is_(None), api_keys.c.owner == username)
            ).all()
        return [_decode(r) for r in rows]

    def revoke_keys_of(self, username: str) -> list[str]:
        """A deleted or disabled user's keys stop working with them (reassign first to keep one)."""
        ids = [k["id"] for k in self.keys_of(username)]
        for key_id in ids:
            self.revoke_api_key(key_id)
        return ids

    def check_api_key(self, key: str) -> dict | None:
        parts = apikeys.split(key)
        if parts is None:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == parts[0])).first()
        if row is None or row._mapping["revoked_at"] or not apikeys.matches(row._mapping["secret_hash"], parts[1]):
            return None
        expires = row._mapping["expires_at"]
        if expires and expires <= passwords.now().isoformat():
            return None
        return _decode(row)


def _parse(iso: str):
    from datetime import datetime

    return datetime.fromisoformat(iso)
