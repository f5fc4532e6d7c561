"""Find the pseudonymisation key for the engine, at task run time only.

Lookup order: Airflow Variable ``hcp_pseudonym_key``, then the password of
Connection ``hcp_pseudonym_key`` (what a secrets backend usually serves),
then the worker's ``HCP_PSEUDONYM_KEY`` environment variable. The value is
registered with Airflow's secret masker and handed to the engine through
its environment only (see ``cli.engine_env``), never on a command line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

log = logging.getLogger(__name__)

VARIABLE = "hcp_pseudonym_key"
CONNECTION = "hcp_pseudonym_key"
ENV = "HCP_PSEUDONYM_KEY"


def _from_variable() -> str | None:
    from airflow.sdk import Variable

    try:
        return Variable.get(VARIABLE, default=None)
    except Exception:  # no metadata DB/API reachable (e.g. unit tests): just not configured
        return None


def _from_connection() -> str | None:
    from airflow.sdk import Connection

    try:
        return Connection.get(CONNECTION).password
    except Exception:  # AirflowNotFoundException, or no API: not configured
        return None


def resolve_key(environ: Mapping[str, str] | None = None, *, use_airflow: bool = True) -> tuple[str | None, str]:
    """``(key, source)``; ``(None, "none")`` when no key is configured
    (the engine, run with ``--require-key``, then fails with exit 2)."""
    env = os.environ if environ is None else environ
    lookups = [("variable", _from_variable), ("connection", _from_connection)] if use_airflow else []
    for source, lookup in lookups:
        key = lookup()
        if key:
            return key, source
    key = env.get(ENV) or None
    return key, ("env" if key else "none")


def mask(key: str | None) -> None:
    """Make Airflow redact the key from every log line of this task."""
    if not key:
        return
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - older task SDKs
        return
    mask_secret(key, name=VARIABLE)
