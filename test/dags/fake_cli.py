#!/usr/bin/env python3
"""A stand-in for the engine CLI (SPEC section 6) for the DAG's own tests.

It keeps the contract the DAG relies on (commands, options, exit codes,
stderr messages, the JSON summary as the last stdout line, output paths),
and nothing else: no row rules, no real statistics. Knobs, all env vars:

- ``FAKE_CLI_EXIT="process=1,report=3"``: exit with that code for a command;
  ``process=2:HCP_ERR_LOCKED`` also names the summary's error code
- ``FAKE_CLI_SIGNAL="process"``: the command kills itself with SIGKILL
- ``FAKE_CLI_SLEEP="process=60"``: the command runs that many seconds first
- ``FAKE_CLI_RECORD=/path/calls.jsonl``: append ``{"argv", "key", "pid"}`` per call
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import sys
import time
from pathlib import Path

REQUIRED = {
    "vitals": ["hospital_id", "measurement_date", "patient_id", "vital_type", "value", "unit"],
    "labs": ["hospital_id", "test_date", "patient_id", "test_type", "result_value", "reference_range", "unit"],
}
HOSPITAL_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
RESERVED = {"ALL", "__invalid__"}


def safe_hospital(h: str) -> str:
    return h if HOSPITAL_ID.match(h) and h not in RESERVED else "__invalid__"


def summary(command: str, **fields) -> None:
    print("some human noise on stdout")
    print(json.dumps({"command": command, "status": "ok", **fields}))


def fail(command: str, code: int, err: str, message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    print(json.dumps({"command": command, "status": "error", "exit_code": code,
                      "error": {"code": err, "message": message}}))
    sys.exit(code)


def parse(argv: list[str]) -> tuple[str, dict]:
    command, opts, i = argv[0], {}, 1
    while i < len(argv):
        name = argv[i][2:]
        if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            opts[name], i = argv[i + 1], i + 2
        else:
            opts[name], i = True, i + 1
    return command, opts


def read_rows(dataset: str, path: str, command: str) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        missing = [c for c in (["hospital_id"] if command == "partition" else REQUIRED[dataset]) if c not in header]
        if missing:
            fail(command, 2, "HCP_ERR_BAD_HEADER", f"{path}: missing required column '{missing[0]}'")
        return list(reader.fieldnames or []), list(reader)


def main() -> None:
    command, opts = parse(sys.argv[1:])
    if record := os.environ.get("FAKE_CLI_RECORD"):
        with open(record, "a") as fh:
            fh.write(json.dumps({"argv": sys.argv, "key": os.environ.get("HCP_PSEUDONYM_KEY"),
                                 "pid": os.getpid()}) + "\n")
    forced = dict(kv.split("=") for kv in os.environ.get("FAKE_CLI_EXIT", "").split(",") if kv)
    if command in forced:
        code, _, err = forced[command].partition(":")
        fail(command, int(code), err or "HCP_ERR_FORCED", f"forced exit {code} for {command}")
    if command in os.environ.get("FAKE_CLI_SIGNAL", "").split(","):
        os.kill(os.getpid(), signal.SIGKILL)
    sleeps = dict(kv.split("=") for kv in os.environ.get("FAKE_CLI_SLEEP", "").split(",") if kv)
    if command in sleeps:
        time.sleep(float(sleeps[command]))
    print(f"{command}: starting", file=sys.stderr)

    if command == "partition":
        dataset = opts["dataset"]
        fields, rows = read_rows(dataset, opts["input"], command)
        groups: dict[str, list[dict]] = {}
        for row in rows:
            h = row["hospital_id"].strip()
            groups.setdefault(safe_hospital(h), []).append(row)
        target = Path(opts["landing"]) / dataset
        target.mkdir(parents=True, exist_ok=True)
        parts = []
        for h, group in sorted(groups.items()):
            path = target / f"hospital_id={h}.csv"
            with open(path, "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=fields)
                writer.writeheader()
                writer.writerows(group)
            parts.append({"hospital_id": h, "path": str(path.resolve()), "rows": len(group)})
        summary(command, dataset=dataset, rows_read=len(rows), partitions=parts)
    elif command == "validate":
        read_rows(opts["dataset"], opts["input"], command)
        summary(command, dataset=opts["dataset"])
    elif command == "process":
        if opts.get("require-key") and not os.environ.get("HCP_PSEUDONYM_KEY"):
            fail(command, 2, "HCP_ERR_KEY_MISSING", "HCP_PSEUDONYM_KEY is not set and --require-key was given")
        dataset = opts["dataset"]
        _, rows = read_rows(dataset, opts["input"], command)
        hospital = safe_hospital(rows[0]["hospital_id"].strip()) if rows else "none"
        sketch = Path(opts["out"]) / "sketches" / dataset / f"hospital_id={hospital}.json"
        sketch.parent.mkdir(parents=True, exist_ok=True)
        sketch.write_text(json.dumps({"n": len(rows), "period": opts.get("period")}))
        summary(command, dataset=dataset, rows={"read": len(rows), "accepted": len(rows), "rejected": 0},
                hospitals=[hospital])
    elif command == "stats":
        out = Path(opts["out"])
        (out / "stats").mkdir(parents=True, exist_ok=True)
        for dataset in REQUIRED:
            n = sum(json.loads(p.read_text())["n"] for p in (out / "sketches" / dataset).glob("*.json"))
            (out / "stats" / f"monthly_{dataset}.csv").write_text(f"dataset,hospital_id,n\n{dataset},ALL,{n}\n")
        summary(command)
    elif command == "report":
        out = Path(opts["out"])
        (out / "quality").mkdir(parents=True, exist_ok=True)
        (out / "quality" / "report.json").write_text(json.dumps({"max_reject_rate": opts.get("max-reject-rate")}))
        (out / "_SUCCESS").write_text("")
        summary(command, gates=[])
    else:
        fail(command, 2, "HCP_ERR_USAGE", f"unknown command {command}")


if __name__ == "__main__":
    main()
