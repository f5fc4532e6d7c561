"""
### Healthcare batch processing (monthly)

Runs the TypeScript engine (`HCP_CLI`, default `node dist/src/cli.js`) over one
month of hospital vitals and lab results:

```
partition ──> hospital.validate ──> hospital.transform ──> statistics ──> quality_report
 split both     one mapped instance per hospital,           merge the       report, gates,
 files by       named by hospital_id (__invalid__ =          per-hospital    _manifest.json,
 hospital_id    rows with a bad ID, quarantined)             sketches        _SUCCESS
```

* **Input**: with `HCP_LANDING_DIR`, `{HCP_LANDING_DIR}/{YYYY-MM}/vitals.csv` and
  `lab_results.csv` for the month of the run's data interval (or the `month` param),
  with `--period YYYY-MM`. Without it, the bundled `data/*_2024.csv` as one batch.
* **Output**: `{HCP_OUTPUT_DIR}` (default `output/airflow/`), every month side by side
  in one output (`--period`); split files in `{HCP_OUTPUT_DIR}/_landing/{YYYY-MM|sample}/`. Stable paths: a rerun, or
  clearing one hospital, replaces exactly those partitions.
* **Empty input**: a file with no rows (valid, SPEC section 1) maps no hospital;
  `partition` processes it itself, so the report still carries its warning, and
  `statistics` runs even when every mapped task was skipped (`none_failed`).
* **Failures**: engine exit 2 (unusable input) and 3 (quality gate) fail at once;
  exit 1, an interrupt (130, 143), signals and a partition lock held by another
  run (exit 2, `HCP_ERR_LOCKED`) are retried, except a lock the summary calls
  `permanent` (a lock or takeover file with no pid, takeovers left too deep:
  a person has to look), which fails at once.
* **Key**: Variable or Connection `hcp_pseudonym_key`, else env `HCP_PSEUDONYM_KEY`;
  reaches the engine through its environment only; `--require-key`.

Details: docs/AIRFLOW.md.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, Param, dag, get_current_context, task, task_group

from hcp_airflow import steps
from hcp_airflow.config import load_settings

# Environment only, no I/O: this file is parsed every few seconds.
SETTINGS = load_settings()

CURATED = Asset(name="hcp_curated", uri="x-hcp://healthcare/curated", group="healthcare")
STATISTICS = Asset(name="hcp_monthly_statistics", uri="x-hcp://healthcare/monthly_statistics", group="healthcare")

# Mapped per-hospital tasks: at most max_active_hospitals at once per run, each
# with --workers = its share of the cores (see Settings.workers_per_task).
PER_HOSPITAL = {
    "max_active_tis_per_dagrun": SETTINGS.max_active_hospitals,
    "map_index_template": "{{ task.op_kwargs['hospital']['hospital_id'] }}",
    **({"pool": SETTINGS.pool} if SETTINGS.pool else {}),
}


@dag(
    dag_id="healthcare_processing",
    schedule=CronDataIntervalTimetable("@monthly", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["healthcare", "batch", "monthly"],
    default_args={
        "owner": "data-engineering",
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=20),
        "execution_timeout": timedelta(hours=1),
        "on_failure_callback": steps.on_failure,
    },
    params={
        "month": Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
            description="YYYY-MM to process instead of the data interval's month",
        ),
        "max_reject_rate": Param(
            None,
            type=["null", "number"],
            minimum=0,
            maximum=1,
            description="Quality gate: max share of rejected rows per hospital and per dataset (empty: engine default 0.05)",
        ),
    },
)
def healthcare_processing():
    @task(execution_timeout=timedelta(minutes=30))
    def partition() -> list[dict]:
        return steps.partition(SETTINGS, steps.plan_for(SETTINGS, get_current_context()))

    @task_group(group_id="hospital")
    def per_hospital(hospital: dict):
        @task(execution_timeout=timedelta(minutes=15), **PER_HOSPITAL)
        def validate(hospital: dict) -> dict:
            return steps.validate(SETTINGS, hospital)

        @task(execution_timeout=timedelta(hours=2), outlets=[CURATED], **PER_HOSPITAL)
        def transform(hospital: dict) -> dict:
            ctx = get_current_context()
            plan = steps.plan_for(SETTINGS, ctx)
            result = steps.transform(SETTINGS, plan, hospital)
            ctx["outlet_events"][CURATED].extra = {"run": plan.key, "hospital_id": hospital["hospital_id"]}
            return result

        # Keyword arguments, so map_index_template can read op_kwargs['hospital'].
        transform(hospital=validate(hospital=hospital))

    # none_failed: a month with no rows maps no hospital (the mapped tasks are
    # skipped), and its statistics and report must still be written.
    @task(execution_timeout=timedelta(minutes=30), outlets=[STATISTICS], trigger_rule="none_failed")
    def statistics() -> dict:
        ctx = get_current_context()
        plan = steps.plan_for(SETTINGS, ctx)
        steps.statistics(SETTINGS, plan)
        ctx["outlet_events"][STATISTICS].extra = {"run": plan.key, "stats_dir": str(plan.out / "stats")}
        return {"run": plan.key, "stats_dir": str(plan.out / "stats")}

    @task(execution_timeout=timedelta(minutes=30))
    def quality_report() -> dict:
        ctx = get_current_context()
        plan = steps.plan_for(SETTINGS, ctx)
        steps.quality_report(SETTINGS, plan, ctx["params"].get("max_reject_rate"))
        return {"run": plan.key, "report": str(plan.out / "quality" / "report.json")}

    per_hospital.expand(hospital=partition()) >> statistics() >> quality_report()


healthcare_processing()
