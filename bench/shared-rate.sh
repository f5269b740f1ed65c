#!/usr/bin/env bash
# bench/shared-rate.sh — two `lscp-mail send` processes working one campaign share its rate:
# both run `--rate 20/s --concurrency 4` for RATE_SECONDS + 3 s against a local smtp-sink, and
# the ledger says how many messages were accepted in the first RATE_SECONDS after the first
# (expected 20 * RATE_SECONDS ± 2 %, not twice that), how they were split between the two
# senders, and the most in any one second.
#
# Usage: bench/shared-rate.sh     (RUNS=1 RATE_SECONDS=60 SENDERS=2 RECIPIENTS=3000)
#        SENDER_BIN=path/to/lscp-mail bench/shared-rate.sh   (skip the release build)
#
# Needs PostgreSQL in DATABASE_URL and postfix's smtp-sink:
#   eval "$(scripts/test --only-services)"; bench/shared-rate.sh
# Works in a database of its own (created, then dropped).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

runs="${RUNS:-1}"
rate_seconds="${RATE_SECONDS:-60}"
senders="${SENDERS:-2}"
recipients="${RECIPIENTS:-3000}"
issue=issues/2026-02
sink_bin="${SMTP_SINK:-/usr/sbin/smtp-sink}"
: "${DATABASE_URL:?set DATABASE_URL, e.g. eval \"\$(scripts/test --only-services)\"}"
for tool in "$sink_bin" psql timeout; do
    command -v "$tool" >/dev/null || { echo "bench/shared-rate.sh: $tool is missing (scripts/test --only-services installs postfix)" >&2; exit 1; }
done

log() { printf 'bench/shared-rate.sh: %s\n' "$*" >&2; }

if [[ -n "${SENDER_BIN:-}" ]]; then
    bin="$(realpath "$SENDER_BIN")"
else
    cargo build --release --locked --quiet
    bin="$(realpath "${CARGO_TARGET_DIR:-target}")/release/lscp-mail"
fi

work="$(mktemp -d)"
base="${DATABASE_URL%%\?*}"
query=""
[[ "$DATABASE_URL" == *\?* ]] && query="?${DATABASE_URL#*\?}"
admin_url="${base%/*}/postgres$query"
db="lscp_mail_bench_rate_$$"
export DATABASE_URL="${base%/*}/$db$query"
sink_pid=""
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [[ -n "$sink_pid" ]] && kill "$sink_pid" 2>/dev/null || true
    psql -X -q -w "$admin_url" -c "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
sql() { psql -X -q -w -At "$DATABASE_URL" -c "$1"; }
psql -X -q -w "$admin_url" -c "CREATE DATABASE \"$db\"" >/dev/null

# Every recipient takes every topic: all are in the issue's audience.
awk -v n="$recipients" 'BEGIN {
    print "email,name,organisation,topics"
    for (i = 1; i <= n; i++) printf "reader%06d@example.org,Reader %d,Organisation %03d,\n", i, i, i % 400
}' >"$work/readers.csv"
"$bin" db migrate >/dev/null
"$bin" subscribers import "$work/readers.csv" >/dev/null

port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
user_args=()
[[ $EUID -eq 0 ]] && user_args=(-u nobody)
"$sink_bin" "${user_args[@]}" "127.0.0.1:$port" 1024 >/dev/null 2>&1 &
sink_pid=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
export SMTP_URL="smtp://127.0.0.1:$port"

expected=$((20 * rate_seconds))
counts=()
for run in $(seq 1 "$runs"); do
    sql "DELETE FROM campaigns" >/dev/null
    pids=()
    for n in $(seq 1 "$senders"); do
        timeout --foreground --preserve-status -s TERM "$((rate_seconds + 3))" "$bin" send "$issue" --rate 20/s --concurrency 4 \
            >"$work/send$n.log" 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do
        status=0
        wait "$p" || status=$?
        [[ "$status" -eq 75 ]] || { log "a sender under timeout exited $status, not 75"; cat "$work"/send*.log >&2; exit 1; }
    done
    pids=()
    read -r count peak split < <(sql "
        WITH s AS (SELECT sent_at, sender_id FROM deliveries WHERE status = 'sent'),
             first AS (SELECT min(sent_at) AS t FROM s),
             w AS (SELECT s.* FROM s, first WHERE sent_at < first.t + make_interval(secs => $rate_seconds))
        SELECT (SELECT count(*) FROM w),
               (SELECT max(c) FROM (SELECT count(*) AS c FROM s a JOIN s b
                                      ON b.sent_at >= a.sent_at AND b.sent_at < a.sent_at + interval '1 second'
                                    GROUP BY a.sent_at) x),
               (SELECT string_agg(c::text, '+' ORDER BY sender_id)
                FROM (SELECT sender_id, count(*) AS c FROM w GROUP BY sender_id) y)" | tr '|' ' ')
    counts+=("$count")
    log "run $run: $count accepted in the first $rate_seconds s ($split by sender), at most $peak in any second"
done

echo "date: $(date -u +%F)"
echo "code: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src bench || echo ' (with uncommitted changes)')"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$senders senders sharing --rate 20/s for $rate_seconds s (expected $expected ± 2 %): runs ${counts[*]}"
for c in "${counts[@]}"; do
    awk -v c="$c" -v e="$expected" 'BEGIN { d = (c - e) / e * 100; if (d < -2 || d > 2) exit 1 }' \
        || { log "$c is more than 2 % from $expected"; exit 1; }
done
