"""Turn the engine's ``partition`` summaries into the per-hospital map list.

Each element becomes one mapped task instance (named by ``hospital_id``),
so the list is sorted: the same input gives the same map indexes, and
clearing one hospital's task reruns exactly that hospital.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from airflow.sdk.exceptions import AirflowFailException

#: SPEC section 2: a hospital_id becomes a directory name, nothing else may.
HOSPITAL_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
#: Where the engine puts rows whose hospital_id is invalid (quarantined, not dropped).
INVALID_HOSPITAL = "__invalid__"


def hospitals_from_partitions(summaries: Mapping[str, dict], landing: Path) -> list[dict]:
    """Merge ``{dataset: partition summary}`` into one entry per hospital.

    Returns ``[{"hospital_id": "H01", "files": {"vitals": path, "labs": path},
    "rows": {"vitals": n, "labs": n}}, ...]`` sorted by hospital_id; a
    hospital missing from one dataset simply has no file for it. Raises
    ``AirflowFailException`` if a summary is malformed, names an unsafe
    hospital_id, points outside ``landing`` or loses rows.
    """
    landing = Path(landing).resolve()
    by_hospital: dict[str, dict] = {}
    for dataset, summary in summaries.items():
        parts = summary.get("partitions")
        if not isinstance(parts, list):
            raise AirflowFailException(f"partition summary for {dataset} has no 'partitions' list")
        total = 0
        for part in parts:
            hospital_id = part.get("hospital_id")
            if not isinstance(hospital_id, str) or not HOSPITAL_ID.match(hospital_id):
                raise AirflowFailException(f"partition for {dataset} has an unsafe hospital_id {hospital_id!r}")
            path = Path(str(part.get("path", ""))).resolve()
            if landing not in path.parents:
                raise AirflowFailException(f"partition file {path} for {dataset} is outside {landing}")
            rows = int(part.get("rows", 0))
            total += rows
            entry = by_hospital.setdefault(hospital_id, {"hospital_id": hospital_id, "files": {}, "rows": {}})
            if dataset in entry["files"]:
                raise AirflowFailException(f"hospital {hospital_id} appears twice in the {dataset} partitions")
            entry["files"][dataset] = str(path)
            entry["rows"][dataset] = rows
        rows_read = summary.get("rows_read")
        if rows_read is not None and int(rows_read) != total:
            # The ledger: no row may be lost between the combined file and its partitions.
            raise AirflowFailException(f"partition of {dataset} lost rows: read {rows_read}, partitions hold {total}")
    return [by_hospital[h] for h in sorted(by_hospital)]
