"""Chaos runs (issue 19): a steady load through a deployed pipeline while seeded faults kill and
restart its processes and servers; the end state must be exact. `test_chaos.py` is the CI run
(a fixed seed, a few minutes); `python -m tests.chaos --seconds 1800` is the long one by hand."""
