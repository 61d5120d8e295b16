"""Signed download links (streams/dataservices/downloads.py): a forged link of any characters is
refused, never an error (schemathesis found a 500 for a signature with non-ASCII characters)."""

from __future__ import annotations

from streams.dataservices.downloads import link_signature, link_valid

SECRET, ID = "jwt-key", "0123456789abcdef0123456789abcdef"


def test_a_link_is_valid_until_it_expires_and_only_with_its_own_signature():
    sig = link_signature(SECRET, ID, 2_000)
    assert link_valid(SECRET, ID, 2_000, sig, now=1_000) is None
    assert link_valid(SECRET, ID, 2_000, sig, now=3_000) == "expired"
    assert link_valid(SECRET, ID, 2_001, sig, now=1_000) == "signature"  # the expiry is signed too
    assert link_valid("other", ID, 2_000, sig, now=1_000) == "signature"


def test_forged_signatures_of_any_characters_are_refused():
    for forged in ("", "题\x9d", "\u00c5\u0000", "v\u00ba\u00a8", "x" * 128, "\udcff"):
        assert link_valid(SECRET, ID, 2_000, forged, now=1_000) == "signature"
    assert link_valid(SECRET, "\U0010c269s", -34139, "\u008f", now=1_000) == "signature"
