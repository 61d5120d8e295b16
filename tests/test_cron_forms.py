"""Issue 14: the cron forms schedules accept (api/scheduling/cron.py) and the scheduler's refusal to
fire a stored cron that breaks them (a 7-field one, stored before the check, fired every second).
Pure logic plus a SQLite control DB file: no servers."""

from __future__ import annotations

import logging
import time

import pytest

from api.scheduling.cron import CronRefused, check_cron, shortest_gap
from api.scheduling.scheduler import Scheduler
from deploy.settings import Settings


@pytest.mark.parametrize(
    "expression, gap",
    [
        ("* * * * *", 60),
        ("*/5 * * * *", 300),
        ("0 3 * * 1-5", 86400),
        ("0 0,23 * * *", 3600),
        ("*/2 * * * * 30", 120),  # 6 fields: seconds last
        ("0,59 0,23 * * *", 60),  # 23:59 -> 00:00 of the next day counts
    ],
)
def test_documented_forms_and_their_shortest_gap(expression, gap):
    assert check_cron(expression, 60) == expression
    assert shortest_gap(expression) == gap


@pytest.mark.parametrize(
    "expression, says",
    [
        ("0 0 * * * * *", "not 7"),  # croniter reads the 6th as seconds "*": every second
        ("* * * * * * 2030", "not 7"),
        ("@hourly", "not 1"),
        ("* * * *", "not 4"),
        ("61 * * * *", "not a valid expression"),
        ("* * * * * *", "fires every 1 s"),
        ("* * * * * */30", "fires every 30 s"),
    ],
)
def test_other_forms_and_too_frequent_ones_are_refused(expression, says):
    with pytest.raises(CronRefused, match=says):
        check_cron(expression, 60)


def test_the_minimum_interval_is_the_setting():
    assert check_cron("* * * * * */5", 5) == "* * * * * */5"
    with pytest.raises(CronRefused, match="minimum interval is 3600 s"):
        check_cron("*/30 * * * *", 3600)


class _NoJobs:
    def get(self, job_id):
        return None

    def submit(self, *args, **kwargs):
        raise AssertionError("nothing may fire")


def test_a_stored_cron_outside_the_forms_never_fires(tmp_path, caplog):
    settings = Settings(state_dir=tmp_path, control_db_url="")
    scheduler = Scheduler(settings, _NoJobs())
    scheduler._started = time.time() - 600
    for name, cron in (("seven", "0 0 * * * * *"), ("every-second", "* * * * * *")):
        scheduler.store.create(name, "noop", {}, cron, [], True, "test")  # as stored before the check existed
    with caplog.at_level(logging.WARNING, logger="api.scheduling.scheduler"):
        assert scheduler.tick(time.time()) == []
        assert scheduler.tick(time.time() + 5) == []
    warned = [r.getMessage() for r in caplog.records if "does not fire" in r.getMessage()]
    assert len(warned) == 2 and any("not 7" in w for w in warned)  # once per schedule
