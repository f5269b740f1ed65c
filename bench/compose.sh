#!/usr/bin/env bash
# The figures of BENCHMARKS.md "## Compose": lscp-mail composing every shipped issue with all
# its topic variants (criterion, benches/compose.rs) against the reference compiler, mjml@4's
# mjml2html in a warm node process (bench/mjml-node.js), on the same MJML, in the same run.
#
#   bench/compose.sh                  3 runs, then the median table (4-7 minutes on 2 cores)
#   RUNS=1 bench/compose.sh           one run, for a quick look
#   MJML_REPS=15                      timed repetitions per issue on the node side (default 15)
#
# Needs cargo, node and npm. Installs mjml from bench/package-lock.json into bench/node_modules
# when it is missing. Prints each run's table, then the final one, in Markdown.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${RUNS:-3}
reps=${MJML_REPS:-15}

if [[ ! -f bench/node_modules/mjml/package.json ]]; then
    echo "== installing mjml into bench/node_modules" >&2
    npm ci --prefix bench --no-audit --no-fund >&2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

lock_version() { awk -v n="$1" '$0 == "name = \"" n "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock; }
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
{
    echo "date: $(date -u +%Y-%m-%d)"
    if code=$(git rev-parse --short HEAD 2>/dev/null); then
        git diff --quiet HEAD -- src templates issues Cargo.toml Cargo.lock lscp-mail.toml ||
            code+=" + uncommitted changes to src/, templates/, issues/, Cargo.* or lscp-mail.toml"
    fi
    echo "code: ${code:-unknown}"
    echo "machine: $(nproc) cores (nproc), ${cpu:-unknown CPU}"
    echo "rustc: $(rustc --version)"
    echo "crates: mrml $(lock_version mrml), handlebars $(lock_version handlebars), criterion $(lock_version criterion)"
    echo "node: $(node --version), mjml $(node -p "require('./bench/node_modules/mjml/package.json').version")"
    echo "command: bench/compose.sh (RUNS=$runs, MJML_REPS=$reps)"
    echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
} >"$work/header.txt"

# Build once and run that one binary in every run (what `cargo bench --bench compose` runs), so
# that every run measures the same code even while the tree changes under it.
echo "== building the bench" >&2
exe=$(cargo bench --bench compose --no-run --message-format=json-render-diagnostics |
    node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
        const a = s.split("\n").filter(Boolean).map((l) => JSON.parse(l))
            .filter((m) => m.reason === "compiler-artifact" && m.target.name === "compose" && m.executable);
        console.log(a[a.length - 1].executable); })')
cp "$exe" "$work/compose-bench"

for run in $(seq 1 "$runs"); do
    # The MJML is written again in each run, so both sides see the same issue files.
    echo "== run $run of $runs: writing the MJML of every variant" >&2
    rm -rf "$work/mjml"
    LSCP_BENCH_DUMP_MJML="$work/mjml" "$work/compose-bench"
    if [[ -z "$(ls -A "$work/mjml" 2>/dev/null)" ]]; then
        echo "no issue loaded: nothing to measure" >&2
        exit 1
    fi
    echo "== run $run of $runs: mjml2html" >&2
    node bench/mjml-node.js "$work/mjml" "$reps" >"$work/mjml-$run.json"
    echo "== run $run of $runs: criterion (benches/compose.rs)" >&2
    # A criterion folder of its own per run: only this run's estimates are read.
    CRITERION_HOME="$work/criterion-$run" "$work/compose-bench" --bench
    node bench/report.js collect "$work/criterion-$run" "$work/mjml-$run.json" >"$work/run-$run.json"
    echo
    echo "### Run $run"
    echo
    echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
    echo
    node bench/report.js table "$work/run-$run.json"
done

echo
echo "### Result"
echo
echo '```'
cat "$work/header.txt"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
echo '```'
echo
node bench/report.js table "$work"/run-*.json
