#!/usr/bin/env bash
# How long `compose` takes on an issue whose one article has a huge Markdown body, at two sizes,
# so that growth worse than linear shows (doubling the body should about double the time).
# The body is the shipped 2026-02 "Safer Sleep Week" article repeated up to the size.
#
#   bench/big-body.sh                 # dev build (as the issue measured it), 5 runs per size
#   PROFILE=release RUNS=3 bench/big-body.sh
#   BIN=/path/to/an/older/lscp-mail bench/big-body.sh   # time a given binary, no build
#
# Prints one line per size: the median wall time and the median CPU time (user + sys) over RUNS
# runs. On a shared machine the CPU time is the steadier figure; the cost this bench was made
# for (memory moves) also grows when other processes crowd the cache.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-dev}
RUNS=${RUNS:-5}
SIZES=${SIZES:-"2500000 5000000"}
if [ -n "${BIN:-}" ]; then
  bin=$BIN
else
  cargo build --quiet --profile "$PROFILE" --bin lscp-mail
  dir=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
  bin="${CARGO_TARGET_DIR:-target}/$dir/lscp-mail"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for size in $SIZES; do
  issue="$work/$size"
  mkdir -p "$issue"
  python3 - "$issue" "$size" <<'PY'
import sys
issue, size = sys.argv[1], int(sys.argv[2])
src = open("issues/2026-02/02-safer-sleep-week.toml", encoding="utf-8").read()
body = src.split('body = """')[1].split('"""')[0]
open(f"{issue}/issue.toml", "w").write(
    'title = "Big body"\nmonth = "2026-02"\npublished = 2026-02-02\nsubject = "Big body"\n'
    'preheader = "One article with a very long body, to time compose against its size."\n')
open(f"{issue}/01-big.toml", "w", encoding="utf-8").write(
    'kind = "article"\nheading = "Big"\nbody = """\n' + body * (size // len(body.encode())) + '"""\n')
PY
  walls=()
  cpus=()
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f "%e %U %S" -o "$work/time" "$bin" compose "$issue" --out "$work/out" >/dev/null 2>&1
    read -r wall user sys <"$work/time"
    walls+=("$wall")
    cpus+=("$(echo "$user + $sys" | bc)")
  done
  median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
  printf 'body %s bytes (%s): median wall %.2f s, median CPU %.2f s; wall: %s; CPU: %s\n' \
    "$size" "$PROFILE" "$(median "${walls[@]}")" "$(median "${cpus[@]}")" "${walls[*]}" "${cpus[*]}"
done
