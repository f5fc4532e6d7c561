"""The pandas + pandera reference: the same `process` + `stats` job on vitals.

What a Python data engineer would write: pandas reads the CSV (pyarrow
engine, malformed records handed to a callback), pandera validates the rows
with one named check per rule code (lazy, so every failed rule of a row is
reported), pandas does the unit conversion, flags, pseudonyms (a real
HMAC-SHA256), exact-duplicate removal, `to_parquet(partition_cols=...)` and
the groupby statistics.

    read_csv(engine="pyarrow", on_bad_lines=callback) -> row.field_count
      -> derive (trim, date, number, unit factor) -> pandera lazy validate
      -> duplicated(keep="first") -> quarantine CSVs per hospital
      -> curated Parquet partitioned by hospital_id, month
      -> groupby stats (+ ALL rollup) -> stats/monthly_vitals.{parquet,csv}

Departures from SPEC (neutral for timing): line_number is the record index
+ 2 (and empty for records the reader rejected, whose position pyarrow does
not report with threads on); the registry comes from src/registry.ts as
linear (factor, offset) conversions, written by the runner to a JSON file.

Usage: python bench/pandas_job.py --input F --out DIR --registry R.json
       [--as-of YYYY-MM-DD]   (key: HCP_PSEUDONYM_KEY)
Prints one JSON line: rows, per-step timings, library versions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import json
import os
import shutil
import sys
import time
import warnings

import numpy as np
import pandas as pd
import pandera
import pandera.pandas as pa
import pyarrow as pa_arrow

FIELDS = ["hospital_id", "measurement_date", "patient_id", "vital_type", "value", "unit"]
HOSPITAL_RE = r"[A-Za-z0-9_-]{1,32}"
PATIENT_RE = r"[A-Za-z0-9_-]{1,64}"
DATE_RE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
DECIMAL_RE = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
QUANTILES = [0.05, 0.25, 0.5, 0.75, 0.95, 0.99]
# The order the engine reports codes in (src/rules/row.ts).
CODE_ORDER = [
    "hospital_id.missing", "hospital_id.invalid", "patient_id.missing", "patient_id.invalid",
    "date.missing", "date.invalid", "date.in_future", "vital_type.missing", "vital_type.unknown",
    "value.missing", "value.invalid", "unit.missing", "unit.not_allowed", "value.out_of_range",
]


def read(path: str) -> tuple[pd.DataFrame, list[str]]:
    """All columns as strings; records with the wrong field count go to `bad`."""
    bad: list[str] = []

    def on_bad(row) -> str:
        bad.append(row.text)
        return "skip"

    df = pd.read_csv(path, dtype=str, engine="pyarrow", keep_default_na=False, on_bad_lines=on_bad)
    missing = [c for c in FIELDS if c not in df.columns]
    if missing:
        sys.exit(f"pandas_job: missing column(s) {missing}")
    return df[FIELDS], bad


def derive(raw: pd.DataFrame, registry: list[dict]) -> pd.DataFrame:
    """Trimmed fields plus the parsed date, number, measure and unit conversion."""
    d = pd.DataFrame({c: raw[c].str.strip() for c in FIELDS}, index=raw.index)
    ok_date = d["measurement_date"].str.fullmatch(DATE_RE)
    d["day"] = pd.to_datetime(d["measurement_date"].where(ok_date), format="%Y-%m-%d", errors="coerce")
    ok_num = d["value"].str.fullmatch(DECIMAL_RE)
    d["num"] = pd.to_numeric(d["value"].where(ok_num), errors="coerce")
    measures = pd.DataFrame(
        [
            {"vital_type": m["name"], "canonical": m["canonical"], "plo": m["plausible"][0], "phi": m["plausible"][1],
             "nlo": (m["normal"] or [np.nan, np.nan])[0], "nhi": (m["normal"] or [np.nan, np.nan])[1]}
            for m in registry
        ]
    )
    units = pd.DataFrame(
        [{"vital_type": m["name"], "unit": u["unit"], "factor": u["factor"], "offset": u["offset"]} for m in registry for u in m["units"]]
        + [{"vital_type": m["name"], "unit_lower": m["canonical"].lower(), "factor": 1.0, "offset": 0.0} for m in registry]
    )
    alt = units[units["unit"].notna()][["vital_type", "unit", "factor", "offset"]]
    canon = units[units["unit_lower"].notna()][["vital_type", "unit_lower", "factor", "offset"]]
    d = d.join(measures.set_index("vital_type"), on="vital_type")
    d = d.join(alt.set_index(["vital_type", "unit"]), on=["vital_type", "unit"])
    d["unit_lower"] = d["unit"].str.lower()
    d = d.join(canon.set_index(["vital_type", "unit_lower"]), on=["vital_type", "unit_lower"], rsuffix="_c")
    d["factor"] = d["factor"].fillna(d["factor_c"])
    d["offset"] = d["offset"].fillna(d["offset_c"])
    d["canonical_value"] = d["num"] * d["factor"] + d["offset"]
    return d.drop(columns=["unit_lower", "factor_c", "offset_c"])


def schema(as_of: pd.Timestamp) -> pa.DataFrameSchema:
    """One named check per rule code; each returns True where the row passes."""
    def present(code: str) -> pa.Check:
        return pa.Check(lambda s: s != "", name=code)

    def matches(regex: str, code: str) -> pa.Check:
        return pa.Check(lambda s: (s == "") | s.str.fullmatch(regex), name=code)

    def row(code: str, fn) -> pa.Check:
        return pa.Check(fn, name=code)

    return pa.DataFrameSchema(
        {
            "hospital_id": pa.Column(str, [present("hospital_id.missing"), matches(HOSPITAL_RE, "hospital_id.invalid")]),
            "patient_id": pa.Column(str, [present("patient_id.missing"), matches(PATIENT_RE, "patient_id.invalid")]),
            "measurement_date": pa.Column(str, [present("date.missing")]),
            "vital_type": pa.Column(str, [present("vital_type.missing")]),
            "value": pa.Column(str, [present("value.missing")]),
            "unit": pa.Column(str, [present("unit.missing")]),
            "day": pa.Column("datetime64[ns]", nullable=True),
            "num": pa.Column(float, nullable=True),
            "canonical_value": pa.Column(float, nullable=True),
        },
        checks=[
            row("date.invalid", lambda df: (df["measurement_date"] == "") | df["day"].notna()),
            row("date.in_future", lambda df: ~(df["day"] > as_of)),
            row("vital_type.unknown", lambda df: (df["vital_type"] == "") | df["canonical"].notna()),
            row("value.invalid", lambda df: (df["value"] == "") | df["num"].notna()),
            row("unit.not_allowed", lambda df: (df["unit"] == "") | df["canonical"].isna() | df["factor"].notna()),
            row("value.out_of_range", lambda df: df["canonical_value"].isna() | df["canonical_value"].between(df["plo"], df["phi"])),
        ],
        coerce=False,
    )


def validate(d: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    """Reason codes per row (';'-joined, '' when the row passes every rule)."""
    reasons = pd.Series("", index=d.index, dtype=object)
    try:
        schema(as_of).validate(d, lazy=True)
    except pandera.errors.SchemaErrors as err:
        fc = err.failure_cases
        fc = fc[fc["index"].notna() & fc["check"].isin(CODE_ORDER)][["index", "check"]].drop_duplicates()
        fc["order"] = fc["check"].map({c: i for i, c in enumerate(CODE_ORDER)})
        joined = fc.sort_values(["index", "order"]).groupby("index")["check"].agg(";".join)
        reasons.loc[joined.index.astype(np.int64)] = joined.values
    return reasons


def pseudonyms(hospital: pd.Series, patient: pd.Series, key: bytes) -> pd.Series:
    """patient_key = first 32 hex chars of HMAC-SHA256(key, hospital|patient), one HMAC per distinct pair."""
    ids = hospital + "|" + patient
    codes, uniques = pd.factorize(ids)
    keys = np.array([hmac.new(key, u.encode(), hashlib.sha256).hexdigest()[:32] for u in uniques], dtype=object)
    return pd.Series(keys[codes], index=hospital.index)


def write_quarantine(out: str, source: str, raw: pd.DataFrame, d: pd.DataFrame, reasons: pd.Series, bad: list[str]) -> int:
    rej = reasons != ""
    q = raw[rej].copy()
    q.insert(0, "reason_codes", reasons[rej])
    q.insert(0, "line_number", (q.index + 2).astype(str))
    q.insert(0, "source_file", source)
    q["raw_line"] = ""
    q["hospital_dir"] = d.loc[rej, "hospital_id"].where(d.loc[rej, "hospital_id"].str.fullmatch(HOSPITAL_RE), "__invalid__")
    if bad:
        first = pd.Series(bad).str.split(",", n=1).str[0].str.strip(' "')
        b = pd.DataFrame({"source_file": source, "line_number": "", "reason_codes": "row.field_count", "raw_line": bad,
                          "hospital_dir": first.where(first.str.fullmatch(HOSPITAL_RE), "__invalid__")})
        q = pd.concat([q, b], ignore_index=True).fillna("")
    for h, part in q.groupby("hospital_dir", sort=True):
        folder = os.path.join(out, "quarantine", "vitals", f"hospital_id={h}")
        os.makedirs(folder, exist_ok=True)
        part.drop(columns=["hospital_dir"]).to_csv(os.path.join(folder, "rejects.csv"), index=False)
    return len(q)


def curated_frame(d: pd.DataFrame, key: bytes) -> pd.DataFrame:
    flag = np.where(d["nlo"].isna(), None, np.where(d["canonical_value"] < d["nlo"], "L", np.where(d["canonical_value"] > d["nhi"], "H", "N")))
    return pd.DataFrame(
        {
            "hospital_id": d["hospital_id"],
            "patient_key": pseudonyms(d["hospital_id"], d["patient_id"], key),
            "measurement_date": d["day"].dt.date.astype(pd.ArrowDtype(pa_arrow.date32())),
            "month": d["measurement_date"].str.slice(0, 7),
            "vital_type": d["vital_type"],
            "value": d["canonical_value"],
            "unit": d["canonical"],
            "source_value": d["value"],
            "source_unit": d["unit"],
            "flag": flag,
            "nlo": d["nlo"],
            "nhi": d["nhi"],
            "patient_id": d["patient_id"],
        }
    )


def stats(cur: pd.DataFrame) -> pd.DataFrame:
    """One row per (hospital, month, measure), plus hospital ALL; patients are scoped by hospital."""
    cur = cur.assign(pid=cur["hospital_id"] + "|" + cur["patient_id"], low=cur["value"] < cur["nlo"], high=cur["value"] > cur["nhi"])
    frames = []
    for keys, label in ((["hospital_id", "month", "vital_type"], None), (["month", "vital_type"], "ALL")):
        g = cur.groupby(keys, sort=True)
        s = g["value"].agg(n="count", mean="mean", stddev="std", min="min", max="max")
        s["unit"] = g["unit"].first()
        s["n_patients"] = g["pid"].nunique()
        q = g["value"].quantile(QUANTILES).unstack()
        q.columns = [f"p{round(p * 100):02d}" for p in QUANTILES]
        s = s.join(q)
        s["n_low"] = g["low"].sum()
        s["n_high"] = g["high"].sum()
        s = s.reset_index()
        if label:
            s.insert(0, "hospital_id", label)
        frames.append(s)
    out = pd.concat(frames, ignore_index=True).rename(columns={"vital_type": "measure"})
    out.insert(0, "dataset", "vitals")
    cols = ["dataset", "hospital_id", "month", "measure", "unit", "n", "n_patients", "mean", "stddev", "min", "max",
            *[f"p{round(p * 100):02d}" for p in QUANTILES], "n_low", "n_high"]
    return out[cols].sort_values(["hospital_id", "month", "measure"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--input", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--registry", required=True, help="JSON written by bench/run (src/registry.ts as linear conversions)")
    ap.add_argument("--as-of", default=dt.date.today().isoformat())
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    key = (os.environ.get("HCP_PSEUDONYM_KEY") or "hcp-demo-key-not-for-production").encode()
    with open(a.registry, encoding="utf-8") as f:
        registry = json.load(f)
    as_of = pd.Timestamp(a.as_of)
    started = time.perf_counter()
    shutil.rmtree(a.out, ignore_errors=True)
    os.makedirs(os.path.join(a.out, "stats"), exist_ok=True)
    timings: dict[str, float] = {}

    def step(name: str, t0: float) -> float:
        t1 = time.perf_counter()
        timings[name] = round((t1 - t0) * 1000)
        return t1

    t = time.perf_counter()
    raw, bad = read(a.input)
    t = step("read", t)
    d = derive(raw, registry)
    t = step("derive", t)
    reasons = validate(d, as_of)
    t = step("validate", t)
    ok = reasons == ""
    dup = d[ok].duplicated(subset=FIELDS, keep="first")
    reasons.loc[dup[dup].index] = "duplicate.exact"
    ok = reasons == ""
    t = step("dedupe", t)
    rejected = write_quarantine(a.out, a.input, raw, d, reasons, bad)
    t = step("quarantine", t)
    cur = curated_frame(d[ok], key)
    t = step("transform", t)
    cur.drop(columns=["nlo", "nhi", "patient_id"]).to_parquet(
        os.path.join(a.out, "curated", "vitals"), partition_cols=["hospital_id", "month"], index=False
    )
    t = step("parquet", t)
    st = stats(cur)
    st.to_parquet(os.path.join(a.out, "stats", "monthly_vitals.parquet"), index=False)
    st.to_csv(os.path.join(a.out, "stats", "monthly_vitals.csv"), index=False)
    step("stats", t)
    accepted = int(ok.sum())
    print(json.dumps({
        "tool": "pandas",
        "versions": {"python": sys.version.split()[0], "pandas": pd.__version__, "pandera": pandera.__version__, "pyarrow": pa_arrow.__version__, "numpy": np.__version__},
        "rows": {"read": accepted + rejected, "accepted": accepted, "rejected": rejected},
        "stats_rows": len(st),
        "timings_ms": timings,
        "duration_ms": round((time.perf_counter() - started) * 1000),
    }))


if __name__ == "__main__":
    main()
