"""Shared setup for the DAG tests.

Airflow reads its configuration when first imported, so the environment
is pinned here, before any test module imports it: a throwaway
AIRFLOW_HOME (never the developer's ~/airflow), no example DAGs, and this
repo's dags/ as the DAGs folder. ``dags/`` also goes on sys.path, as
Airflow's DAG processor does, so tests import ``hcp_airflow`` directly.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
FAKE_CLI = Path(__file__).resolve().parent / "fake_cli.py"

_HOME = tempfile.mkdtemp(prefix="hcp-airflow-home-")
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
os.environ["AIRFLOW_HOME"] = _HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS)
if str(DAGS) not in sys.path:
    sys.path.insert(0, str(DAGS))


@pytest.fixture
def fake_cli() -> tuple[str, ...]:
    """``HCP_CLI`` argv for the fake engine."""
    return (sys.executable, str(FAKE_CLI))


@pytest.fixture(autouse=True)
def _clean_hcp_env(monkeypatch):
    """Tests start from no HCP_* configuration, whatever the caller's shell has."""
    for name in list(os.environ):
        if name.startswith(("HCP_", "FAKE_CLI_")):
            monkeypatch.delenv(name)
