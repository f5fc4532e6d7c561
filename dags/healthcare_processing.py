"""
### Healthcare batch processing (monthly)

Runs the TypeScript engine (`HCP_CLI`, default `node dist/src/cli.js`) over one
month of hospital vitals and lab results:

```
partition ──> hospital[H].validate ──> hospital[H].transform ──> statistics ──> quality_report
  (split by      (one mapped instance per hospital,               (merge        (report + gates,
   hospital)      named by hospital_id)                            sketches)     _SUCCESS)
```

* **Input**: with `HCP_LANDING_DIR` set, `{HCP_LANDING_DIR}/{YYYY-MM}/vitals.csv` and
  `lab_results.csv` for the month of the run's data interval (or the `month` param),
  filtered with `--period`. Without it, the bundled `data/*_2024.csv` as one batch.
* **Output**: `{HCP_OUTPUT_DIR}/{YYYY-MM or sample}/` (curated, quarantine, sketches,
  stats, quality); split files under `{HCP_OUTPUT_DIR}/_landing/{YYYY-MM or sample}/`.
* **Failures**: engine exit 2 (unusable input) and 3 (quality gate) fail at once;
  exit 1 and signals are retried.
* **Key**: Variable or Connection `hcp_pseudonym_key`, else env `HCP_PSEUDONYM_KEY`;
  passed through the environment only, with `--require-key`.

See docs/AIRFLOW.md.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, Param, dag, get_current_context, task, task_group

from hcp_airflow import steps
from hcp_airflow.config import load_settings, plan_run, run_month

SETTINGS = load_settings()

CURATED = Asset(name="hcp_curated", uri="x-hcp://healthcare/curated", group="healthcare")
STATISTICS = Asset(name="hcp_monthly_statistics", uri="x-hcp://healthcare/monthly_statistics", group="healthcare")

PER_HOSPITAL = {
    "max_active_tis_per_dagrun": SETTINGS.max_active_hospitals,
    "map_index_template": "{{ task.op_kwargs['hospital']['hospital_id'] }}",
    **({"pool": SETTINGS.pool} if SETTINGS.pool else {}),
}


def _plan():
    """This run's paths, from its month param or data interval."""
    ctx = get_current_context()
    month = run_month(ctx["params"].get("month"), ctx.get("data_interval_start"), SETTINGS.landing_dir)
    return plan_run(SETTINGS, month)


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
        "month": Param(None, type=["null", "string"], pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
                       description="YYYY-MM to process instead of the data interval's month"),
        "max_reject_rate": Param(None, type=["null", "number"], minimum=0, maximum=1,
                                 description="quality gate; empty for the engine default (0.05)"),
    },
)
def healthcare_processing():
    @task(execution_timeout=timedelta(minutes=30))
    def partition() -> list[dict]:
        return steps.partition(SETTINGS, _plan())

    @task_group(group_id="hospital")
    def per_hospital(hospital: dict):
        @task(execution_timeout=timedelta(minutes=15), **PER_HOSPITAL)
        def validate(hospital: dict) -> dict:
            return steps.validate(SETTINGS, hospital)

        @task(execution_timeout=timedelta(hours=2), outlets=[CURATED], **PER_HOSPITAL)
        def transform(hospital: dict) -> dict:
            plan = _plan()
            result = steps.transform(SETTINGS, plan, hospital)
            get_current_context()["outlet_events"][CURATED].extra = {
                "run": plan.key, "hospital_id": hospital["hospital_id"], "out": str(plan.out)}
            return result

        transform(validate(hospital))

    @task(execution_timeout=timedelta(minutes=30), outlets=[STATISTICS])
    def statistics() -> dict:
        plan = _plan()
        steps.statistics(SETTINGS, plan)
        get_current_context()["outlet_events"][STATISTICS].extra = {
            "run": plan.key, "stats_dir": str(plan.out / "stats")}
        return {"run": plan.key, "stats_dir": str(plan.out / "stats")}

    @task(execution_timeout=timedelta(minutes=30))
    def quality_report() -> dict:
        ctx = get_current_context()
        steps.quality_report(SETTINGS, _plan(), ctx["params"].get("max_reject_rate"))
        return {"report": str(_plan().out / "quality" / "report.json")}

    per_hospital.expand(hospital=partition()) >> statistics() >> quality_report()


healthcare_processing()
