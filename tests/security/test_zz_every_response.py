"""Last in the package: no answer the suite's client received -- tenant a's, tenant b's or the
operator key's, in any module -- carried a key file's content, one of tenant a's secrets or
/etc/passwd (World records every response as it arrives)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.security


def test_no_response_of_the_whole_suite_carried_a_secret(world):
    assert not world.leak_log, "answers carrying secrets:\n" + "\n".join(world.leak_log[:50])
