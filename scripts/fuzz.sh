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
      go test -run='^$' -fuzz="^$f\$" -fuzztime="$t" "$pkg"
    done
  done
done
