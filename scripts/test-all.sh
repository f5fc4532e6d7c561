#!/usr/bin/env bash
# Runs every test suite (vitest, then pytest for the Airflow DAG) and ends
# with one line totalling both: "N passed, N failed". Exits non-zero when a
# test failed or a suite could not run. Expects `npm run build` to have run.
set -uo pipefail
cd "$(dirname "$0")/.."
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

echo "== vitest" >&2
npx vitest run --reporter=default --reporter=json --outputFile.json="$results/vitest.json"
vitest_rc=$?

echo "== pytest (Airflow DAG)" >&2
HCP_PYTEST_JUNIT="$results/pytest.xml" bash scripts/pytest.sh
pytest_rc=$?

read -r passed failed < <(node -e '
const fs = require("fs");
let p = 0, f = 0;
try { const v = JSON.parse(fs.readFileSync(process.argv[1], "utf8")); p += v.numPassedTests; f += v.numFailedTests; } catch { f += 1; }
try {
  const x = fs.readFileSync(process.argv[2], "utf8");
  let tests = 0, bad = 0, skipped = 0;
  for (const m of x.matchAll(/<testsuite\b[^>]*>/g)) {
    const attr = (n) => Number((m[0].match(new RegExp(`\\b${n}="(\\d+)"`)) || [0, 0])[1]);
    tests += attr("tests"); bad += attr("failures") + attr("errors"); skipped += attr("skipped");
  }
  p += tests - bad - skipped; f += bad;
} catch { f += 1; }
console.log(p, f);
' "$results/vitest.json" "$results/pytest.xml")

echo "${passed} passed, ${failed} failed"
if [ "$vitest_rc" -ne 0 ] || [ "$pytest_rc" -ne 0 ] || [ "$failed" -ne 0 ]; then exit 1; fi
