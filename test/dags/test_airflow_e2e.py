"""End to end on a real Airflow: a throwaway AIRFLOW_HOME (SQLite), `airflow db
migrate`, then `airflow dags test healthcare_processing` as a subprocess.

- With the real engine (skipped only if dist/src/cli.js is missing; `npm test`
  builds it first): the bundled sample gives one mapped transform per hospital
  and the same statistics and rejects (source file and line included) as the
  engine's own `run`; neither the key nor a
  raw patient ID reaches the logs; a file missing a required column fails the
  run at once, without retries, with the engine's message in the log.
- With the fake engine (always): the Airflow wiring on its own.

`airflow dags test` runs the tasks in-process and prints their logs to its
console; that output is the task log checked here (plus AIRFLOW_HOME/logs,
should Airflow write files there).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import secrets
import sqlite3
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import DAGS, FAKE_CLI, REPO

pytestmark = pytest.mark.e2e

ENGINE = REPO / "dist" / "src" / "cli.js"
needs_engine = pytest.mark.skipif(
    not ENGINE.exists(), reason="engine not built: dist/src/cli.js is missing (run `npm run build`)"
)
AIRFLOW = Path(sys.executable).with_name("airflow")
DAG_ID = "healthcare_processing"
SAMPLE = {"vitals": REPO / "data" / "vitals_2024.csv", "labs": REPO / "data" / "lab_results_2024.csv"}
HOSPITAL_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
RESERVED_HOSPITALS = {"ALL", "__invalid__"}  # the rollup row and the quarantine partition
QUANTILES = {"p05": 0.05, "p25": 0.25, "p50": 0.50, "p75": 0.75, "p95": 0.95, "p99": 0.99}
RANK_TOLERANCE = 0.005  # SPEC section 4


# --- running Airflow ----------------------------------------------------------------


@dataclass
class DagRun:
    returncode: int
    output: str  # the console of `airflow dags test`: the task logs
    state: str | None
    tis: list[dict]  # task_id, map_index, state, try_number, rendered_map_index

    def ti(self, task_id: str) -> list[dict]:
        return [t for t in self.tis if t["task_id"] == task_id]


class Airflow:
    """One throwaway Airflow installation (metadata DB migrated)."""

    def __init__(self, home: Path):
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HCP_", "FAKE_CLI_"))}
        self.env = {
            **clean,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        }
        self._run(["db", "migrate"], self.env, timeout=300)

    def _run(self, args: list[str], env: dict, timeout: int) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [str(AIRFLOW), *args], env=env, cwd=self.home, capture_output=True, text=True, timeout=timeout
        )
        if args[0] == "db" and proc.returncode != 0:
            pytest.fail(f"airflow {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def dags_test(self, env: dict[str, str], conf: dict | None = None) -> DagRun:
        args = ["dags", "test", DAG_ID] + (["--conf", json.dumps(conf)] if conf else [])
        proc = self._run(args, {**self.env, **env}, timeout=900)
        with sqlite3.connect(self.home / "airflow.db") as db:
            db.row_factory = sqlite3.Row
            run = db.execute(
                "SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (DAG_ID,)
            ).fetchone()
            tis = [] if run is None else [dict(r) for r in db.execute(
                "SELECT task_id, map_index, state, try_number, rendered_map_index FROM task_instance "
                "WHERE dag_id = ? AND run_id = ?", (DAG_ID, run["run_id"]))]
        return DagRun(proc.returncode, proc.stdout + proc.stderr, run["state"] if run else None, tis)

    def log_text(self, run: DagRun) -> str:
        """Everything Airflow logged: the console plus any log files."""
        files = [p for p in (self.home / "logs").rglob("*") if p.is_file()] if (self.home / "logs").exists() else []
        return run.output + "".join(p.read_text(errors="replace") for p in files)


def _explain(run: DagRun) -> str:
    return f"dags test exited {run.returncode}, run {run.state}; TIs {run.tis}\n--- log tail ---\n{run.output[-6000:]}"


# --- reading the inputs independently of the engine ------------------------------------


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def hospitals_in(paths) -> set[str]:
    """Hospital partitions the DAG must map over: valid IDs, plus __invalid__ if any row has a bad one."""
    found = set()
    for path in paths:
        for row in _rows(path):
            h = (row.get("hospital_id") or "").strip()
            found.add(h if HOSPITAL_ID.match(h) and h not in RESERVED_HOSPITALS else "__invalid__")
    return found


def patient_ids_in(paths) -> set[str]:
    """Raw patient IDs worth searching for: ID-shaped, long enough not to match by chance, and
    not also a value of another column (a shifted row can put 'hba1c' in patient_id)."""
    ids, other = set(), set()
    for path in paths:
        for row in _rows(path):
            ids.add((row.get("patient_id") or "").strip())
            other.update((v or "").strip() for k, v in row.items() if k != "patient_id" and isinstance(v, str))
    return {i for i in ids if len(i) >= 5 and HOSPITAL_ID.match(i) and i not in other}


def find_tokens(text: str, tokens: set[str]) -> set[str]:
    """Tokens that occur in text as whole words (not inside a longer ID or number)."""
    if not tokens:
        return set()
    pattern = re.compile(r"(?<![A-Za-z0-9_.-])(" + "|".join(map(re.escape, tokens)) + r")(?![A-Za-z0-9_-]|\.\d)")
    return set(pattern.findall(text))


# --- comparing statistics (SPEC section 4) -----------------------------------------------


def read_stats(path: Path) -> dict[tuple, dict]:
    return {(r["dataset"], r["hospital_id"], r["month"], r["measure"]): r for r in _rows(path)}


def _num(text: str) -> float | None:
    return None if text == "" else float(text)


def within_rank_tolerance(values: list[float], p: float, q: float, tol: float = RANK_TOLERANCE) -> bool:
    n = len(values)
    below = sum(v < q for v in values) / n
    at_or_below = sum(v <= q for v in values) / n
    return below <= p + tol and at_or_below >= p - tol


def curated_values(out: Path, dataset: str) -> dict[tuple, list[float]]:
    """(hospital_id, month, measure) -> curated values, with ALL rollups."""
    import pyarrow.parquet as pq

    measure = "vital_type" if dataset == "vitals" else "test_type"
    values: dict[tuple, list[float]] = defaultdict(list)
    for part in sorted((out / "curated" / dataset).rglob("*.parquet")):
        table = pq.read_table(part, columns=["hospital_id", "month", measure, "value"]).to_pydict()
        for h, m, name, v in zip(table["hospital_id"], table["month"], table[measure], table["value"]):
            values[(h, m, name)].append(v)
            values[("ALL", m, name)].append(v)
    return values


def assert_same_statistics(airflow_out: Path, direct_out: Path, dataset: str) -> None:
    """n, n_patients, min, max, n_low, n_high exact; mean, stddev within 1e-9
    relative; quantiles equal or within the rank tolerance."""
    got = read_stats(airflow_out / "stats" / f"monthly_{dataset}.csv")
    want = read_stats(direct_out / "stats" / f"monthly_{dataset}.csv")
    assert got.keys() == want.keys(), f"{dataset}: different (hospital, month, measure) rows"
    assert any(k[1] == "ALL" for k in got), f"{dataset}: no ALL rollup rows"
    values = None
    for key, w in want.items():
        g = got[key]
        for col in ("unit", "n", "n_patients", "n_low", "n_high"):
            assert g[col] == w[col], (dataset, key, col, g[col], w[col])
        for col in ("min", "max"):
            assert _num(g[col]) == _num(w[col]), (dataset, key, col, g[col], w[col])
        for col in ("mean", "stddev"):
            a, b = _num(g[col]), _num(w[col])
            assert (a is None and b is None) or math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0), (dataset, key, col, a, b)
        for col, p in QUANTILES.items():
            if g[col] == w[col]:
                continue
            values = values if values is not None else curated_values(airflow_out, dataset)
            sample = values[(key[1], key[2], key[3])]
            assert len(sample) == int(w["n"]), (dataset, key, "curated rows != n")
            assert within_rank_tolerance(sample, p, float(g[col])), (dataset, key, col, g[col], w[col])


@pytest.mark.parametrize(
    "values, p, q, ok",
    [
        ([1, 2, 3, 4], 0.5, 2, True),
        ([1, 2, 3, 4], 0.5, 3, True),
        ([1, 2, 3, 4], 0.5, 4, False),
        (list(range(1000)), 0.95, 950, True),
        (list(range(1000)), 0.95, 954, True),
        (list(range(1000)), 0.95, 956, False),
        ([5.0] * 10, 0.05, 5.0, True),
    ],
)
def test_rank_tolerance_check(values, p, q, ok):
    assert within_rank_tolerance(values, p, q) is ok


def test_find_tokens_matches_whole_ids_only():
    text = "path=/x/hospital_id=H001.csv P467220 run_duration=40.5508148 MRN04715064x"
    assert find_tokens(text, {"P467220", "5508148", "MRN04715064", "H001"}) == {"P467220", "H001"}


# --- the real engine -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def key() -> str:
    return "hcp-e2e-" + secrets.token_hex(16)


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory, key):
    """The DAG over the bundled sample, and the engine's own `run` on the same data."""
    if not ENGINE.exists():
        pytest.skip("engine not built: dist/src/cli.js is missing (run `npm run build`)")
    tmp = tmp_path_factory.mktemp("sample")
    airflow = Airflow(tmp / "airflow")
    run = airflow.dags_test({"HCP_OUTPUT_DIR": str(tmp / "out"), "HCP_PSEUDONYM_KEY": key})
    direct = subprocess.run(
        ["node", str(ENGINE), "run", "--out", str(tmp / "direct"), "--require-key"],
        cwd=REPO, env={**airflow.env, "HCP_PSEUDONYM_KEY": key}, capture_output=True, text=True, timeout=600,
    )
    assert direct.returncode == 0, f"engine run failed ({direct.returncode}):\n{direct.stderr[-4000:]}"
    return airflow, run, tmp / "out", tmp / "direct"


@needs_engine
def test_sample_run_succeeds(sample_run):
    _, run, out, _ = sample_run
    assert run.returncode == 0 and run.state == "success", _explain(run)
    assert {t["state"] for t in run.tis} == {"success"}, _explain(run)
    assert (out / "_SUCCESS").exists()
    assert (out / "quality" / "report.json").exists()


@needs_engine
def test_one_transform_per_hospital(sample_run):
    _, run, _, _ = sample_run
    expected = hospitals_in(SAMPLE.values())
    transforms = run.ti("hospital.transform")
    assert len(transforms) == len(expected), _explain(run)
    assert sorted(t["rendered_map_index"] for t in transforms) == sorted(expected)
    assert sorted(t["map_index"] for t in transforms) == list(range(len(expected)))
    assert {t["rendered_map_index"] for t in run.ti("hospital.validate")} == expected


@needs_engine
@pytest.mark.parametrize("dataset", ["vitals", "labs"])
def test_statistics_match_the_engines_own_run(sample_run, dataset):
    _, run, out, direct = sample_run
    assert run.returncode == 0, _explain(run)
    assert_same_statistics(out, direct, dataset)


def read_rejects(out: Path, dataset: str) -> list[tuple]:
    """Every reject of a dataset: (hospital partition, source file resolved, line_number, codes, the rest), sorted."""
    rows = []
    for path in sorted((out / "quarantine" / dataset).glob("hospital_id=*/rejects*.csv")):
        with open(path, newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                source = (REPO / r.pop("source_file")).resolve()  # the engine's `run` names it relative to the repo
                rows.append((path.parent.name, str(source), int(r.pop("line_number")), *r.values()))
    return sorted(rows)


@needs_engine
@pytest.mark.parametrize("dataset", ["vitals", "labs"])
def test_rejects_point_to_the_delivered_file_as_the_engines_own_run(sample_run, dataset):
    """SPEC section 5: a reject names the file as delivered and the line its record starts on there,
    not the split file `partition` made: the same quarantine as the engine's `run` of the whole file."""
    _, run, out, direct = sample_run
    assert run.returncode == 0, _explain(run)
    want = read_rejects(direct, dataset)
    assert len(want) > 5 and {r[1] for r in want} == {str(SAMPLE[dataset].resolve())}
    assert read_rejects(out, dataset) == want


@needs_engine
def test_no_key_or_patient_id_in_airflow_logs(sample_run, key):
    airflow, run, _, _ = sample_run
    logs = airflow.log_text(run)
    assert "[engine]" in logs, "the engine's stderr should be in the task log"
    assert key not in logs
    assert key.encode() not in (airflow.home / "airflow.db").read_bytes(), "key stored in Airflow's DB"
    ids = patient_ids_in(SAMPLE.values())
    assert len(ids) > 50, "expected the sample's patient IDs"
    assert find_tokens(logs, ids) == set()


def _snapshot(out: Path) -> dict[str, bytes]:
    """Curated, quarantine and statistics files: what a rerun must reproduce byte for byte."""
    return {
        str(p.relative_to(out)): p.read_bytes()
        for sub in ("curated", "quarantine", "stats")
        for p in sorted((out / sub).rglob("*"))
        if p.is_file()
    }


@needs_engine
def test_rerun_replaces_the_same_outputs(sample_run, key):
    """Idempotent: a second run of the same batch rewrites the same files with the same bytes."""
    airflow, first, out, _ = sample_run
    assert first.returncode == 0, _explain(first)
    before = _snapshot(out)
    runs_before = _commit_runs(out)
    assert any(name.startswith("curated/") for name in before)
    assert runs_before
    again = airflow.dags_test({"HCP_OUTPUT_DIR": str(out), "HCP_PSEUDONYM_KEY": key})
    assert again.returncode == 0 and again.state == "success", _explain(again)
    # Every hospital's partitions were committed again, by the second run's own `process` runs ...
    runs_after = _commit_runs(out)
    assert sorted(runs_after) == sorted(runs_before)
    assert [k for k in runs_before if runs_before[k] == runs_after[k]] == []
    # ... and they wrote the same bytes.
    after = _snapshot(out)
    assert sorted(after) == sorted(before)
    assert [name for name in before if before[name] != after[name]] == []


def _commit_runs(out: Path) -> dict[str, str]:
    """(manifest, scope) → the id of the `process` run that committed it (each run has its own)."""
    return {
        f"{p.relative_to(out)}:{scope}": entry["run"]
        for p in sorted((out / "_manifests").rglob("hospital_id=*.json"))
        for scope, entry in json.loads(p.read_text())["scopes"].items()
    }


@needs_engine
def test_missing_column_fails_fast_without_retries(tmp_path, key):
    """A vitals file without `value` fails the run at once (exit 2: no retries)."""
    month = tmp_path / "landing" / "2024-02"
    month.mkdir(parents=True)
    rows = _rows(SAMPLE["vitals"])[:200]
    with open(month / "vitals.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[c for c in rows[0] if c != "value"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    (month / "lab_results.csv").write_bytes(SAMPLE["labs"].read_bytes())
    airflow = Airflow(tmp_path / "airflow")
    run = airflow.dags_test(
        {"HCP_OUTPUT_DIR": str(tmp_path / "out"), "HCP_LANDING_DIR": str(tmp_path / "landing"),
         "HCP_PSEUDONYM_KEY": key},
        conf={"month": "2024-02"},
    )
    assert run.returncode != 0 and run.state == "failed", _explain(run)
    failed = [t for t in run.tis if t["state"] == "failed"]
    assert failed, _explain(run)
    # The brief says "at validate"; the engine's `partition` already checks the
    # header (HCP_ERR_BAD_HEADER), so the first task to read the file fails.
    assert {t["task_id"] for t in failed} <= {"partition", "hospital.validate"}, _explain(run)
    assert all(t["try_number"] == 1 for t in failed), f"retried: {failed}"
    assert not [t for t in run.tis if t["task_id"] in ("statistics", "quality_report") and t["state"] == "success"]
    assert not [t for t in run.ti("hospital.transform") if t["state"] == "success"]
    assert "exit 2" in run.output
    assert re.search(r"\[engine\] error: .*\bvalue\b", run.output), "the engine's message should be in the log"
    assert key not in airflow.log_text(run)


# --- the fake engine: Airflow wiring alone ---------------------------------------------------


def test_dag_wiring_with_the_fake_engine(tmp_path):
    month = tmp_path / "landing" / "2024-03"
    month.mkdir(parents=True)
    (month / "vitals.csv").write_text(
        "hospital_id,measurement_date,patient_id,vital_type,value,unit\n"
        "H01,2024-03-01,PATIENT0001,heart_rate,72,bpm\n"
        "H02,2024-03-02,PATIENT0002,heart_rate,80,bpm\n"
        "bad id!,2024-03-02,PATIENT0003,heart_rate,80,bpm\n"
    )
    (month / "lab_results.csv").write_text(
        "hospital_id,test_date,patient_id,test_type,result_value,reference_range,unit\n"
        "H01,2024-03-01,PATIENT0001,glucose,90,70-100,mg/dL\n"
        "H03,2024-03-05,PATIENT0004,glucose,90,70-100,mg/dL\n"
    )
    key = "fake-" + secrets.token_hex(12)
    calls = tmp_path / "calls.jsonl"
    airflow = Airflow(tmp_path / "airflow")
    run = airflow.dags_test(
        {
            "HCP_CLI": f"{sys.executable} {FAKE_CLI}",
            "HCP_LANDING_DIR": str(tmp_path / "landing"),
            "HCP_OUTPUT_DIR": str(tmp_path / "out"),
            "HCP_PSEUDONYM_KEY": key,
            "FAKE_CLI_RECORD": str(calls),
        },
        conf={"month": "2024-03", "max_reject_rate": 0.1},
    )
    assert run.returncode == 0 and run.state == "success", _explain(run)
    assert sorted(t["rendered_map_index"] for t in run.ti("hospital.transform")) == ["H01", "H02", "H03", "__invalid__"]
    assert (tmp_path / "out" / "_SUCCESS").exists()
    recorded = [json.loads(line) for line in calls.read_text().splitlines()]
    assert all(key not in " ".join(c["argv"]) for c in recorded)
    assert {c["key"] for c in recorded if c["argv"][1] == "process"} == {key}
    assert key not in airflow.log_text(run)
    assert find_tokens(airflow.log_text(run), {"PATIENT0001", "PATIENT0002", "PATIENT0003", "PATIENT0004"}) == set()


@needs_engine
def test_a_month_without_rows_still_gets_its_report(tmp_path, key):
    """SPEC section 1: an empty or header-only file is valid input with zero rows and
    a warning in the report. With no hospital to map over, the run must still
    write the statistics, the report (with those warnings) and _SUCCESS."""
    month = tmp_path / "landing" / "2024-05"
    month.mkdir(parents=True)
    vitals, labs = month / "vitals.csv", month / "lab_results.csv"
    vitals.write_text(SAMPLE["vitals"].read_text().splitlines()[0] + "\n")  # header only
    labs.write_text("")  # empty: not even a header
    airflow = Airflow(tmp_path / "airflow")
    out = tmp_path / "out"
    run = airflow.dags_test(
        {"HCP_OUTPUT_DIR": str(out), "HCP_LANDING_DIR": str(tmp_path / "landing"),
         "HCP_PSEUDONYM_KEY": key},
        conf={"month": "2024-05"},
    )
    assert run.returncode == 0 and run.state == "success", _explain(run)
    assert [t["state"] for t in run.ti("statistics")] == ["success"], _explain(run)
    assert [t["state"] for t in run.ti("quality_report")] == ["success"], _explain(run)
    # Nothing to map over: the per-hospital tasks exist and were skipped (the case `none_failed` lets through).
    for task in ("hospital.validate", "hospital.transform"):
        states = [t["state"] for t in run.ti(task)]
        assert states and set(states) == {"skipped"}, _explain(run)
    assert (out / "_SUCCESS").exists()
    for dataset in ("vitals", "labs"):
        stats = (out / "stats" / f"monthly_{dataset}.csv").read_text().splitlines()
        assert len(stats) == 1 and stats[0].startswith("dataset,hospital_id,month,measure"), stats
    report = json.loads((out / "quality" / "report.json").read_text())
    inputs = {i["dataset"]: i for i in report["inputs"]}
    assert sorted(inputs) == ["labs", "vitals"], report["inputs"]
    assert inputs["vitals"]["input"] == str(vitals) and inputs["labs"]["input"] == str(labs)
    for dataset in ("vitals", "labs"):
        assert inputs[dataset]["rows"] == {"read": 0, "accepted": 0, "rejected": 0}
    assert any("header only (zero rows)" in w for w in inputs["vitals"]["warnings"]), inputs["vitals"]
    assert any("empty file" in w and "zero rows" in w for w in inputs["labs"]["warnings"]), inputs["labs"]
    assert key not in airflow.log_text(run)
