"""Every route of the running API has a declared tenant rule (api/tenancy_rules.py).

A route added without a rule turns this red, naming it: the attacker's matrix
(test_cross_tenant.py) only knows what to expect from a route through its rule.
"""

from __future__ import annotations

import pytest

from api.tenancy_rules import ROUTES, RULES, operations, stale, undeclared

pytestmark = pytest.mark.security


def test_every_route_in_openapi_has_a_tenant_rule(openapi):
    missing = undeclared(openapi)
    assert not missing, "routes without a tenant rule in api/tenancy_rules.py ROUTES:\n" + "\n".join(missing)


def test_no_rule_names_a_route_that_is_gone(openapi):
    gone = stale(openapi)
    assert not gone, "api/tenancy_rules.py declares rules for routes the API no longer has:\n" + "\n".join(gone)


def test_every_declared_rule_is_a_documented_one():
    unknown = {route: rule for route, rule in ROUTES.items() if rule not in RULES}
    assert not unknown, f"rules not documented in RULES: {unknown}"


def test_the_document_is_the_whole_api(openapi):
    ops = operations(openapi)
    assert len(ops) >= 60 and "GET /pipelines/{name}" in ops and "POST /auth/token" in ops
