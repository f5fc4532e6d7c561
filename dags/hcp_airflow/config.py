"""Settings for the healthcare DAG, read once from the environment.

Everything here is stdlib only and cheap, because the DAG file calls
:func:`load_settings` at parse time (the scheduler parses it every few
seconds). Error messages name the variable, so a bad value shows up as a
DAG import error that says what to fix.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
from collections.abc import Mapping
from urllib.parse import urlsplit
from dataclasses import dataclass
from pathlib import Path

#: The repository root: parent of ``dags/``.
REPO_DIR = Path(__file__).resolve().parents[2]
# V8 flags the engine runs with: a small young generation keeps the
# coordinator's memory flat (docs/performance/HISTORY.md, "How it got here").
ENGINE_NODE_FLAGS = ("--max-semi-space-size=2",)

#: Dataset name (engine ``--dataset``) -> file name in a landing month folder.
LANDING_FILES = {"vitals": "vitals.csv", "labs": "lab_results.csv"}
#: Dataset name -> bundled sample file, relative to the repo.
SAMPLE_FILES = {"vitals": "data/vitals_2024.csv", "labs": "data/lab_results_2024.csv"}
DATASETS = tuple(LANDING_FILES)

#: Run key used when no month is known: the bundled sample as one batch.
SAMPLE_RUN = "sample"

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class Settings:
    """Configuration settled once, at the edge (env -> frozen object)."""

    cli: tuple[str, ...]
    repo_dir: Path
    output_dir: Path
    landing_dir: Path | None
    pushgateway: str | None
    max_active_hospitals: int
    workers: int | None
    pool: str | None

    def workers_per_task(self, cpu_count: int | None = None) -> int:
        """``--workers`` for one mapped task: its share of the machine."""
        if self.workers is not None:
            return self.workers
        cpus = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
        return min(ENGINE_MAX_WORKERS, max(1, cpus // self.max_active_hospitals))


#: The engine's most ``--workers`` (src/config.ts MAX_WORKERS): a share of a larger machine is capped to it, and an
#: ``HCP_WORKERS`` above it is a settings error when the DAG loads, not an exit 2 of every hospital's task.
ENGINE_MAX_WORKERS = 64


@dataclass(frozen=True)
class RunPlan:
    """Where one DAG run reads and writes. Paths are stable per month, so a
    rerun (or clearing one hospital) replaces exactly the same partitions."""

    key: str  # "YYYY-MM" or "sample"
    period: str | None  # passed as --period
    inputs: dict[str, Path]  # dataset -> combined input file
    landing: Path  # where `partition` writes the per-hospital files
    out: Path  # the engine's --out: one directory for every month (``--period`` replaces only its month)

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "period": self.period,
            "inputs": {d: str(p) for d, p in self.inputs.items()},
            "landing": str(self.landing),
            "out": str(self.out),
        }


def _positive_int(environ: Mapping[str, str], name: str, default: int | None, most: int | None = None) -> int | None:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}")
    if most is not None and int(raw) > most:
        raise ValueError(f"{name} must be at most {most}, got {raw!r}")
    return int(raw)


# JavaScript's ``\s`` (src/metrics/url.ts tests ``/^https?:\/\/\S+$/``), not Python's, which differs in a few
# characters (U+FEFF is white space to one only, U+001C-U+001F and U+0085 to the other only).
_JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_ENGINE_URL = re.compile(f"https?://[^{_JS_SPACE}]+")
# Refused in a host by the URL parser the engine uses (WHATWG "forbidden domain code point"; ``%`` too, stricter
# than the engine, which decodes it first); urlsplit takes them as part of the host name.
_FORBIDDEN_IN_HOST = re.compile(r"[\x00-\x20\x7f%<>\\^|]")


def _netloc_host(netloc: str) -> str:
    """The host of a URL's netloc as typed (brackets kept, no userinfo, no port)."""
    host = netloc.rpartition("@")[2]
    if host.startswith("["):
        return host[: host.index("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0]


def _host_parses(netloc_host: str) -> bool:
    """Whether the engine's URL parser (WHATWG) takes this host: a bracketed one must be an IPv6 address (no zone
    id), and one whose last label is a number is read as an IPv4 address, which must then be one
    (``10.0.0.256``, ``gw.123`` and ``1.2.3.4.5`` are refused; ``1.2.3`` and ``0x7f.1`` are taken)."""
    if netloc_host.startswith("["):
        try:
            ipaddress.IPv6Address(netloc_host[1:-1])
        except ValueError:
            return False
        return netloc_host.endswith("]") and "%" not in netloc_host
    labels = netloc_host.split(".")
    if labels and labels[-1] == "" and len(labels) > 1:
        labels = labels[:-1]
    if not re.fullmatch(r"0[xX][0-9a-fA-F]*|\d+", labels[-1]):
        return True  # a domain name
    if len(labels) > 4:
        return False
    numbers = []
    for label in labels:
        if re.fullmatch(r"0[xX][0-9a-fA-F]*", label):
            numbers.append(int(label[2:] or "0", 16))
        elif re.fullmatch(r"0[0-7]+", label):
            numbers.append(int(label, 8))
        elif re.fullmatch(r"\d+", label):
            if len(label) > 1 and label.startswith("0"):
                return False  # 08, 09: not octal, not decimal
            numbers.append(int(label))
        else:
            return False
    if any(n > 255 for n in numbers[:-1]):
        return False
    return numbers[-1] < 256 ** (5 - len(numbers))


def _pushgateway(environ: Mapping[str, str]) -> str | None:
    """``HCP_PUSHGATEWAY``, or ``None``. The engine refuses (exit 2) a URL that is not http(s) or that holds
    credentials, a query or a fragment (src/metrics/url.ts): refused when the DAG loads instead, as an import error
    that never shows the value (it may hold a password). The same test as the engine's, first of all its pattern:
    urlsplit alone lower-cases the scheme (``HTTP://gw``) and takes white space (``http://gw host``), which the engine
    refuses, so every task failed with exit 2. test/fixtures/pushgateway-urls.json is the table both are tested on."""
    raw = environ.get("HCP_PUSHGATEWAY", "").strip()
    if not raw:
        return None
    try:
        url = urlsplit(raw)
        url.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        url = None
    if (
        url is None
        or not _ENGINE_URL.fullmatch(raw)
        or not url.hostname
        or (":" not in url.hostname and _FORBIDDEN_IN_HOST.search(url.hostname))
        or not _host_parses(_netloc_host(url.netloc))
    ):
        raise ValueError("HCP_PUSHGATEWAY must be an http(s) URL")
    # As the engine: an empty ``@`` (``http://@gw``) holds none.
    if url.username or url.password:
        raise ValueError("HCP_PUSHGATEWAY must not hold credentials (user:password@): the engine refuses them")
    if "?" in raw or "#" in raw:
        raise ValueError("HCP_PUSHGATEWAY must not have a query or a fragment: the engine appends each group's path to it")
    return raw


def _dir(environ: Mapping[str, str], name: str, repo_dir: Path) -> Path | None:
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    path = Path(raw).expanduser()
    # Relative paths are relative to the repo, not to wherever Airflow runs.
    return path if path.is_absolute() else (repo_dir / path)


def load_settings(environ: Mapping[str, str] | None = None, repo_dir: Path = REPO_DIR) -> Settings:
    """Read ``HCP_*`` variables into a :class:`Settings`.

    ``HCP_CLI`` (default ``node --max-semi-space-size=2 <repo>/dist/src/cli.js``), ``HCP_OUTPUT_DIR``
    (default ``<repo>/output/airflow``), ``HCP_LANDING_DIR`` (optional),
    ``HCP_PUSHGATEWAY`` (optional; an http(s) base URL without credentials, query or fragment), ``HCP_MAX_ACTIVE_HOSPITALS`` (default 2),
    ``HCP_WORKERS`` (1 to 64, the engine's cap; default: cores // max active hospitals, capped), ``HCP_POOL``.
    """
    env = os.environ if environ is None else environ
    cli_raw = env.get("HCP_CLI", "").strip()
    cli = tuple(shlex.split(cli_raw)) if cli_raw else ("node", *ENGINE_NODE_FLAGS, str(repo_dir / "dist" / "src" / "cli.js"))
    if not cli:
        raise ValueError("HCP_CLI must name a command")
    return Settings(
        cli=cli,
        repo_dir=repo_dir,
        output_dir=_dir(env, "HCP_OUTPUT_DIR", repo_dir) or repo_dir / "output" / "airflow",
        landing_dir=_dir(env, "HCP_LANDING_DIR", repo_dir),
        pushgateway=_pushgateway(env),
        max_active_hospitals=_positive_int(env, "HCP_MAX_ACTIVE_HOSPITALS", 2),
        workers=_positive_int(env, "HCP_WORKERS", None, ENGINE_MAX_WORKERS),
        pool=env.get("HCP_POOL", "").strip() or None,
    )


def run_month(requested: str | None, interval_start, landing_dir: Path | None) -> str | None:
    """The month a run processes, or ``None`` for the whole sample.

    An explicit ``month`` param wins; otherwise, with a landing dir, the
    month of the run's data interval start (a ``@monthly`` data interval is
    exactly one calendar month); with neither, ``None``.
    """
    if requested:
        if not _MONTH.match(requested):
            raise ValueError(f"month must be YYYY-MM, got {requested!r}")
        return requested
    if landing_dir is None:
        return None
    if interval_start is None:
        raise ValueError(
            "HCP_LANDING_DIR is set but this run has no data interval (a manual run?): "
            'trigger it with the month param, e.g. --conf \'{"month": "2024-03"}\''
        )
    return f"{interval_start.year:04d}-{interval_start.month:02d}"


def plan_run(settings: Settings, month: str | None) -> RunPlan:
    """Resolve the input files and the output paths of one run."""
    key = month or SAMPLE_RUN
    if settings.landing_dir is not None and month is not None:
        folder = settings.landing_dir / month
        inputs = {d: folder / name for d, name in LANDING_FILES.items()}
    else:
        inputs = {d: settings.repo_dir / rel for d, rel in SAMPLE_FILES.items()}
    return RunPlan(
        key=key,
        period=month,
        inputs=inputs,
        landing=settings.output_dir / "_landing" / key,
        # One output for all months: a --period run replaces only its month of each
        # hospital, and the report can compare a month with the one before it.
        out=settings.output_dir,
    )
