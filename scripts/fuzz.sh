#!/usr/bin/env bash
# Runs every fuzz target of the workspace briefly: scripts/fuzz.sh [FUZZTIME]
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-5s}"
for dir in $(go list -f '{{.Dir}}' -m); do
  for pkg in $(cd "$dir" && go list ./...); do
    pdir=$(go list -f '{{.Dir}}' "$pkg")
    for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$pdir"/*_test.go 2>/dev/null | sed 's/^func //'); do
      echo "== $pkg $f ($t)"
      # A worker busy on one input when -fuzztime runs out makes Go's fuzzing
      # engine fail with "context deadline exceeded" and no crasher: run that
      # target once more. A real hang fails again; a crash never gets here.
      if ! out=$(go test -run='^$' -fuzz="^$f\$" -fuzztime="$t" "$pkg" 2>&1); then
        echo "$out"
        if grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written' <<<"$out"; then
          echo "== $pkg $f: deadline hit while a worker was busy; once more"
          go test -run='^$' -fuzz="^$f\$" -fuzztime="$t" "$pkg"
        else
          exit 1
        fi
      else
        echo "$out"
      fi
    done
  done
done
