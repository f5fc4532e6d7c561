"""Run one engine command as a subprocess and turn its outcome into Airflow terms.

The engine (SPEC section 6) logs to stderr and prints a one-line JSON
summary as the last line of stdout. Exit codes map to Airflow like this:

====  ==========================  =====================================
exit  meaning                     Airflow
====  ==========================  =====================================
0     success                     return the summary
2     partition lock held         ``AirflowException`` (retried);
      (``HCP_ERR_LOCKED``)        another run holds it, and will end;
                                  ``AirflowFailException`` when the
                                  summary says ``permanent`` (a lock
                                  a person must remove)
2     bad usage / unusable input  ``AirflowFailException`` (no retries)
3     quality gate failed         ``AirflowFailException`` (no retries)
1     internal error              ``AirflowException`` (retried)
130   interrupted (SIGINT)        ``AirflowException`` (retried)
143   interrupted (SIGTERM)       ``AirflowException`` (retried)
<0    killed by a signal          ``AirflowException`` (retried)
====  ==========================  =====================================

The exception message is the engine's own message, and the engine's
stderr is streamed line by line into the task log, so a failed task reads
like the engine's error, not like a Python traceback about a subprocess.
"""

from __future__ import annotations

import ctypes
import functools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from airflow.sdk.exceptions import AirflowException, AirflowFailException

log = logging.getLogger(__name__)

#: Exit codes that retrying cannot fix.
FATAL_EXIT_CODES = frozenset({2, 3})
#: The engine's error code (src/errors.ts) when another run holds the
#: partition lock: exit 2, yet transient, as that run ends.
LOCKED_ERROR_CODE = "HCP_ERR_LOCKED"
#: The engine's own exit after SIGINT/SIGTERM: it cleans up, then exits 128 + the signal.
INTERRUPT_EXIT_CODES = {128 + s: s.name for s in (signal.SIGINT, signal.SIGTERM)}
#: Environment variables never handed to the engine: Airflow's own config
#: and secrets (connections, variables) are none of its business.
_PRIVATE_ENV_PREFIXES = ("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")
KEY_ENV = "HCP_PSEUDONYM_KEY"
_STDERR_TAIL = 20
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class EngineError(AirflowException):
    """The engine failed in a way worth retrying (exit 1, an interrupt, a signal, a held lock)."""


class EngineFatalError(AirflowFailException):
    """The engine failed in a way a retry cannot fix (exit 2 but a held lock, or 3)."""


def build_command(cli: Sequence[str], command: str, options: Mapping[str, object] | None = None) -> list[str]:
    """``cli + [command] + --options``.

    ``True`` values become bare flags, ``None``/``False`` are left out,
    anything else becomes ``--name value``. Names use underscores in Python
    and dashes on the command line.
    """
    argv = [*cli, command]
    for name, value in (options or {}).items():
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        argv.append(flag)
        if value is not True:
            argv.append(str(value))
    return argv


def engine_env(base: Mapping[str, str], key: str | None = None) -> dict[str, str]:
    """The subprocess environment: ``base`` without Airflow's private
    variables, plus the pseudonymisation key when given (the only way it
    reaches the engine; it is never on the command line). Commands that do
    not pseudonymise get no key at all, even if ``base`` has one."""
    env = {k: v for k, v in base.items() if not k.startswith(_PRIVATE_ENV_PREFIXES) and k != KEY_ENV}
    if key:
        env[KEY_ENV] = key
    return env


def parse_summary(stdout: str) -> dict | None:
    """The JSON object on the last non-empty stdout line, or ``None``."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if not line:
            continue
        try:
            value = json.loads(line)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None
    return None


def _error_code(summary: dict | None) -> str | None:
    """The ``error.code`` of the engine's JSON summary, if any."""
    err = summary.get("error") if summary else None
    code = err.get("code") if isinstance(err, dict) else None
    return code if isinstance(code, str) else None


def _error_permanent(summary: dict | None) -> bool:
    """Whether the engine's JSON error says no wait will help (``error.permanent``: a lock a person must remove)."""
    err = summary.get("error") if summary else None
    return isinstance(err, dict) and err.get("permanent") is True


def _engine_message(summary: dict | None, stderr_tail: Sequence[str]) -> str:
    """The engine's own words: its JSON error, else its ``error:`` line."""
    if summary and isinstance(summary.get("error"), dict):
        err = summary["error"]
        code, message = err.get("code"), err.get("message")
        if message:
            return f"{code}: {message}" if code else str(message)
    failed = _failed_gates(summary)
    if failed:
        return "failed gates: " + "; ".join(failed) + (f" (report: {summary['report']})" if summary.get("report") else "")
    for line in reversed(stderr_tail):
        if line.lower().startswith("error"):
            return line
    return stderr_tail[-1] if stderr_tail else "(no message on stderr)"


#: Failed gates named in a task's failure; the rest are counted (all are in the report).
MAX_GATES_NAMED = 10


def _failed_gates(summary: dict | None) -> list[str]:
    """``report``'s failed gates (its summary's ``gates.failed``), one short phrase each, the first few only."""
    gates = summary.get("gates") if summary else None
    failed = gates.get("failed") if isinstance(gates, dict) else None
    if not isinstance(failed, list):
        return []
    phrases = [_gate_phrase(g) for g in failed if isinstance(g, dict)]
    if len(phrases) > MAX_GATES_NAMED:
        phrases = phrases[:MAX_GATES_NAMED] + [f"and {len(phrases) - MAX_GATES_NAMED} more"]
    return phrases


def _gate_phrase(g: dict) -> str:
    """One failed gate: a reject rate against its threshold (digits enough to tell them apart), or a ledger's gap."""
    where = f"{g.get('dataset')} {g.get('hospital_id')}"
    value, threshold = g.get("value"), g.get("threshold")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return f"{where} {g.get('gate')}"
    if g.get("gate") == "ledger":
        return f"{where} ledger off by {int(value)} rows (read - curated - quarantined)"
    text = f"{value:.4g}"
    if isinstance(threshold, (int, float)) and text == f"{threshold:.4g}":
        text = repr(float(value))  # just over: more digits than the threshold's
    return f"{where} {g.get('gate')} {text} > {threshold}"


def classify_exit(
    returncode: int, command: str, message: str, code: str | None = None, permanent: bool = False
) -> Exception | None:
    """The exception for an engine exit code and its summary's error code (``None`` for success).

    ``permanent``: the summary's ``error.permanent``, a held-lock refusal that no retry ends.
    """
    if returncode == 0:
        return None
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return EngineError(f"engine `{command}` was killed by {name}; will retry")
    if returncode == 2 and code == LOCKED_ERROR_CODE and permanent:
        return EngineFatalError(
            f"engine `{command}` could not take its partition lock, and no retry will (exit 2); "
            f"a person has to look: {message}"
        )
    if returncode == 2 and code == LOCKED_ERROR_CODE:
        return EngineError(
            f"engine `{command}` could not take its partition lock, another run holds it (exit 2); "
            f"will retry: {message}"
        )
    if returncode in FATAL_EXIT_CODES:
        what = "quality gate failed" if returncode == 3 else "unusable input or bad usage"
        return EngineFatalError(f"engine `{command}` failed (exit {returncode}, {what}): {message}")
    if returncode in INTERRUPT_EXIT_CODES:
        name = INTERRUPT_EXIT_CODES[returncode]
        return EngineError(f"engine `{command}` was interrupted by {name} (exit {returncode}); will retry: {message}")
    return EngineError(f"engine `{command}` failed (exit {returncode}, internal error; will retry): {message}")


def run_engine(
    cli: Sequence[str],
    command: str,
    options: Mapping[str, object] | None = None,
    *,
    env: Mapping[str, str],
    cwd: str | os.PathLike | None = None,
    logger: logging.Logger | None = None,
) -> dict:
    """Run ``cli command --options``; return its JSON summary or raise.

    stderr is relayed to ``logger`` as it arrives (long runs stay visible);
    stdout is collected for the summary. If this process is interrupted
    (task timeout, SIGTERM from Airflow), the engine is terminated too, so
    no orphan keeps writing. If it dies hard (SIGKILL, OOM kill), Linux
    sends the engine SIGTERM (see ``_die_with_parent``).
    """
    logger = logger or log
    argv = build_command(cli, command, options)
    # argv holds paths and flags only, never the key: safe to log.
    logger.info("running: %s", " ".join(argv))
    _check_executable(cli)
    tail: deque[str] = deque(maxlen=_STDERR_TAIL)
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
            cwd=cwd,
            text=True,
            encoding="utf-8",
            errors="replace",
            preexec_fn=_die_with_parent(os.getpid()),
        )
    except OSError as exc:
        raise EngineFatalError(f"cannot start the engine {cli[0]!r}: {exc.strerror or exc}; set HCP_CLI") from None
    except subprocess.SubprocessError as exc:  # the preexec_fn failed in the child
        raise EngineError(f"cannot start the engine {cli[0]!r}: {exc}; will retry") from None

    def relay_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            line = line.rstrip("\n")
            if line:
                tail.append(line)
                logger.info("[engine] %s", line)

    relay = threading.Thread(target=relay_stderr, name=f"hcp-{command}-stderr", daemon=True)
    relay.start()
    try:
        stdout = proc.stdout.read() if proc.stdout else ""
        returncode = proc.wait()
    finally:
        if proc.poll() is None:
            _stop(proc, logger)
        relay.join(timeout=5)
    summary = parse_summary(stdout)
    error = classify_exit(
        returncode, command, _engine_message(summary, list(tail)), _error_code(summary), _error_permanent(summary)
    )
    if error is not None:
        raise error  # Airflow logs it, with the engine's message, as the task's failure
    if summary is None:
        raise EngineFatalError(f"engine `{command}` exited 0 but printed no JSON summary on stdout")
    if summary.get("status") not in (None, "ok"):
        raise EngineFatalError(f"engine `{command}` exited 0 with status {summary.get('status')!r}")
    return summary


def _check_executable(cli: Sequence[str]) -> None:
    """Fail fast (no retries) when the engine is plainly not there, e.g.
    ``node dist/src/cli.js`` before ``npm run build``."""
    for part in cli[1:]:
        if part.endswith((".js", ".mjs", ".cjs", ".py")) and not Path(part).exists():
            raise EngineFatalError(f"engine entry point {part} does not exist; run `npm run build` or set HCP_CLI")


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has Linux send the engine SIGTERM when ``parent``
    (this task process) dies, however it dies; ``None`` where ``prctl`` is
    missing. Without it, an engine orphaned by a SIGKILLed task keeps its
    partition lock, and the task's retry fails on it.

    Everything is looked up here, before the fork: the child only calls
    ``prctl`` and ``getppid`` (no imports, no locks). The signal comes when
    the *thread* that forked exits; ``run_engine`` waits for the engine in
    that thread, so that is when the task dies. It reaches the engine
    itself only, not processes a wrapper script in ``HCP_CLI`` starts.
    """
    prctl = _prctl()
    if prctl is None:
        return None
    term = int(signal.SIGTERM)

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, term, 0, 0, 0)
        if os.getppid() != parent:
            # The task died before prctl took effect: no signal will come.
            os._exit(128 + term)

    return preexec


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl`` (Linux), looked up once: ``CDLL(None)`` is the running
    process, which has libc loaded (``ctypes.util.find_library`` would run
    ``ldconfig`` on every engine start)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


def _stop(proc: subprocess.Popen, logger: logging.Logger) -> None:
    logger.warning("stopping the engine (pid %s)", proc.pid)
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
