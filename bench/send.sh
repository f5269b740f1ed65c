#!/usr/bin/env bash
# bench/send.sh — how fast `lscp-mail send` delivers, against postfix's own smtp-source on the
# same local smtp-sink, how accurately it keeps a rate, and that lettre's Nagle stall is gone.
#
# Usage: bench/send.sh        (RUNS=3 RECIPIENTS=10000 RATE_SECONDS=60 CONNECTIONS="1 4 8")
#        RSS_ONLY=1 RECIPIENTS=100000 bench/send.sh   (one send over 8 connections: time, peak RSS)
#
# Needs PostgreSQL in DATABASE_URL and postfix's smtp-sink and smtp-source:
#   eval "$(scripts/test --only-services)"; bench/send.sh
# About 10 minutes on 2 cores. Works in a database of its own (created, then dropped).
#
# Each run, for each number of connections: the ledger is emptied, `lscp-mail send ISSUE
# --rate 0 --concurrency N` mails every recipient, then `smtp-source -d -s N -m RECIPIENTS -F
# MESSAGE` sends as many messages of the mean size over N connections (the loopback limit).
# Both are timed with GNU time (wall, peak RSS). Then `send --rate 20/s` runs for RATE_SECONDS
# + 3 s under `timeout` and the ledger says how many were accepted in the first RATE_SECONDS
# after the first, and the most in any one second. Last, `cargo bench --bench smtp_nodelay`
# sends the same message over one connection with stock lettre and with ours.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

runs="${RUNS:-3}"
recipients="${RECIPIENTS:-10000}"
rate_seconds="${RATE_SECONDS:-60}"
connections="${CONNECTIONS:-1 4 8}"
issue=issues/2026-02
sink_bin="${SMTP_SINK:-/usr/sbin/smtp-sink}"
source_bin="${SMTP_SOURCE:-$(dirname "$sink_bin")/smtp-source}"
: "${DATABASE_URL:?set DATABASE_URL, e.g. eval \"\$(scripts/test --only-services)\"}"
for tool in "$sink_bin" "$source_bin" /usr/bin/time psql; do
    command -v "$tool" >/dev/null || { echo "bench/send.sh: $tool is missing (scripts/test --only-services installs postfix)" >&2; exit 1; }
done

log() { printf 'bench/send.sh: %s\n' "$*" >&2; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }

# SENDER_BIN=path measures a binary built already (to compare two builds) instead of building.
[[ -n "${SENDER_BIN:-}" ]] || cargo build --release --locked --quiet
# NAGLE=0 leaves out the Nagle comparison (its bench pulls in the dev-dependencies' build).
nagle_bench="${NAGLE:-1}"
[[ "$nagle_bench" == 1 ]] && cargo bench --locked --quiet --no-run --bench smtp_nodelay 2>/dev/null
bin="${SENDER_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/lscp-mail}"

work="$(mktemp -d)"
base="${DATABASE_URL%%\?*}"
query=""
[[ "$DATABASE_URL" == *\?* ]] && query="?${DATABASE_URL#*\?}"
admin_url="${base%/*}/postgres$query"
db="lscp_mail_bench_send_$$"
export DATABASE_URL="${base%/*}/$db$query"
sink_pid=""
cleanup() {
    [[ -n "$sink_pid" ]] && kill "$sink_pid" 2>/dev/null || true
    psql -X -q -w "$admin_url" -c "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
sql() { psql -X -q -w -At "$DATABASE_URL" -c "$1"; }

# Recipients: every mix of the four topics but "reviews" alone, which this issue does not
# carry, so that all of them are in its audience; an empty cell takes every topic.
awk -v n="$recipients" 'BEGIN {
    split("training protocols reviews events", t, " ")
    print "email,name,organisation,topics"
    for (i = 1; i <= n; i++) {
        k = i % 15; if (k >= 4) k++
        topics = ""
        for (j = 0; j < 4; j++) if (int(k / 2 ^ j) % 2) topics = topics (topics == "" ? "" : ";") t[j + 1]
        printf "reader%06d@example.org,Reader %d,Organisation %03d,%s\n", i, i, i % 400, topics
    }
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

# RSS_ONLY=1: only how much memory one unthrottled send over the last of CONNECTIONS takes for
# RECIPIENTS (100,000 messages would not fit on disk as a dry run's files).
if [[ "${RSS_ONLY:-0}" == 1 ]]; then
    c="${connections##* }"
    /usr/bin/time -f "%e %M" -o "$work/send.time" \
        "$bin" send "$issue" --rate 0 --concurrency "$c" >"$work/send.log" 2>&1 || { cat "$work/send.log" >&2; exit 1; }
    read -r wall rss <"$work/send.time"
    n=$(sql "SELECT count(*) FROM deliveries WHERE status = 'sent'")
    echo "date: $(date -u +%F); code: $(git rev-parse --short HEAD); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "$recipients recipients, $c connections: $n sent in $wall s ($(div "$n" "$wall") msg/s), peak RSS $((rss / 1024)) MiB"
    exit 0
fi

# Every message as it would go, to know their sizes; the one nearest the mean stands for them
# in smtp-source and the Nagle bench. CRLF is taken out for smtp-source, which adds it back.
/usr/bin/time -f "%e %M" -o "$work/dry.time" \
    "$bin" send "$issue" --dry-run --out "$work/eml" >/dev/null 2>&1
read -r dry_wall dry_rss <"$work/dry.time"
sent_count=$(find "$work/eml" -name '*.eml' | wc -l)
[[ "$sent_count" -eq "$recipients" ]] || { log "dry run wrote $sent_count messages, not $recipients"; exit 1; }
read -r size_min size_median size_max size_mean sample < <(
    find "$work/eml" -name '*.eml' -printf '%s %p\n' | sort -n | awk '
        { s[NR] = $1; p[NR] = $2; sum += $1 }
        END {
            mean = sum / NR; best = 1
            for (i = 1; i <= NR; i++) if ((s[i] - mean) ^ 2 < (s[best] - mean) ^ 2) best = i
            printf "%d %d %d %d %s\n", s[1], s[int((NR + 1) / 2)], s[NR], mean, p[best]
        }')
cp "$sample" "$work/sample.eml"
tr -d '\r' <"$sample" >"$work/sample-lf.eml"
rm -rf "$work/eml"
log "$recipients recipients; messages $size_min to $size_max bytes, median $size_median, mean $size_mean"
log "dry run (render and write every message, no SMTP): ${dry_wall} s, peak RSS $((dry_rss / 1024)) MiB"

declare -A ours_wall ours_steady ours_rss src_wall src_rss
for run in $(seq 1 "$runs"); do
    for c in $connections; do
        # The last run's 10,000 deliveries, deleted to send the issue again, are vacuumed away
        # before the timed run: a user's ledger keeps its campaigns, and the dead rows (and
        # autovacuum clearing them mid-run) slow each run by a varying amount (BENCHMARKS.md).
        sql "DELETE FROM campaigns" >/dev/null
        sql "VACUUM deliveries" >/dev/null
        if ! /usr/bin/time -f "%e %M %U %S" -o "$work/send.time" \
            "$bin" send "$issue" --rate 0 --concurrency "$c" >"$work/send.log" 2>&1; then
            cat "$work/send.log" >&2
            exit 1
        fi
        read -r wall rss user sys <"$work/send.time"
        read -r n span < <(sql "SELECT count(*), extract(epoch FROM max(sent_at) - min(sent_at))
                               FROM deliveries WHERE status = 'sent'" | tr '|' ' ')
        [[ "$n" -eq "$recipients" ]] || { log "sent $n, not $recipients"; exit 1; }
        ours_wall[$c]+="$(div "$n" "$wall") "
        ours_steady[$c]+="$(div "$((n - 1))" "$span") "
        ours_rss[$c]+="$((rss / 1024)) "

        /usr/bin/time -f "%e %M" -o "$work/source.time" \
            "$source_bin" -d -s "$c" -m "$recipients" -F "$work/sample-lf.eml" \
            -f newsletter@example.org -t reader@example.org "127.0.0.1:$port"
        read -r swall srss <"$work/source.time"
        src_wall[$c]+="$(div "$recipients" "$swall") "
        src_rss[$c]+="$((srss / 1024)) "
        cpu=$(awk -v u="$user" -v s="$sys" -v n="$n" 'BEGIN { printf "%.3f", (u + s) * 1000 / n }')
        log "run $run, $c connection(s): lscp-mail $(div "$n" "$wall") msg/s (${wall} s, $((rss / 1024)) MiB, CPU ${user} s user + ${sys} s sys = ${cpu} ms/msg), smtp-source $(div "$recipients" "$swall") msg/s"
    done
done

rate_counts=()
rate_peaks=()
for run in $(seq 1 "$runs"); do
    sql "DELETE FROM campaigns" >/dev/null
    status=0
    # --foreground: the TERM goes to send alone. Without it timeout sends it to send and then
    # to its whole process group, and the two can arrive as two requests: the second one
    # means "quit at once" (exit 130), which once failed a run.
    timeout --foreground --preserve-status -s TERM "$((rate_seconds + 3))" "$bin" send "$issue" --rate 20/s --concurrency 4 \
        >/dev/null 2>&1 || status=$?
    [[ "$status" -eq 75 ]] || { log "send --rate 20/s under timeout exited $status, not 75"; exit 1; }
    read -r count peak < <(sql "
        WITH s AS (SELECT sent_at FROM deliveries WHERE status = 'sent'),
             first AS (SELECT min(sent_at) AS t FROM s)
        SELECT (SELECT count(*) FROM s, first WHERE sent_at < first.t + make_interval(secs => $rate_seconds)),
               (SELECT max(c) FROM (SELECT count(*) AS c FROM s a JOIN s b
                                      ON b.sent_at >= a.sent_at AND b.sent_at < a.sent_at + interval '1 second'
                                    GROUP BY a.sent_at) w)" | tr '|' ' ')
    rate_counts+=("$count")
    rate_peaks+=("$peak")
    log "rate run $run: $count accepted in the first $rate_seconds s at 20/s, at most $peak in any second"
done

nagle=""
[[ "$nagle_bench" == 1 ]] && nagle="$(SMTP_BENCH_ADDR="127.0.0.1:$port" SMTP_BENCH_MESSAGE="$work/sample.eml" SMTP_BENCH_COUNT=300 \
    cargo bench --locked --quiet --bench smtp_nodelay 2>/dev/null)"

echo "date: $(date -u +%F)"
echo "code: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src benches bench || echo ' (with uncommitted changes)')"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "issue: $issue, $recipients recipients, messages $size_min-$size_max bytes (median $size_median, mean $size_mean)"
echo "dry run: $dry_wall s, peak RSS $((dry_rss / 1024)) MiB"
echo
echo "| connections | lscp-mail, whole command (msg/s) | lscp-mail, first to last accepted (msg/s) | smtp-source (msg/s) | lscp-mail / smtp-source | lscp-mail peak RSS (MiB) | smtp-source peak RSS (MiB) |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for c in $connections; do
    w=$(tr ' ' '\n' <<<"${ours_wall[$c]}" | grep . | median)
    s=$(tr ' ' '\n' <<<"${ours_steady[$c]}" | grep . | median)
    p=$(tr ' ' '\n' <<<"${src_wall[$c]}" | grep . | median)
    m=$(tr ' ' '\n' <<<"${ours_rss[$c]}" | grep . | median)
    q=$(tr ' ' '\n' <<<"${src_rss[$c]}" | grep . | median)
    echo "| $c | $w | $s | $p | $(awk -v a="$w" -v b="$p" 'BEGIN { printf "%.2f", a / b }') | $m | $q |"
done
echo
echo "rate 20/s for $rate_seconds s (expected $((20 * rate_seconds)) ± 2 %): runs ${rate_counts[*]}, median $(printf '%s\n' "${rate_counts[@]}" | median); most in any 1 s window: ${rate_peaks[*]}"
echo
echo "$nagle"
