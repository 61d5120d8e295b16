"""The scheduler loop, run inside the API process: a daemon thread ticking every second.

Cron expressions have 5 fields (minute hour day month weekday) or 6, the 6th being seconds
(croniter's convention), e.g. `0 * * * * 30` = every minute at second 30; never more often than
`schedule_min_interval_s` (api/scheduling/cron.py, checked on save and again before firing).
Times are the server's local time. A missed firing (API down) is not replayed; if several were missed within one tick, only the
latest fires. Every API process runs this loop; the unique (schedule, fire_key) row in
`schedule_runs` decides which one actually starts the run, so nothing fires twice.
Dependencies: when a run succeeds, schedules listing it in `depends_on` fire once every one of
their parents' latest run succeeded.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from croniter import croniter

from api.jobs import JobManager
from api.jobs.store import epoch
from api.scheduling.actions import Scope, bind
from api.scheduling.cron import CronRefused, check_cron
from api.scheduling.store import ScheduleStore
from deploy.logs import in_tenant
from deploy.settings import Settings

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, settings: Settings, jobs: JobManager, tick_seconds: float = 1.0):
        self.settings = settings
        self.jobs = jobs
        self.store = ScheduleStore(settings.resolved_control_db_url, settings.state_dir)
        self.tick_seconds = tick_seconds
        self._refused: set[str] = set()  # schedules whose stored cron is not accepted (logged once)
        self._cursor: dict[str, float] = {}  # schedule id -> time up to which firings were considered
        self._started = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            try:
                self.tick()
            except Exception:  # a bad schedule or a busy DB must not kill the loop
                log.exception("scheduler tick failed")

    def tick(self, now: float | None = None) -> list[dict]:
        """Fire every cron schedule due since the last tick; returns the runs this process started."""
        now = now or time.time()
        self._reconcile()
        fired = []
        for s in self.store.list():
            # Never before the schedule existed, nor before this process started; the cursor moves
            # for disabled schedules too, so re-enabling one does not replay what it skipped.
            since = self._cursor.get(s["id"]) or max(self._started, epoch(s["created_at"]))
            self._cursor[s["id"]] = now
            if not s["enabled"] or not s["cron"] or not self._cron_allowed(s):
                continue
            due = self.due(s["cron"], since, now)
            if due is not None:
                # The key is in UTC so that API processes in different time zones agree on it.
                key = f"cron:{due.astimezone(UTC).isoformat()}"
                run = self.fire(s, "cron", key, operator="scheduler")
                if run:
                    fired.append(run)
        return fired

    def _cron_allowed(self, schedule: dict) -> bool:
        """A cron stored before the forms were checked (a 7-field one read as every second) or
        firing more often than the minimum interval does not fire; said once in the log."""
        try:
            check_cron(schedule["cron"], self.settings.schedule_min_interval_s)
            return True
        except CronRefused as exc:
            if schedule["id"] not in self._refused:
                self._refused.add(schedule["id"])
                log.warning("schedule %s (%s) does not fire: %s", schedule["name"], schedule["id"], exc)
            return False

    def _reconcile(self) -> None:
        """Close runs whose job ended without telling us (its API process died: job `interrupted`)."""
        for run in self.store.runs(status="running", limit=100):
            job = self.jobs.get(run["job_id"]) if run["job_id"] else None
            if job and job["state"] not in ("queued", "running"):
                self.store.finish_run(run["id"], job["state"], job.get("result"), job.get("error"))

    @staticmethod
    def due(cron: str, since: float, now: float) -> datetime | None:
        """The latest firing time in (since, now], if any."""
        it = croniter(cron, datetime.fromtimestamp(since).astimezone())
        latest = None
        while True:
            nxt = it.get_next(datetime)
            if nxt.timestamp() > now:
                return latest
            latest = nxt

    def fire(self, schedule: dict, trigger: str, fire_key: str, operator: str) -> dict | None:
        """Start one run of `schedule` unless (schedule, fire_key) already fired; returns the run."""
        run = self.store.insert_run(schedule["id"], fire_key, trigger, operator)
        if run is None:
            return None
        problem = self._outside_tenant(schedule)
        if problem:  # e.g. the pipeline moved to another tenant since the schedule was saved
            self.store.finish_run(run["id"], "failed", error=f"refused: {problem}")
            log.warning("schedule %s refused: %s", schedule["name"], problem, extra={"tenant": schedule.get("tenant")})
            return self.store.get_run(run["id"])
        job_fn = bind(schedule["action"], schedule["params"], self.settings, self.scope_of(schedule))
        job_fn = in_tenant(schedule.get("tenant"), job_fn)  # the run's log lines: the schedule's tenant
        log.info(
            "schedule %s fires (%s, %s): run %s",
            schedule["name"],
            trigger,
            fire_key,
            run["id"],
            extra={"tenant": schedule.get("tenant")},
        )
        job_id = self.jobs.submit(
            f"schedule:{schedule['action']}",
            operator,
            job_fn,
            on_done=lambda job, rid=run["id"]: self._finished(schedule["id"], rid, job),
        )
        self.store.set_job(run["id"], job_id)
        return self.store.get_run(run["id"])

    def scope_of(self, schedule: dict) -> Scope:
        """Whose files and hosts the schedule's action may reach: the schedule's tenant when it has
        one, else its creator's (the operator key: the whole data root; unknown: no paths at all)."""
        if "tenant" in schedule:
            return Scope(schedule["tenant"], schedule["tenant"] is None and schedule.get("created_by") == "operator")
        creator = schedule.get("created_by")
        if creator == "operator":
            return Scope(None, True)
        try:
            from api.identity.store import store_for

            user = store_for(self.settings.resolved_control_db_url).user(creator) if creator else None
        except Exception:  # identity tables unreachable: the narrowest scope
            user = None
        if user is None:
            return Scope(None, False)
        return Scope(user["tenant"], bool(user["superuser"]))

    def _finished(self, schedule_id: str, run_id: str, job: dict) -> None:
        self.store.finish_run(run_id, job["state"], job.get("result"), job.get("error"))
        if job["state"] == "succeeded":
            self._fire_dependents(schedule_id, run_id)

    def _outside_tenant(self, schedule: dict) -> str | None:
        """Why the schedule's params point at another tenant's pipeline, connector or consumer group
        (runs act in the schedule's tenant), or None."""
        from api.scoping import target_problem

        return target_problem(self.settings, schedule.get("tenant"), schedule["params"])

    def _fire_dependents(self, parent_id: str, parent_run_id: str) -> None:
        parent = self.store.get(parent_id)
        for child in self.store.list():
            if not child["enabled"] or parent_id not in child["depends_on"]:
                continue
            if parent is not None and child.get("tenant") != parent.get("tenant"):
                continue  # dependencies never cross tenants
            if all(self.store.latest_status(p) == "succeeded" for p in child["depends_on"]):
                self.fire(child, "dependency", f"after:{parent_run_id}", operator="scheduler")
