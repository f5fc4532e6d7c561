"""Unit tests of dags/hcp_airflow: no scheduler, the fake engine where a process is needed."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import DAGS, REPO

from airflow.sdk.exceptions import AirflowException, AirflowFailException
from hcp_airflow import cli, partitions, pseudonym_key, steps
from hcp_airflow.config import ENGINE_MAX_WORKERS, Settings, load_settings, plan_run, run_month

KEY = "k3y-that-must-never-leak-5f2a"


# --- config -----------------------------------------------------------------


def test_settings_defaults():
    s = load_settings({}, repo_dir=REPO)
    assert s.cli == ("node", "--max-semi-space-size=2", str(REPO / "dist" / "src" / "cli.js"))
    assert s.output_dir == REPO / "output" / "airflow"
    assert s.landing_dir is None
    assert s.pushgateway is None
    assert s.max_active_hospitals == 2
    assert s.workers is None
    assert s.pool is None


def test_settings_from_env(tmp_path):
    s = load_settings(
        {
            "HCP_CLI": "npx --yes 'healthcare pipeline'",
            "HCP_OUTPUT_DIR": "out/af",  # relative: to the repo, not the cwd
            "HCP_LANDING_DIR": str(tmp_path),
            "HCP_PUSHGATEWAY": " http://pgw:9091 ",
            "HCP_MAX_ACTIVE_HOSPITALS": "4",
            "HCP_WORKERS": "3",
            "HCP_POOL": "hcp",
        },
        repo_dir=REPO,
    )
    assert s.cli == ("npx", "--yes", "healthcare pipeline")
    assert s.output_dir == REPO / "out" / "af"
    assert s.landing_dir == tmp_path
    assert s.pushgateway == "http://pgw:9091"
    assert (s.max_active_hospitals, s.workers, s.pool) == (4, 3, "hcp")


@pytest.mark.parametrize("name", ["HCP_MAX_ACTIVE_HOSPITALS", "HCP_WORKERS"])
@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_settings_reject_bad_integers_naming_the_variable(name, value):
    with pytest.raises(ValueError, match=name):
        load_settings({name: value}, repo_dir=REPO)


@pytest.mark.parametrize("value, ok", [("64", True), ("65", False), ("100000", False)])
def test_settings_hcp_workers_at_most_the_engines_cap(value, ok):
    """Above the engine's cap every hospital's process would exit 2: refused when the DAG loads instead."""
    if ok:
        assert load_settings({"HCP_WORKERS": value}, repo_dir=REPO).workers == int(value)
    else:
        with pytest.raises(ValueError, match="HCP_WORKERS must be at most 64"):
            load_settings({"HCP_WORKERS": value}, repo_dir=REPO)


# The table the engine's check is tested on too (test/url.test.ts): the DAG's check used to let through URLs the engine
# refuses (`HTTP://gw:9091`, `http://gw host:9091`), and then every task failed with exit 2, retries and all.
PUSHGATEWAY_URLS = json.loads((REPO / "test" / "fixtures" / "pushgateway-urls.json").read_text(encoding="utf-8"))["urls"]
PUSHGATEWAY_PROBLEMS = {
    "http": "must be an http\\(s\\) URL$",
    "credentials": "must not hold credentials",
    "query": "must not have a query or a fragment",
}


@pytest.mark.parametrize("value, verdict", PUSHGATEWAY_URLS)
def test_settings_take_a_pushgateway_url_as_the_engine_does(value, verdict):
    """Accepted as the engine accepts it; else refused when the DAG loads, for the engine's reason, the value not shown."""
    if verdict is None:
        assert load_settings({"HCP_PUSHGATEWAY": value}, repo_dir=REPO).pushgateway == value
        return
    with pytest.raises(ValueError, match=f"HCP_PUSHGATEWAY {PUSHGATEWAY_PROBLEMS[verdict]}") as e:
        load_settings({"HCP_PUSHGATEWAY": value}, repo_dir=REPO)
    assert "s3" not in str(e.value) and "cret" not in str(e.value)


def test_engine_max_workers_is_the_engines():
    """The DAG's copy of the cap is read from src/config.ts, so the two cannot drift apart."""
    assert re.search(r"MAX_WORKERS = (\d+);", (REPO / "src" / "config.ts").read_text()).group(1) == str(ENGINE_MAX_WORKERS)


@pytest.mark.parametrize(
    "max_active, workers, cpus, expected",
    [
        (2, None, 2, 1),
        (2, None, 8, 4),
        (4, None, 2, 1),  # never below one
        (1, None, 16, 16),
        (2, 3, 64, 3),  # HCP_WORKERS wins
        (2, None, 512, 64),  # a share past the engine's cap is the cap
        (1, None, 64, 64),
    ],
)
def test_workers_per_task_is_a_share_of_the_machine(max_active, workers, cpus, expected):
    s = load_settings({}, repo_dir=REPO)
    s = Settings(**{**s.__dict__, "max_active_hospitals": max_active, "workers": workers})
    assert s.workers_per_task(cpu_count=cpus) == expected


MARCH = datetime(2024, 3, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "requested, interval_start, landing, expected",
    [
        (None, MARCH, None, None),  # no landing dir: the whole sample
        (None, None, None, None),
        (None, MARCH, Path("/landing"), "2024-03"),  # the data interval's month
        ("2023-12", MARCH, Path("/landing"), "2023-12"),  # the param wins
        ("2023-12", MARCH, None, "2023-12"),  # a month of the sample
    ],
)
def test_run_month(requested, interval_start, landing, expected):
    assert run_month(requested, interval_start, landing) == expected


@pytest.mark.parametrize("bad", ["2024-13", "2024-3", "24-03", "2024-03-01", "../x"])
def test_run_month_rejects_bad_months(bad):
    with pytest.raises(ValueError, match="YYYY-MM"):
        run_month(bad, MARCH, None)


def test_run_month_needs_an_interval_with_a_landing_dir():
    with pytest.raises(ValueError, match="month"):
        run_month(None, None, Path("/landing"))


def test_plan_for_the_sample(tmp_path):
    s = load_settings({"HCP_OUTPUT_DIR": str(tmp_path)}, repo_dir=REPO)
    plan = plan_run(s, None)
    assert plan.key == "sample" and plan.period is None
    assert plan.inputs == {"vitals": REPO / "data/vitals_2024.csv", "labs": REPO / "data/lab_results_2024.csv"}
    assert plan.out == tmp_path
    assert plan.landing == tmp_path / "_landing" / "sample"


def test_plan_for_a_landing_month_is_stable(tmp_path):
    s = load_settings({"HCP_OUTPUT_DIR": str(tmp_path / "o"), "HCP_LANDING_DIR": str(tmp_path / "l")}, repo_dir=REPO)
    plan = plan_run(s, "2024-03")
    assert plan.inputs == {"vitals": tmp_path / "l/2024-03/vitals.csv", "labs": tmp_path / "l/2024-03/lab_results.csv"}
    assert (plan.key, plan.period, plan.out) == ("2024-03", "2024-03", tmp_path / "o")
    assert plan_run(s, "2024-03") == plan  # a rerun writes to the same place
    assert json.loads(json.dumps(plan.to_dict()))["out"] == str(tmp_path / "o")


# --- cli: commands, summaries, exit codes -------------------------------------


@pytest.mark.parametrize(
    "options, expected",
    [
        ({}, []),
        ({"dataset": "vitals", "input": Path("/a b.csv")}, ["--dataset", "vitals", "--input", "/a b.csv"]),
        ({"require_key": True, "period": None, "progress": False}, ["--require-key"]),
        ({"max_reject_rate": 0.1, "workers": 2}, ["--max-reject-rate", "0.1", "--workers", "2"]),
    ],
)
def test_build_command(options, expected):
    assert cli.build_command(("node", "cli.js"), "process", options) == ["node", "cli.js", "process", *expected]


@pytest.mark.parametrize(
    "stdout, expected",
    [
        ('noise\n{"command":"x","status":"ok"}\n', {"command": "x", "status": "ok"}),
        ('{"command":"x"}\n\n  \n', {"command": "x"}),
        ("", None),
        ("not json\n", None),
        ('{"a":1}\ntrailing text\n', None),  # the summary must be last
        ("[1, 2]\n", None),
    ],
)
def test_parse_summary(stdout, expected):
    assert cli.parse_summary(stdout) == expected


@pytest.mark.parametrize(
    "returncode, exc_type, fatal",
    [
        (2, cli.EngineFatalError, True),
        (3, cli.EngineFatalError, True),
        (1, cli.EngineError, False),
        (4, cli.EngineError, False),  # unknown codes: assume transient
        (-signal.SIGKILL, cli.EngineError, False),
        (-signal.SIGTERM, cli.EngineError, False),
    ],
)
def test_exit_code_to_exception(returncode, exc_type, fatal):
    error = cli.classify_exit(returncode, "process", "error: boom")
    assert type(error) is exc_type
    assert isinstance(error, AirflowException)
    # AirflowFailException = fail now, no retries; anything else is retried.
    assert isinstance(error, AirflowFailException) is fatal


@pytest.mark.parametrize(
    "returncode, retried, message",
    [
        (0, None, None),
        (1, True, "engine `process` failed (exit 1, internal error; will retry): error: boom"),
        (2, False, "engine `process` failed (exit 2, unusable input or bad usage): error: boom"),
        (3, False, "engine `process` failed (exit 3, quality gate failed): error: boom"),
        # The engine's own exit after SIGINT/SIGTERM is 128 + the signal (src/lifecycle.ts).
        (130, True, "engine `process` was interrupted by SIGINT (exit 130); will retry: error: boom"),
        (143, True, "engine `process` was interrupted by SIGTERM (exit 143); will retry: error: boom"),
        (-signal.SIGKILL, True, "engine `process` was killed by SIGKILL; will retry"),
    ],
)
def test_exit_code_messages(returncode, retried, message):
    """Each exit reads as what happened (an interrupt is not an internal error)."""
    error = cli.classify_exit(returncode, "process", "error: boom")
    if message is None:
        assert error is None
        return
    assert str(error) == message
    assert isinstance(error, AirflowException)
    assert isinstance(error, AirflowFailException) is not retried


LOCKED = "HCP_ERR_LOCKED: Another run (pid 42) is processing vitals partition of h.csv; refusing to start"


@pytest.mark.parametrize(
    "returncode, code, retried",
    [
        (2, "HCP_ERR_LOCKED", True),  # another run holds the partition: it ends, the retry gets the lock
        (2, "HCP_ERR_BAD_HEADER", False),
        (2, "HCP_ERR_KEY_MISSING", False),
        (2, "HCP_ERR_KEY_INVALID", False),
        (2, "HCP_ERR_USAGE", False),
        (2, None, False),  # no summary: nothing says it was the lock
        (3, "HCP_ERR_LOCKED", False),  # exit 3 is a gate whatever the code says
        (1, "HCP_ERR_LOCKED", True),
        (0, "HCP_ERR_LOCKED", None),
    ],
)
def test_exit_and_error_code_to_retry(returncode, code, retried):
    """Exit 2 is fatal, except a held partition lock: that one is transient."""
    error = cli.classify_exit(returncode, "process", LOCKED if code == "HCP_ERR_LOCKED" else "error: boom", code)
    if retried is None:
        assert error is None
        return
    assert isinstance(error, AirflowException)
    assert isinstance(error, AirflowFailException) is not retried


@pytest.mark.parametrize(
    "returncode, code, permanent, retried",
    [
        (2, "HCP_ERR_LOCKED", False, True),
        (2, "HCP_ERR_LOCKED", True, False),  # a lock no wait frees: a person has to look, now
        (1, "HCP_ERR_LOCKED", True, True),  # only exit 2 is a refusal
        (3, "HCP_ERR_LOCKED", True, False),
    ],
)
def test_permanent_lock_refusal_is_not_retried(returncode, code, permanent, retried):
    error = cli.classify_exit(returncode, "process", LOCKED, code, permanent)
    assert isinstance(error, AirflowException)
    assert isinstance(error, AirflowFailException) is not retried
    if returncode == 2 and permanent:
        assert "no retry will" in str(error) and LOCKED in str(error)


@pytest.mark.parametrize(
    "summary, permanent",
    [
        ({"status": "error", "error": {"code": "HCP_ERR_LOCKED", "message": "m", "permanent": True}}, True),
        ({"status": "error", "error": {"code": "HCP_ERR_LOCKED", "message": "m"}}, False),
        ({"status": "error", "error": {"code": "HCP_ERR_LOCKED", "permanent": "yes"}}, False),
        ({"status": "error", "error": "HCP_ERR_LOCKED"}, False),
        (None, False),
    ],
)
def test_error_permanent_reads_only_a_true_flag(summary, permanent):
    assert cli._error_permanent(summary) is permanent


def test_held_lock_message_names_the_lock():
    error = cli.classify_exit(2, "process", LOCKED, "HCP_ERR_LOCKED")
    assert str(error) == (
        "engine `process` could not take its partition lock, another run holds it (exit 2); will retry: " + LOCKED
    )


def test_exit_zero_is_success():
    assert cli.classify_exit(0, "process", "") is None


def test_signal_is_named():
    assert "SIGKILL" in str(cli.classify_exit(-signal.SIGKILL, "process", ""))


def test_engine_env_strips_airflow_secrets_and_stray_keys():
    base = {
        "PATH": "/bin",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://u:p@h/db",
        "AIRFLOW_CONN_X": "x://",
        "AIRFLOW_VAR_HCP_PSEUDONYM_KEY": KEY,
        "HCP_PSEUDONYM_KEY": KEY,
        "HCP_OUTPUT_DIR": "/o",
    }
    assert cli.engine_env(base) == {"PATH": "/bin", "HCP_OUTPUT_DIR": "/o"}
    assert cli.engine_env(base, "other")["HCP_PSEUDONYM_KEY"] == "other"


def test_run_engine_returns_the_summary_and_relays_stderr(fake_cli, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    vitals = _csv(tmp_path / "v.csv", VITALS_HEADER, ["H01,2024-03-01,P1,heart_rate,72,bpm"])
    summary = cli.run_engine(fake_cli, "validate", {"dataset": "vitals", "input": vitals}, env=dict(os.environ))
    assert summary == {"command": "validate", "status": "ok", "dataset": "vitals"}
    assert "[engine] validate: starting" in caplog.text


@pytest.mark.parametrize(
    "knob, exc_type, fatal, message",
    [
        ({"FAKE_CLI_EXIT": "validate=2"}, cli.EngineFatalError, True, "HCP_ERR_FORCED: forced exit 2"),
        ({"FAKE_CLI_EXIT": "validate=2:HCP_ERR_LOCKED"}, cli.EngineError, False, "partition lock"),
        ({"FAKE_CLI_EXIT": "validate=3"}, cli.EngineFatalError, True, "quality gate failed"),
        ({"FAKE_CLI_EXIT": "validate=1"}, cli.EngineError, False, "forced exit 1"),
        ({"FAKE_CLI_SIGNAL": "validate"}, cli.EngineError, False, "SIGKILL"),
    ],
)
def test_run_engine_failures(fake_cli, tmp_path, caplog, knob, exc_type, fatal, message):
    vitals = _csv(tmp_path / "v.csv", VITALS_HEADER, [])
    with pytest.raises(exc_type) as info:
        cli.run_engine(fake_cli, "validate", {"dataset": "vitals", "input": vitals}, env={**os.environ, **knob})
    assert isinstance(info.value, AirflowFailException) is fatal
    assert message in str(info.value)
    assert info.value.__cause__ is None  # no chained subprocess traceback


def test_run_engine_message_is_the_engines(fake_cli, tmp_path, caplog):
    """The engine's own words reach the task log and the exception."""
    caplog.set_level(logging.INFO)
    broken = _csv(tmp_path / "v.csv", "hospital_id,measurement_date,patient_id,vital_type,unit", [])
    with pytest.raises(AirflowFailException, match="missing required column 'value'"):
        cli.run_engine(fake_cli, "validate", {"dataset": "vitals", "input": broken}, env=dict(os.environ))
    assert "[engine] error: " in caplog.text


def test_a_failed_gate_is_named_in_the_failure(tmp_path):
    """Exit 3: the task's failure names the failed gates from report's summary, not only its last
    stderr line ("quality report: …html — a gate FAILED")."""
    script = tmp_path / "report.py"
    script.write_text(
        "import json, sys\n"
        "print('quality report: /o/quality/report.html — a gate FAILED', file=sys.stderr)\n"
        "print(json.dumps({'command': 'report', 'status': 'gate_failed', 'report': '/o/quality/report.json',"
        " 'gates': {'passed': False, 'failed': [{'dataset': 'vitals', 'hospital_id': 'H004', 'gate': 'reject_rate',"
        " 'value': 0.06272530641672674, 'threshold': 0.05, 'passed': False}]}}))\n"
        "sys.exit(3)\n"
    )
    with pytest.raises(AirflowFailException) as info:
        cli.run_engine(("python3", str(script)), "report", {}, env=dict(os.environ))
    assert "quality gate failed" in str(info.value)
    assert "failed gates: vitals H004 reject_rate 0.06273 > 0.05 (report: /o/quality/report.json)" in str(info.value)


@pytest.mark.parametrize(
    ("gates", "expected"),
    [
        # Just over the threshold: as many digits as tell them apart, never "0.05 > 0.05".
        ([{"dataset": "vitals", "hospital_id": "H004", "gate": "reject_rate", "value": 0.050004, "threshold": 0.05}],
         "vitals H004 reject_rate 0.050004 > 0.05"),
        # A ledger gate is a gap in rows, which can be negative.
        ([{"dataset": "labs", "hospital_id": "H001", "gate": "ledger", "value": -3, "threshold": 0}],
         "labs H001 ledger off by -3 rows (read - curated - quarantined)"),
        # No value: the gate's name alone.
        ([{"dataset": "labs", "hospital_id": "H001", "gate": "reject_rate", "value": None}], "labs H001 reject_rate"),
        # Many: the first ten, then a count.
        ([{"dataset": "vitals", "hospital_id": f"H{i:03d}", "gate": "reject_rate", "value": 0.5, "threshold": 0.05} for i in range(300)],
         "vitals H009 reject_rate 0.5 > 0.05; and 290 more"),
    ],
)
def test_failed_gate_phrases(gates, expected):
    phrases = cli._failed_gates({"gates": {"failed": gates}})
    assert expected in "; ".join(phrases)
    assert len(phrases) <= cli.MAX_GATES_NAMED + 1


@pytest.mark.parametrize("permanent", [True, False])
def test_run_engine_lock_refusal_retried_unless_permanent(tmp_path, permanent):
    """The summary's ``error.permanent`` reaches the classification: a lock no wait frees fails the task now."""
    script = tmp_path / "process.py"
    error = {"code": "HCP_ERR_LOCKED", "message": "The lock for vitals holds no pid; remove /o/_locks/x.lock"}
    if permanent:
        error["permanent"] = True
    script.write_text(
        "import json, sys\n"
        f"print(json.dumps({{'command': 'process', 'status': 'error', 'exit_code': 2, 'error': {error!r}}}))\n"
        "sys.exit(2)\n"
    )
    with pytest.raises(AirflowException) as info:
        cli.run_engine(("python3", str(script)), "process", {}, env=dict(os.environ))
    assert isinstance(info.value, AirflowFailException) is permanent
    assert "holds no pid" in str(info.value)


def test_run_engine_without_summary_fails_fast(tmp_path):
    script = tmp_path / "quiet.py"
    script.write_text("print('done, no json')\n")
    with pytest.raises(AirflowFailException, match="no JSON summary"):
        cli.run_engine(("python3", str(script)), "stats", {}, env=dict(os.environ))


@pytest.mark.parametrize(
    "argv, match",
    [
        (("node", "/nonexistent/dist/src/cli.js"), "npm run build"),
        (("/nonexistent/bin/engine",), "cannot start the engine"),
    ],
)
def test_missing_engine_fails_fast(argv, match):
    with pytest.raises(AirflowFailException, match=match):
        cli.run_engine(argv, "stats", {}, env=dict(os.environ))


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (an orphan's zombie only waits for init to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


# A task process that runs the engine; the test SIGKILLs it (an OOM kill).
_TASK = f"""
import os, sys
sys.path.insert(0, {str(DAGS)!r})
from hcp_airflow import cli
cli.run_engine(sys.argv[1:], "process", {{"dataset": "vitals", "input": "x.csv"}}, env=dict(os.environ))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_engine_dies_with_a_hard_killed_task(fake_cli, tmp_path):
    """An engine outliving its task would keep its partition lock and fail the retry (exit 2)."""
    record = tmp_path / "calls.jsonl"
    env = {**os.environ, "FAKE_CLI_SLEEP": "process=60", "FAKE_CLI_RECORD": str(record)}
    task = subprocess.Popen([sys.executable, "-c", _TASK, *fake_cli], env=env)
    engine = None
    try:
        assert _wait_until(lambda: record.exists() and record.read_text().endswith("\n"), 60), "engine never started"
        engine = json.loads(record.read_text())["pid"]
        assert _running(engine)
        task.kill()
        task.wait()
        assert _wait_until(lambda: not _running(engine), 5), "the engine outlived its task"
    finally:
        task.kill()
        task.wait()
        if engine is not None and _running(engine):
            os.kill(engine, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_engine_started_after_its_task_died_exits_at_once():
    """The race: the task dies between fork and prctl, so no signal would ever come."""
    not_the_parent = os.getppid()  # any live pid other than the engine's real parent
    preexec = cli._die_with_parent(not_the_parent)
    assert preexec is not None
    proc = subprocess.Popen(["sleep", "30"], preexec_fn=preexec)
    try:
        assert proc.wait(timeout=5) == 128 + signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()


# --- partitions -----------------------------------------------------------------


def _part(landing: Path, dataset: str, hospital: str, rows: int) -> dict:
    return {"hospital_id": hospital, "path": str(landing / dataset / f"hospital_id={hospital}.csv"), "rows": rows}


def test_hospitals_from_partitions_merges_and_sorts(tmp_path):
    summaries = {
        "vitals": {"rows_read": 6, "partitions": [_part(tmp_path, "vitals", h, n) for h, n in
                                                  [("H02", 2), ("H01", 3), ("__invalid__", 1)]]},
        "labs": {"rows_read": 4, "partitions": [_part(tmp_path, "labs", h, n) for h, n in [("H03", 1), ("H01", 3)]]},
    }
    hospitals = partitions.hospitals_from_partitions(summaries, tmp_path)
    assert [h["hospital_id"] for h in hospitals] == ["H01", "H02", "H03", "__invalid__"]
    assert hospitals[0]["files"] == {
        "vitals": str(tmp_path / "vitals/hospital_id=H01.csv"),
        "labs": str(tmp_path / "labs/hospital_id=H01.csv"),
    }
    assert hospitals[0]["rows"] == {"vitals": 3, "labs": 3}
    assert set(hospitals[1]["files"]) == {"vitals"}  # a hospital with no labs: nothing to process there
    assert json.loads(json.dumps(hospitals)) == hospitals  # XCom-safe


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda s, d: s["vitals"]["partitions"][0].update(hospital_id="../etc"), "unsafe hospital_id"),
        (lambda s, d: s["vitals"]["partitions"][0].update(hospital_id=""), "unsafe hospital_id"),
        (lambda s, d: s["vitals"]["partitions"][0].update(path="/tmp/elsewhere.csv"), "outside"),
        (lambda s, d: s["vitals"].update(rows_read=99), "lost rows"),
        (lambda s, d: s["vitals"]["partitions"].append(dict(s["vitals"]["partitions"][0])), "twice"),
        (lambda s, d: s["vitals"].pop("partitions"), "no 'partitions'"),
    ],
)
def test_hospitals_from_partitions_rejects_bad_summaries(tmp_path, mutate, match):
    summaries = {"vitals": {"rows_read": 2, "partitions": [_part(tmp_path, "vitals", "H01", 2)]}}
    mutate(summaries, tmp_path)
    with pytest.raises(AirflowFailException, match=match):
        partitions.hospitals_from_partitions(summaries, tmp_path)


# --- pseudonymisation key -------------------------------------------------------


@pytest.mark.parametrize(
    "variable, connection, env, expected",
    [
        ("from-var", "from-conn", "from-env", ("from-var", "variable")),
        (None, "from-conn", "from-env", ("from-conn", "connection")),
        (None, None, "from-env", ("from-env", "env")),
        (None, None, None, (None, "none")),
        ("", None, "from-env", ("from-env", "env")),
    ],
)
def test_resolve_key_order(monkeypatch, variable, connection, env, expected):
    monkeypatch.setattr(pseudonym_key, "_from_variable", lambda: variable)
    monkeypatch.setattr(pseudonym_key, "_from_connection", lambda: connection)
    environ = {"HCP_PSEUDONYM_KEY": env} if env else {}
    assert pseudonym_key.resolve_key(environ) == expected


def test_resolve_key_reads_an_airflow_variable_from_the_environment(monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_HCP_PSEUDONYM_KEY", "var-key")
    assert pseudonym_key.resolve_key({}) == ("var-key", "variable")


def test_resolve_key_without_airflow(monkeypatch):
    assert pseudonym_key.resolve_key({"HCP_PSEUDONYM_KEY": "e"}, use_airflow=False) == ("e", "env")


# --- steps, end to end against the fake engine -------------------------------------

VITALS_HEADER = "hospital_id,measurement_date,patient_id,vital_type,value,unit"
LABS_HEADER = "hospital_id,test_date,patient_id,test_type,result_value,reference_range,unit"


def _csv(path: Path, header: str, rows: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.fixture
def month_settings(tmp_path, fake_cli, monkeypatch):
    """Settings for landing month 2024-03 with the fake engine, recording its calls."""
    landing = tmp_path / "landing"
    _csv(landing / "2024-03/vitals.csv", VITALS_HEADER,
         ["H01,2024-03-01,P1,heart_rate,72,bpm", "H02,2024-03-02,P2,heart_rate,80,bpm",
          "bad id!,2024-03-02,P3,heart_rate,80,bpm"])
    _csv(landing / "2024-03/lab_results.csv", LABS_HEADER, ["H01,2024-03-01,P1,glucose,90,70-100,mg/dL"])
    monkeypatch.setenv("FAKE_CLI_RECORD", str(tmp_path / "calls.jsonl"))
    monkeypatch.setattr(pseudonym_key, "_from_variable", lambda: None)
    monkeypatch.setattr(pseudonym_key, "_from_connection", lambda: None)
    return load_settings({"HCP_CLI": " ".join(fake_cli), "HCP_LANDING_DIR": str(landing),
                          "HCP_OUTPUT_DIR": str(tmp_path / "out")}, repo_dir=REPO)


def _calls(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]


def test_partition_step_lists_every_hospital_including_invalid(month_settings):
    plan = plan_run(month_settings, "2024-03")
    stale = plan.landing / "vitals" / "hospital_id=GONE.csv"
    _csv(stale, VITALS_HEADER, [])
    stale_map = plan.landing / "_lines" / "vitals" / "hospital_id=GONE.csv.lines"
    stale_map.parent.mkdir(parents=True)
    stale_map.write_bytes(b"")
    hospitals = steps.partition(month_settings, plan)
    assert [h["hospital_id"] for h in hospitals] == ["H01", "H02", "__invalid__"]
    assert not stale.exists()  # a rerun starts from a clean landing dir
    assert not stale_map.exists()


def test_partition_step_processes_a_file_without_rows_itself(month_settings, tmp_path, monkeypatch):
    """A header-only file maps no hospital task; partition processes it, so the report records it."""
    monkeypatch.setenv("HCP_PSEUDONYM_KEY", KEY)
    plan = plan_run(month_settings, "2024-03")
    _csv(plan.inputs["labs"], LABS_HEADER, [])
    hospitals = steps.partition(month_settings, plan)
    assert [h["hospital_id"] for h in hospitals] == ["H01", "H02", "__invalid__"]
    assert all(list(h["files"]) == ["vitals"] for h in hospitals)
    process = [c for c in _calls(tmp_path) if c["argv"][1] == "process"]
    assert len(process) == 1
    argv = process[0]["argv"]
    assert argv[argv.index("--dataset") + 1] == "labs"
    assert argv[argv.index("--input") + 1] == str(plan.inputs["labs"])
    assert argv[argv.index("--out") + 1] == str(plan.out)
    assert argv[argv.index("--period") + 1] == "2024-03"
    assert "--require-key" in argv and not any(KEY in a for a in argv)
    assert process[0]["key"] == KEY


def test_partition_step_with_rows_in_every_file_processes_nothing(month_settings, tmp_path):
    steps.partition(month_settings, plan_run(month_settings, "2024-03"))
    assert {c["argv"][1] for c in _calls(tmp_path)} == {"partition"}


def test_partition_step_fails_fast_on_a_missing_input(month_settings):
    plan = plan_run(month_settings, "2024-04")
    with pytest.raises(AirflowFailException, match="missing"):
        steps.partition(month_settings, plan)


def test_key_reaches_process_through_the_environment_only(month_settings, tmp_path, monkeypatch):
    monkeypatch.setenv("HCP_PSEUDONYM_KEY", KEY)
    plan = plan_run(month_settings, "2024-03")
    for hospital in steps.partition(month_settings, plan):
        steps.transform(month_settings, plan, steps.validate(month_settings, hospital))
    steps.statistics(month_settings, plan)
    steps.quality_report(month_settings, plan, 0.2)
    calls = _calls(tmp_path)
    assert {c["argv"][1] for c in calls} == {"partition", "validate", "process", "stats", "report"}
    for call in calls:
        assert not any(KEY in arg for arg in call["argv"]), call["argv"]
        # Only the pseudonymising command gets the key at all.
        assert call["key"] == (KEY if call["argv"][1] == "process" else None)
    process = [c["argv"] for c in calls if c["argv"][1] == "process"]
    assert len(process) == 4  # H01 vitals+labs, H02 vitals, __invalid__ vitals
    for argv in process:
        assert "--require-key" in argv
        assert argv[argv.index("--period") + 1] == "2024-03"
        assert argv[argv.index("--out") + 1] == str(plan.out)
    report = [c["argv"] for c in calls if c["argv"][1] == "report"][0]
    assert report[report.index("--max-reject-rate") + 1] == "0.2"


def test_transform_without_key_fails_fast(month_settings):
    plan = plan_run(month_settings, "2024-03")
    hospital = steps.partition(month_settings, plan)[0]
    with pytest.raises(AirflowFailException, match="HCP_PSEUDONYM_KEY"):
        steps.transform(month_settings, plan, hospital)


def test_transform_fails_when_a_split_file_changed_since_partition(month_settings, monkeypatch):
    """A split file truncated after `partition` reads as fewer records: the month's ledger no longer
    holds, so transform fails (no retries: a retry reads the same file) instead of letting the run
    reach _SUCCESS with the rows missing."""
    monkeypatch.setenv("HCP_PSEUDONYM_KEY", KEY)
    plan = plan_run(month_settings, "2024-03")
    h01 = steps.partition(month_settings, plan)[0]
    assert h01["hospital_id"] == "H01" and h01["rows"]["vitals"] == 1
    steps.transform(month_settings, plan, h01)  # unchanged: fine
    Path(h01["files"]["vitals"]).write_text(VITALS_HEADER + "\n")  # cut after partition
    with pytest.raises(AirflowFailException, match=r"partition wrote 1 record\(s\) of hospital H01, process read 0"):
        steps.transform(month_settings, plan, h01)


def test_transform_fails_when_a_split_file_files_rows_under_another_hospital(month_settings, monkeypatch):
    """Rows of H01's split file filed under __invalid__ replace the __invalid__ task's month."""
    monkeypatch.setenv("HCP_PSEUDONYM_KEY", KEY)
    plan = plan_run(month_settings, "2024-03")
    h01 = steps.partition(month_settings, plan)[0]
    Path(h01["files"]["vitals"]).write_text(VITALS_HEADER + "\nbad id!,2024-03-01,P1,heart_rate,72,bpm\n")
    with pytest.raises(AirflowFailException, match="filed rows under __invalid__"):
        steps.transform(month_settings, plan, h01)


def test_a_failed_transform_leaves_no_earlier_success_marker(month_settings, monkeypatch):
    """An earlier report's _SUCCESS no longer vouches for an output this run has started to change:
    a transform that fails (here after its retries) must not leave it behind (engine `run` drops it too)."""
    monkeypatch.setenv("HCP_PSEUDONYM_KEY", KEY)
    plan = plan_run(month_settings, "2024-03")
    hospital = steps.partition(month_settings, plan)[0]
    success = plan.out / "_SUCCESS"
    success.parent.mkdir(parents=True, exist_ok=True)
    success.write_text("")
    monkeypatch.setenv("FAKE_CLI_EXIT", "process=1")
    with pytest.raises(cli.EngineError):
        steps.transform(month_settings, plan, hospital)
    assert not success.exists()


def test_pushgateway_is_passed_when_configured(month_settings, tmp_path, monkeypatch):
    monkeypatch.setenv("HCP_PSEUDONYM_KEY", KEY)
    settings = Settings(**{**month_settings.__dict__, "pushgateway": "http://pgw:9091"})
    plan = plan_run(settings, "2024-03")
    steps.transform(settings, plan, steps.partition(settings, plan)[0])
    steps.statistics(settings, plan)
    steps.quality_report(settings, plan, None)
    # Every command with metrics of its own pushes them (partition and stats: their stage times).
    for command in ("partition", "process", "stats", "report"):
        argv = [c["argv"] for c in _calls(tmp_path) if c["argv"][1] == command][0]
        assert argv[argv.index("--pushgateway") + 1] == "http://pgw:9091", command


def test_docs_task_table_lists_the_flags_each_command_gets(month_settings, tmp_path, monkeypatch):
    """docs/AIRFLOW.md's task table names every option the steps pass, with everything configured."""
    monkeypatch.setenv("HCP_PSEUDONYM_KEY", KEY)
    settings = Settings(**{**month_settings.__dict__, "pushgateway": "http://pgw:9091"})
    plan = plan_run(settings, "2024-03")
    for hospital in steps.partition(settings, plan):
        steps.transform(settings, plan, steps.validate(settings, hospital))
    steps.statistics(settings, plan)
    steps.quality_report(settings, plan, 0.2)
    passed: dict[str, set[str]] = {}
    for call in _calls(tmp_path):
        passed.setdefault(call["argv"][1], set()).update(a for a in call["argv"] if a.startswith("--"))
    documented: dict[str, set[str]] = {}
    doc = (REPO / "docs" / "AIRFLOW.md").read_text()
    table = doc[doc.index("| task | engine command |"):].split("\n\n")[0]
    rows = re.findall(r"^\| `[\w.]+`(?: \(mapped\))? \| `(\w+) ([^`]*)`", table, re.M)
    for command, options in rows:
        documented.setdefault(command, set()).update(re.findall(r"--[a-z][a-z-]*", options))
    assert documented == passed


def test_on_failure_callback_logs_one_line(caplog):
    class TI:
        task_id, map_index, try_number = "hospital.validate", 3, 1

    class Dag:
        dag_id = "healthcare_processing"

    steps.on_failure({"ti": TI(), "dag": Dag(), "run_id": "r1", "exception": ValueError("boom")})
    assert "task=hospital.validate[3] try=1 cause=boom" in caplog.text


@pytest.mark.parametrize(
    "params, interval_start, landing, expected_key",
    [
        ({"month": None}, MARCH, None, "sample"),
        ({"month": "2024-05"}, MARCH, None, "2024-05"),
        ({"month": None}, MARCH, "landing", "2024-03"),
    ],
)
def test_plan_for_context(tmp_path, params, interval_start, landing, expected_key):
    env = {"HCP_OUTPUT_DIR": str(tmp_path)} | ({"HCP_LANDING_DIR": str(tmp_path / landing)} if landing else {})
    s = load_settings(env, repo_dir=REPO)
    assert steps.plan_for(s, {"params": params, "data_interval_start": interval_start}).key == expected_key


@pytest.mark.parametrize(
    "params, interval_start",
    [
        ({"month": "2024-13"}, MARCH),  # bad month
        ({"month": None}, None),  # landing dir, manual run without a data interval
    ],
)
def test_plan_for_context_fails_fast(tmp_path, params, interval_start):
    s = load_settings({"HCP_LANDING_DIR": str(tmp_path)}, repo_dir=REPO)
    with pytest.raises(AirflowFailException):
        steps.plan_for(s, {"params": params, "data_interval_start": interval_start})


def test_fake_engine_speaks_the_engines_error_codes():
    """The fake engine's error codes are the real catalogue's (src/errors.ts): a made-up one (HCP_ERR_NO_KEY,
    HCP_ERR_MISSING_COLUMN) let the DAG tests pass against codes the engine never prints."""
    catalogue = set(re.findall(r"^\s+(HCP_ERR_[A-Z_]+):", (REPO / "src" / "errors.ts").read_text(), re.M))
    used = set(re.findall(r"HCP_ERR_[A-Z_]+", (REPO / "test" / "dags" / "fake_cli.py").read_text()))
    used.discard("HCP_ERR_FORCED")  # the fake's own forced exit (FAKE_CLI_EXIT), no engine's
    assert catalogue and used <= catalogue, used - catalogue
