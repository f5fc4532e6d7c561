"""DAG integrity: every DAG in dags/ imports cleanly and follows the house rules,
and healthcare_processing has the shape the pipeline depends on."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from conftest import DAGS

from airflow.dag_processing.dagbag import BundleDagBag


def _load_dagbag() -> BundleDagBag:
    # What the DAG processor does: the bundle (dags/) goes on sys.path.
    return BundleDagBag(dag_folder=str(DAGS), bundle_path=DAGS, bundle_name="dags-folder")


DAGBAG = _load_dagbag()
DAG_IDS = sorted(DAGBAG.dags)


@pytest.fixture(scope="module")
def hcp_dag():
    return DAGBAG.dags["healthcare_processing"]


def test_no_import_errors():
    assert DAGBAG.import_errors == {}


def test_no_warnings_while_parsing():
    """Deprecated Airflow 2 idioms (schedule_interval, execution_date...) warn here first."""
    assert DAGBAG.captured_warnings == {}


def test_expected_dags_present():
    assert DAG_IDS == ["healthcare_processing"]


def test_only_dag_files_are_parsed():
    """Helpers under dags/hcp_airflow are skipped (.airflowignore), not parsed as DAG files."""
    parsed = {stat.file for stat in DAGBAG.dagbag_stats}
    assert parsed == {"healthcare_processing.py"}


def test_dag_file_parses_fast():
    start = time.perf_counter()
    _load_dagbag()
    assert time.perf_counter() - start < 2.0, "DAG file too slow to parse: keep work out of top-level code"


@pytest.mark.parametrize("dag_id", DAG_IDS)
class TestHouseRules:
    def test_tags_and_docs(self, dag_id):
        dag = DAGBAG.dags[dag_id]
        assert dag.tags, "every DAG needs tags"
        assert dag.doc_md and dag.doc_md.strip(), "module docstring as doc_md"

    def test_no_catchup_and_one_run_at_a_time(self, dag_id):
        dag = DAGBAG.dags[dag_id]
        assert dag.catchup is False
        assert dag.max_active_runs == 1

    def test_every_task_retries_times_out_and_reports(self, dag_id):
        for task in DAGBAG.dags[dag_id].tasks:
            assert task.retries >= 2, task.task_id
            assert task.retry_delay >= timedelta(seconds=30), task.task_id
            assert task.execution_timeout is not None, task.task_id
            assert task.on_failure_callback, task.task_id

    def test_serialises(self, dag_id):
        """The scheduler stores DAGs serialised; arguments must survive the round trip."""
        from airflow.serialization.serialized_objects import DagSerialization

        data = DagSerialization.to_dict(DAGBAG.dags[dag_id])
        again = DagSerialization.from_dict(data)
        assert sorted(again.task_dict) == sorted(DAGBAG.dags[dag_id].task_dict)


def test_tasks_and_dependencies(hcp_dag):
    upstream = {t.task_id: sorted(t.upstream_task_ids) for t in hcp_dag.tasks}
    assert upstream == {
        "partition": [],
        "hospital.validate": ["partition"],
        "hospital.transform": ["hospital.validate"],
        "statistics": ["hospital.transform"],
        "quality_report": ["statistics"],
    }


def test_per_hospital_tasks_are_mapped_and_named(hcp_dag):
    from airflow.sdk.definitions.taskgroup import MappedTaskGroup

    group = hcp_dag.task_group_dict["hospital"]
    assert isinstance(group, MappedTaskGroup)
    for task_id in ("hospital.validate", "hospital.transform"):
        task = hcp_dag.get_task(task_id)
        assert "hospital_id" in task.map_index_template
        assert task.max_active_tis_per_dagrun >= 1


def test_schedule_is_monthly_data_interval(hcp_dag):
    from airflow.sdk import CronDataIntervalTimetable

    assert isinstance(hcp_dag.timetable, CronDataIntervalTimetable)
    assert hcp_dag.timetable.expression == "0 0 1 * *"  # @monthly
    assert str(getattr(hcp_dag.timetable.timezone, "name", hcp_dag.timetable.timezone)) == "UTC"


def test_assets_for_curated_data_and_statistics(hcp_dag):
    outlets = {t.task_id: [a.name for a in t.outlets] for t in hcp_dag.tasks if t.outlets}
    assert outlets == {"hospital.transform": ["hcp_curated"], "statistics": ["hcp_monthly_statistics"]}


def test_params(hcp_dag):
    params = hcp_dag.params
    assert params["month"] is None
    assert params["max_reject_rate"] is None
    params.validate()  # the defaults are valid


def test_timeouts_fit_the_work(hcp_dag):
    assert hcp_dag.get_task("hospital.transform").execution_timeout >= hcp_dag.get_task(
        "hospital.validate"
    ).execution_timeout
