"""Reads and writes users, groups, roles and API keys; resolves who someone is and what they hold.

Rows leave this module as plain dicts without any secret column (password_hash, secret_hash),
so a router cannot return a secret by accident.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from api.identity import apikeys, passwords
from api.identity.permissions import BUILTIN_ROLES
from api.identity.tables import JSON_COLUMNS, api_keys, groups, metadata, roles, users
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
        metadata.create_all(self.engine)
        self._ensure_builtin_roles()

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
                **fields,
            },
        )
        return self.user(username)

    def update_user(self, username: str, password: str | None = None, **fields) -> dict | None:
        if password is not None:
            fields["password_hash"] = passwords.hash_password(password)
        if fields and not self._update(users, users.c.username, username, fields):
            return None
        return self.user(username)

    def delete_user(self, username: str) -> bool:
        return self._delete(users, users.c.username, username)

    def check_login(self, username: str, password: str) -> tuple[str, dict | None]:
        """('ok'|'bad'|'locked'|'disabled', user). Counts failures and locks after too many."""
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.username == username)).first()
        if row is None:
            passwords.verify_password(None, password)
            return "bad", None
        user = row._mapping
        if user["locked_until"] and user["locked_until"] > passwords.now().isoformat():
            return "locked", _decode(row)
        if not passwords.verify_password(user["password_hash"], password):
            return ("locked" if self._count_failure(username) else "bad"), _decode(row)
        if user["disabled"]:
            return "disabled", _decode(row)
        self._update(users, users.c.username, username, {"failed_logins": 0, "locked_until": None})
        return "ok", _decode(row)

    def _count_failure(self, username: str) -> bool:
        """Adds a failure atomically (parallel guesses all count); True when this one locks."""
        where = users.c.username == username
        with self.engine.begin() as conn:
            conn.execute(update(users).where(where).values(failed_logins=users.c.failed_logins + 1))
            failures = conn.execute(select(users.c.failed_logins).where(where)).scalar_one()
            until = passwords.lock_after(failures)
            if until:
                conn.execute(update(users).where(where).values(failed_logins=0, locked_until=until.isoformat()))
        return until is not None

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

    def update_role(self, name: str, **values) -> dict | None:
        if values and not self._update(roles, roles.c.name, name, values):
            return None
        return self.role(name)

    def delete_role(self, name: str) -> bool:
        holders = [u["username"] for u in self.users() if name in u["roles"]]
        holders += [g["name"] for g in self.groups() if name in g["roles"]]
        holders += [k["name"] for k in self.api_keys() if name in k["roles"] and not k["revoked_at"]]
        if holders:
            raise Conflict(f"role {name!r} is still held by: {', '.join(sorted(holders)[:10])}")
        return self._delete(roles, roles.c.name, name)

    def missing_roles(self, names: list[str]) -> list[str]:
        known = {r["name"] for r in self.roles()}
        return sorted(set(names) - known)

    def resolve(self, role_names: list[str], group_names: list[str] = ()) -> tuple[set[str], set[str]]:
        """(permissions, grants) of the roles, directly and through the groups."""
        names = set(role_names)
        for g in group_names:
            group = self.group(g)
            names |= set(group["roles"]) if group else set()
        perms: set[str] = set()
        grants: set[str] = set()
        for name in names:
            role = self.role(name)
            if role:
                perms |= set(role["permissions"])
                grants |= set(role["grants"])
        return perms, grants

    # API keys --------------------------------------------------------------------------------
    def api_keys(self, tenant: str | None = None, any_tenant: bool = True) -> list[dict]:
        return self._all(api_keys, api_keys.c.created_at, tenant, any_tenant)

    def api_key(self, key_id: str) -> dict | None:
        return self._one(api_keys, api_keys.c.id, key_id)

    def create_api_key(self, name: str, tenant: str | None, role_names: list[str], created_by: str) -> tuple[dict, str]:
        key_id, key, secret_hash = apikeys.new_key()
        self._insert(
            api_keys,
            {
                "id": key_id,
                "name": name,
                "tenant": tenant,
                "roles": role_names,
                "secret_hash": secret_hash,
                "created_by": created_by,
                "created_at": passwords.now().isoformat(),
            },
        )
        return self.api_key(key_id), key

    def revoke_api_key(self, key_id: str) -> bool:
        return self._update(api_keys, api_keys.c.id, key_id, {"revoked_at": passwords.now().isoformat()})

    def check_api_key(self, key: str) -> dict | None:
        parts = apikeys.split(key)
        if parts is None:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == parts[0])).first()
        if row is None or row._mapping["revoked_at"] or not apikeys.matches(row._mapping["secret_hash"], parts[1]):
            return None
        return _decode(row)
