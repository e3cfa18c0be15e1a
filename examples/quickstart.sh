#!/usr/bin/env bash
# The trailseal quickstart: a log on the embedded SQLite default, a sample of
# realistic audit events, a full verification and an inclusion proof.
# Safe to run again: it works in a fresh directory each time.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
data="${1:-$(mktemp -d)/trailseal-data}"
step() { printf '\n$ %s\n' "$*" >&2; "$@"; }

step trailseal init --data "$data" --origin quickstart.example/audit
step trailseal append "$here/sample-events.jsonl" --data "$data"
step trailseal search --actor u-5521 --data "$data" --table
step trailseal verify --data "$data" --table
step trailseal checkpoint --data "$data"
step trailseal prove inclusion 3 --data "$data"
printf '\nThe log is in %s. Try: trailseal get 3 --data %s\n' "$data" "$data" >&2
