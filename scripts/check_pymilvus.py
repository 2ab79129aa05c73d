#!/usr/bin/env python3
"""Check that pymilvus' REST bulk-import helpers read the simulator's `milvus` flavour.

pymilvus (`pymilvus.bulk_writer.bulk_import`) is a client no one here wrote: `list_import_jobs`
and `get_import_progress` send what a real application sends (the database in a ``DB-Name``
header and an empty `dbName`, paging fields a self-hosted server ignores, the job id as given)
and raise `MilvusException` for any non-zero code. This runs them against an in-process
simulator in the `milvus` flavour and prints what they got, one line per check.

pymilvus and the packages its `bulk_writer` insists on are heavy, so they are no test extra:

    .venv/bin/pip install pymilvus minio azure-storage-blob pyarrow ml_dtypes
    .venv/bin/python scripts/check_pymilvus.py

Exit status 0 when every check holds, 1 when one fails, 2 when pymilvus is missing.
`tests/test_pymilvus.py` runs this when pymilvus is importable.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from exporter.simulator import Simulator, SimulatorOptions

TOKEN = "root:Milvus"
FAILURE = "failed to read file s3://bulk-import/movies/part-00000.parquet: no such file"


class Clock:
    """Real time that moves only when told, so every job is in a known state when asked."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Checks:
    def __init__(self) -> None:
        self.failed = 0

    def check(self, name: str, holds: bool, detail: object) -> None:
        print(f"{'ok  ' if holds else 'FAIL'} {name}: {detail}", flush=True)
        if not holds:
            self.failed += 1


def main() -> int:
    try:
        from pymilvus import __version__ as pymilvus_version
        from pymilvus.bulk_writer import get_import_progress, list_import_jobs
        from pymilvus.exceptions import MilvusException
    except ImportError as missing:
        print(f"pymilvus is not importable ({missing}); see this script's docstring")
        return 2

    clock = Clock()
    simulator = Simulator(
        SimulatorOptions(flavor="milvus", tokens=(TOKEN,), clock=clock, auto_refresh=False)
    )
    jobs = {
        "completed": simulator.start_import("analytics", "books", duration_seconds=60),
        "failed": simulator.start_import(
            "analytics", "movies", outcome="failed", duration_seconds=30, reason=FAILURE
        ),
        "uncommitted": simulator.start_import(
            "analytics", "books", outcome="manual_commit", duration_seconds=600
        ),
        "importing": simulator.start_import("analytics", "music", duration_seconds=3600),
    }
    clock.now += 400
    checks = Checks()
    print(f"pymilvus {pymilvus_version} against the simulator's milvus flavour")
    with simulator.serve("127.0.0.1", 0) as server:
        url = server.url

        def error_of(call: Any) -> str:
            try:
                call()
            except MilvusException as error:
                return str(error.message)
            return "no MilvusException"

        answer = list_import_jobs(url, api_key=TOKEN, db_name="analytics").json()
        records = answer["data"]["records"]
        states = {record["jobId"]: record["state"] for record in records}
        checks.check(
            "list_import_jobs(db_name='analytics') reads the database from DB-Name",
            all(job_id in states for job_id in jobs.values()),
            f"{len(records)} jobs, states {sorted(set(states.values()))}",
        )
        checks.check(
            "list_import_jobs sends pageSize/currentPage; a self-hosted server does not page",
            set(answer["data"]) == {"records"},
            f"data keys {sorted(answer['data'])}",
        )
        checks.check(
            "list records carry `reason` only when failed",
            all(("reason" in record) == (record["state"] == "Failed") for record in records),
            [(r["state"], r.get("reason", "-")[:30]) for r in records[:4]],
        )
        expected = {
            "completed": "Completed",
            "failed": "Failed",
            "uncommitted": "Uncommitted",
            "importing": "Importing",
        }
        for name, job_id in jobs.items():
            data = get_import_progress(url, job_id, api_key=TOKEN, db_name="analytics").json()[
                "data"
            ]
            summary = {
                key: data.get(key)
                for key in (
                    "state",
                    "progress",
                    "importedRows",
                    "totalRows",
                    "createTime",
                    "completeTime",
                )
            }
            files = [(detail["fileName"], detail["state"]) for detail in data["details"]]
            holds = (
                data["state"] == expected[name]
                and data["createTime"].endswith("+08:00")
                and all(file_name.startswith("[") for file_name, _ in files)
                and (data["completeTime"] != "") == (name == "completed")
            )
            if name == "failed":
                holds = holds and (data["progress"], data["importedRows"], data["totalRows"]) == (
                    0,
                    0,
                    0,
                )
                holds = holds and all(detail["reason"] == FAILURE for detail in data["details"])
            if name == "uncommitted":
                holds = holds and data["progress"] == 99
            checks.check(f"get_import_progress({name})", holds, f"{summary} files {files}")

        message = error_of(lambda: get_import_progress(url, "448761313698322011", api_key=TOKEN))
        checks.check("an unknown job raises code 2100", "code: 2100" in message, message)
        message = error_of(
            lambda: get_import_progress(url, int(jobs["completed"]), api_key=TOKEN)  # type: ignore[arg-type]
        )
        checks.check("a numeric job id raises code 1801", "code: 1801" in message, message)
        message = error_of(lambda: list_import_jobs(url, api_key=TOKEN, db_name="nope"))
        checks.check("an unknown database raises code 800", "code: 800" in message, message)
        message = error_of(lambda: list_import_jobs(url, api_key="wrong"))
        checks.check("a wrong token is refused with HTTP 401", "401" in message, message)
    print(f"{'all checks hold' if not checks.failed else f'{checks.failed} check(s) failed'}")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
