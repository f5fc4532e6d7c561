"""The body of each DAG task, as plain functions of (settings, plan, ...).

The DAG file only pulls values out of the Airflow context and calls these,
so the steps are testable without a scheduler. Every path passed to the
engine is derived from the run's month (see ``config.plan_run``): stable
paths are what make reruns replace, not duplicate, a partition's outputs.
"""

from __future__ import annotations

import logging
import os
import shutil

from airflow.sdk.exceptions import AirflowFailException

from hcp_airflow.cli import engine_env, run_engine
from hcp_airflow.config import RunPlan, Settings, plan_run, run_month
from hcp_airflow.partitions import hospitals_from_partitions
from hcp_airflow.pseudonym_key import mask, resolve_key

log = logging.getLogger(__name__)


def plan_for(settings: Settings, context) -> RunPlan:
    """This run's paths, from its ``month`` param or its data interval.

    A bad month, or a landing dir with no month to read (a manual run in
    Airflow 3 may have no data interval), fails the task without retries.
    """
    try:
        month = run_month(context["params"].get("month"), context.get("data_interval_start"), settings.landing_dir)
    except ValueError as exc:
        raise AirflowFailException(str(exc)) from None
    return plan_run(settings, month)


def partition(settings: Settings, plan: RunPlan) -> list[dict]:
    """Split each combined input by hospital; return the per-hospital list.

    A file with no rows has no hospital to map over: it is processed here
    instead (so the report still records it, with its zero-rows warning).
    """
    for dataset, path in plan.inputs.items():
        if not path.is_file():
            raise AirflowFailException(f"input file for {dataset} is missing: {path}")
    env = engine_env(os.environ)
    summaries = {}
    for dataset, path in plan.inputs.items():
        target = plan.landing / dataset
        # Start clean: a hospital that vanished from a corrected file must not
        # linger as a stale split file (or line map) from the previous attempt.
        for stale in (target, plan.landing / "_lines" / dataset):
            if stale.exists():
                shutil.rmtree(stale)
        plan.landing.mkdir(parents=True, exist_ok=True)
        # Pushes its stage time, bytes read and records split into a Pushgateway group of its own.
        summaries[dataset] = run_engine(
            settings.cli,
            "partition",
            {"dataset": dataset, "input": path, "landing": plan.landing, "pushgateway": settings.pushgateway},
            env=env,
            cwd=settings.repo_dir,
        )
    hospitals = hospitals_from_partitions(summaries, plan.landing)
    log.info(
        "run %s: %d hospital partition(s): %s",
        plan.key,
        len(hospitals),
        ", ".join(h["hospital_id"] for h in hospitals) or "none",
    )
    # An empty or header-only file is valid input with zero rows (SPEC section 1),
    # but it splits into no hospital, so no mapped task would ever `process` it
    # and its warning would never reach the report: process the file itself.
    empty = [d for d in plan.inputs if not any(d in h["files"] for h in hospitals)]
    if empty:
        env = _keyed_env()
        for dataset in empty:
            log.warning("run %s: %s has no rows; recording it for the report", plan.key, plan.inputs[dataset])
            _process(settings, plan, dataset, plan.inputs[dataset], env)
    return hospitals


def validate(settings: Settings, hospital: dict) -> dict:
    """File-level preflight of one hospital's files; passes the entry on."""
    env = engine_env(os.environ)
    for dataset, path in sorted(hospital["files"].items()):
        run_engine(settings.cli, "validate", {"dataset": dataset, "input": path}, env=env, cwd=settings.repo_dir)
    return hospital


def transform(settings: Settings, plan: RunPlan, hospital: dict) -> dict:
    """``process`` each dataset file of one hospital into the run's output."""
    env = _keyed_env()
    result = {"hospital_id": hospital["hospital_id"], "rows": {}}
    for dataset, path in sorted(hospital["files"].items()):
        summary = _process(settings, plan, dataset, path, env)
        _check_split_ledger(hospital, dataset, path, summary)
        result["rows"][dataset] = summary.get("rows")
    return result


def _check_split_ledger(hospital: dict, dataset: str, path, summary: dict) -> None:
    """The split file must read as ``partition`` wrote it: as many records, all of this hospital.

    The engine checks its ledger per file it reads; only the DAG knows what the
    split file held when ``partition`` wrote it. A split file changed since
    (truncated, overwritten) reads as fewer records, and rows it no longer
    parses can land in another hospital's partition (``__invalid__``), replacing
    that task's rows for the month. Either way the month's file lost rows:
    fail (a retry reads the same file) instead of letting the run reach _SUCCESS.
    """
    expected = (hospital.get("rows") or {}).get(dataset)
    read = (summary.get("rows") or {}).get("read")
    foreign = sorted(set(summary.get("hospitals") or []) - {hospital["hospital_id"]})
    if (expected is None or read is None or int(read) == int(expected)) and not foreign:
        return
    raise AirflowFailException(
        f"split file {path} no longer holds what partition wrote (changed since?): partition wrote "
        f"{expected} record(s) of hospital {hospital['hospital_id']}, process read {read}"
        + (f", and filed rows under {', '.join(foreign)}" if foreign else "")
        + "; the month's outputs may now lack rows: clear the whole run (partition re-splits the month's file)"
    )


def _keyed_env() -> dict[str, str]:
    """The engine's environment with the pseudonymisation key, masked in the task logs."""
    key, source = resolve_key()
    mask(key)
    log.info("pseudonymisation key source: %s", source)  # where from, never the value
    return engine_env(os.environ, key)


def _process(settings: Settings, plan: RunPlan, dataset: str, path, env: dict[str, str]) -> dict:
    """One engine ``process`` of one file into the run's output.

    ``_SUCCESS`` goes first, as the engine's ``run`` drops it before its first
    commit: it vouches for the output an earlier report saw, and this run is
    about to change it. ``quality_report`` writes it again once the run is
    complete; a run that fails before then must not leave the old one behind.
    """
    success = plan.out / "_SUCCESS"
    if success.exists():
        log.info("removing %s: this run changes the output; quality_report writes it again", success)
        success.unlink(missing_ok=True)
    options = {
        "dataset": dataset,
        "input": path,
        "out": plan.out,
        "period": plan.period,
        "workers": settings.workers_per_task(),
        "require_key": True,
        "pushgateway": settings.pushgateway,
    }
    return run_engine(settings.cli, "process", options, env=env, cwd=settings.repo_dir)


def statistics(settings: Settings, plan: RunPlan) -> dict:
    """Merge every hospital's sketches into the monthly statistics (no rescan)."""
    # Pushes the stage's time (hcp_stage_duration_seconds{stage="stats"}), as every other command pushes its own.
    options = {"out": plan.out, "pushgateway": settings.pushgateway}
    return run_engine(settings.cli, "stats", options, env=engine_env(os.environ), cwd=settings.repo_dir)


def quality_report(settings: Settings, plan: RunPlan, max_reject_rate: float | None) -> dict:
    """Write the quality report; a failed gate (exit 3) fails the run, unretried."""
    # The report pushes gate results and last-success times, so the alerts see them, and its stage time.
    options = {"out": plan.out, "max_reject_rate": max_reject_rate, "pushgateway": settings.pushgateway}
    return run_engine(settings.cli, "report", options, env=engine_env(os.environ), cwd=settings.repo_dir)


def on_failure(context) -> None:
    """Task failure callback: one greppable line naming the task and the cause."""
    ti = context.get("ti") or context.get("task_instance")
    where = f"{ti.task_id}[{ti.map_index}]" if ti is not None and getattr(ti, "map_index", -1) >= 0 else (
        getattr(ti, "task_id", "?")
    )
    log.error(
        "HCP task failed: dag=%s run=%s task=%s try=%s cause=%s",
        getattr(context.get("dag"), "dag_id", "?"),
        context.get("run_id"),
        where,
        getattr(ti, "try_number", "?"),
        context.get("exception"),
    )
