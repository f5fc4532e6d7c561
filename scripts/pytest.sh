#!/usr/bin/env bash
# Run the Airflow DAG tests (test/dags, see pytest.ini) in the project venv.
#
#   scripts/pytest.sh [pytest args...]     e.g. scripts/pytest.sh -k integrity -x
#
# Ensures .venv (scripts/venv.sh), writes a JUnit XML report to
# $HCP_PYTEST_JUNIT (default .pytest-results.xml), and exits with pytest's
# code, except that 5 ("no tests collected") is a failure: a run that tests
# nothing must not pass.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

bash "$repo/scripts/venv.sh" || exit $?

junit="${HCP_PYTEST_JUNIT:-.pytest-results.xml}"
"$repo/.venv/bin/python" -m pytest --junitxml="$junit" "$@"
code=$?
if [[ $code -eq 5 ]]; then
  echo "pytest.sh: no tests were collected; treating as a failure" >&2
  exit 1
fi
exit $code
