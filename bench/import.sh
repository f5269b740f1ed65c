#!/usr/bin/env bash
# bench/import.sh — how long `lscp-mail subscribers import` takes for generated practitioners,
# and its peak memory (maximum resident set size, from GNU time's `-v`).
#
# Usage: bench/import.sh [ROWS...]     (default: 100000 1000000; 3 runs each, medians reported)
#
# Needs a PostgreSQL server in DATABASE_URL: `eval "$(scripts/test --only-services)"` starts a
# local one and sets it. Each run imports into a fresh database of its own (created by
# `lscp-mail db migrate`, dropped afterwards), then imports the same file again to time the
# idempotent path, where every row is already there.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

sizes=("$@")
[[ ${#sizes[@]} -gt 0 ]] || sizes=(100000 1000000)
runs=3
: "${DATABASE_URL:?set DATABASE_URL, e.g. eval \"\$(scripts/test --only-services)\"}"
[[ -x /usr/bin/time ]] || { echo "bench/import.sh: needs GNU time in /usr/bin/time" >&2; exit 2; }

# SENDER_BIN=path measures a binary built already (to compare two builds) instead of building.
[[ -n "${SENDER_BIN:-}" ]] || cargo build --release --locked --quiet
bin="${SENDER_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/lscp-mail}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
csv="$work/practitioners.csv"

base="${DATABASE_URL%%\?*}"
query=""
[[ "$DATABASE_URL" == *\?* ]] && query="?${DATABASE_URL#*\?}"
admin_url="${base%/*}/postgres$query"

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# Runs an import under GNU time; prints "seconds kilobytes" (wall clock, peak RSS).
timed_import() {
    /usr/bin/time -v -o "$work/time.txt" "$@" >"$work/report.txt"
    awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0
                    for (i = 1; i <= n; i++) s = s * 60 + p[i] }
                /Maximum resident set size/ { kb = $2 }
                END { printf "%.2f %d\n", s, kb }' "$work/time.txt"
}

for rows in "${sizes[@]}"; do
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

    fresh=() fresh_kb=() again=() again_kb=()
    for run in $(seq 1 "$runs"); do
        db="lscp_mail_bench_$$_$run"
        url="${base%/*}/$db$query"
        DATABASE_URL="$url" "$bin" db migrate >/dev/null
        read -r s kb < <(DATABASE_URL="$url" timed_import "$bin" subscribers import "$csv")
        fresh+=("$s") fresh_kb+=("$kb")
        summary="$(tail -n 1 "$work/report.txt")"
        read -r s kb < <(DATABASE_URL="$url" timed_import "$bin" subscribers import "$csv")
        again+=("$s") again_kb+=("$kb")
        psql -X -q -w "$admin_url" -c "DROP DATABASE \"$db\"" >/dev/null
        echo "run $run: import ${fresh[-1]} s ${fresh_kb[-1]} kB, re-import ${again[-1]} s ${again_kb[-1]} kB ($summary)" >&2
    done

    printf 'import of %d rows into an empty database: median %.2f s, peak RSS %.1f MB (%d runs)\n' \
        "$rows" "$(printf '%s\n' "${fresh[@]}" | median)" \
        "$(printf '%s\n' "${fresh_kb[@]}" | median | awk '{ print $1 / 1024 }')" "$runs"
    printf 're-import of the same %d rows (nothing to add): median %.2f s, peak RSS %.1f MB\n' \
        "$rows" "$(printf '%s\n' "${again[@]}" | median)" \
        "$(printf '%s\n' "${again_kb[@]}" | median | awk '{ print $1 / 1024 }')"
done
