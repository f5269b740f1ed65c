#!/usr/bin/env bash
# bench/import.sh — how long `lscp-mail subscribers import` takes for generated practitioners.
#
# Usage: bench/import.sh [ROWS]        (default 100000; 3 runs, the median is reported)
#
# Needs a PostgreSQL server in DATABASE_URL: `eval "$(scripts/test --only-services)"` starts a
# local one and sets it. Each run imports into a fresh database of its own (created by
# `lscp-mail db migrate`, dropped afterwards), then imports the same file again to time the
# idempotent path, where every row is already there.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

rows="${1:-100000}"
runs=3
: "${DATABASE_URL:?set DATABASE_URL, e.g. eval \"\$(scripts/test --only-services)\"}"

cargo build --release --locked --quiet
bin="$PWD/target/release/lscp-mail"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
csv="$work/practitioners.csv"

# Deterministic: the same ROWS always give the same file. One to four topics a row, a few
# empty topics cells (which take every topic) and empty organisations.
awk -v n="$rows" 'BEGIN {
    split("training protocols reviews events", t, " ")
    print "email,name,organisation,topics"
    for (i = 1; i <= n; i++) {
        k = i % 16; topics = ""
        for (j = 0; j < 4; j++) if (int(k / 2 ^ j) % 2) topics = topics (topics == "" ? "" : ";") t[j + 1]
        org = (i % 7 == 0) ? "" : sprintf("Organisation %03d", i % 400)
        printf "practitioner%06d@example.org,Practitioner %d,%s,%s\n", i, i, org, topics
    }
}' >"$csv"
echo "bench/import.sh: $rows rows, $(du -h "$csv" | cut -f1) of CSV" >&2

base="${DATABASE_URL%%\?*}"
query=""
[[ "$DATABASE_URL" == *\?* ]] && query="?${DATABASE_URL#*\?}"
admin_url="${base%/*}/postgres$query"

seconds() { date +%s.%N; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

fresh=()
again=()
for run in $(seq 1 "$runs"); do
    db="lscp_mail_bench_$$_$run"
    url="${base%/*}/$db$query"
    DATABASE_URL="$url" "$bin" db migrate >/dev/null
    start=$(seconds)
    DATABASE_URL="$url" "$bin" subscribers import "$csv" >"$work/report.txt"
    mid=$(seconds)
    DATABASE_URL="$url" "$bin" subscribers import "$csv" >/dev/null
    end=$(seconds)
    psql -X -q -w "$admin_url" -c "DROP DATABASE \"$db\"" >/dev/null
    fresh+=("$(minus "$mid" "$start")")
    again+=("$(minus "$end" "$mid")")
    echo "run $run: import ${fresh[-1]} s, re-import ${again[-1]} s ($(tail -n 1 "$work/report.txt"))" >&2
done

printf 'import of %d rows into an empty database: median %.2f s of %d runs\n' \
    "$rows" "$(printf '%s\n' "${fresh[@]}" | median)" "$runs"
printf 're-import of the same file (nothing to add): median %.2f s\n' \
    "$(printf '%s\n' "${again[@]}" | median)"
