"""Ansible callback for the fleet tests: every task result of every host, as JSON, into a file.

Why: the test asserts per host and per task (changed on the try, the diff, the failure message)
while the default callback still prints what a user sees; ansible-core has no JSON callback of
its own (ansible.posix has one). Enabled with ANSIBLE_CALLBACKS_ENABLED=fleet_record; the file
is $GREBOND_FLEET_RECORD.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: fleet_record
    type: aggregate
    short_description: write every task result to $GREBOND_FLEET_RECORD as JSON (grebond's tests)
    description: [The grebond fleet tests read it.]
    requirements: [GREBOND_FLEET_RECORD set]
"""


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "fleet_record"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self.results: list[dict[str, Any]] = []
        self.diffs: dict[tuple[str, str], Any] = {}
        self.task_started: dict[str, float] = {}   # task uuid -> when it started (wall clock)
        self.play_started = time.time()

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        # by uuid: a role's task is named with its role prefix here and without it in its results
        self.task_started.setdefault(task._uuid, time.time())

    def _add(self, result: Any, status: str) -> None:
        started = self.task_started.get(result._task._uuid, self.play_started)
        entry = {"task": result.task_name, "host": result._host.get_name(), "status": status,
                 "result": self._clean(result._result),
                 # where a play's time goes under TCG: from the task's start to this host's result
                 "seconds": round(time.time() - started, 1), "at": round(started - self.play_started, 1)}
        diff = self.diffs.pop((result.task_name, result._host.get_name()), None)
        if diff is not None and "diff" not in entry["result"]:
            entry["result"]["diff"] = diff
        self.results.append(entry)

    def v2_on_file_diff(self, result: Any) -> None:
        """The diff, kept before the stdout callback prints it and drops it from the result."""
        self.diffs[(result.task_name, result._host.get_name())] = self._clean(result._result.get("diff"))

    @staticmethod
    def _clean(value: Any) -> Any:
        return json.loads(json.dumps(value, default=str))

    def v2_runner_on_ok(self, result: Any) -> None:
        self._add(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._add(result, "ignored" if ignore_errors else "failed")

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._add(result, "skipped")

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._add(result, "unreachable")

    def v2_playbook_on_stats(self, stats: Any) -> None:
        hosts = sorted(stats.processed)
        summary = {h: stats.summarize(h) for h in hosts}
        with open(os.environ["GREBOND_FLEET_RECORD"], "w", encoding="utf-8") as out:
            json.dump({"results": self.results, "stats": summary}, out, indent=1)
