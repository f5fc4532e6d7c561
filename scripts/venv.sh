#!/usr/bin/env bash
# Create or refresh the Python venv (.venv at the repo root) for the Airflow DAG
# and its tests, from requirements-lock.txt exactly (--no-deps + pip check: the
# lock is the whole set, no resolver, no constraints file to fetch).
#
# Idempotent: .venv/.hcp-lock.sha256 holds a hash of the lock and the Python
# version, written only after a complete install; if it matches, nothing
# happens. If the lock changed (or an install was interrupted), the venv is
# rebuilt from scratch so it never carries packages the lock no longer lists.
#
# Env: PYTHON (default python3, must be >= 3.10). Progress goes to stderr.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
lock="$repo/requirements-lock.txt"
stamp="$venv/.hcp-lock.sha256"
python="${PYTHON:-python3}"

log() { echo "venv.sh: $*" >&2; }

command -v "$python" >/dev/null || { log "error: $python not found (set PYTHON)"; exit 2; }
[[ -f "$lock" ]] || { log "error: $lock is missing"; exit 2; }
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  log "error: $("$python" --version 2>&1) is too old; Airflow 3 needs Python >= 3.10 (set PYTHON)"
  exit 2
fi

want="$( { cat "$lock"; "$python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"

# Two concurrent callers (e.g. parallel test jobs) must not build the venv twice.
# (The lock is taken on this script itself, so no lock file is left behind.)
exec 9<"${BASH_SOURCE[0]}"
if command -v flock >/dev/null; then flock 9; fi

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$venv/bin/python" ]]; then
  log "up to date ($venv)"
  exit 0
fi

if [[ -e "$venv" ]]; then
  log "stale or incomplete; rebuilding $venv"
  rm -rf "$venv"
fi
log "creating $venv with $("$python" --version 2>&1)"
"$python" -m venv "$venv"
log "installing $(grep -cE '^[A-Za-z0-9]' "$lock") pinned packages from requirements-lock.txt (a few minutes)"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
  --no-deps --requirement "$lock" >&2
"$venv/bin/python" -m pip check --disable-pip-version-check >&2
echo "$want" >"$stamp"
log "ready ($venv)"
