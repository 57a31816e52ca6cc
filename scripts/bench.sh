#!/usr/bin/env bash
# Reproduces every figure in BENCHMARKS.md on this machine and rewrites that file.
# Each figure is printed beside its reference, measured in the same run.
#
#   scripts/bench.sh                 # full sizes (about 20 minutes, most of it filling moto)
#   QUICK=1 scripts/bench.sh         # small sizes, to check the script itself
#
# Needs: cargo, python3 (moto is installed into .venv/ as scripts/test.sh does), sqlite3.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import moto.server' 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet 'moto[server]>=5.1,<6'
fi
export ANAMO_PYTHON="$PWD/.venv/bin/python"

if [ -n "${QUICK:-}" ]; then
  export ANAMO_BENCH_TASKS=100000 ANAMO_BENCH_SAMPLES=10000 ANAMO_BENCH_OBJECTS=2000
  export ANAMO_BENCH_SYNC_TASKS=20000
  WORKER_TASKS=100 STARTS=10
else
  WORKER_TASKS=500 STARTS=30
fi

out=BENCHMARKS.md.new
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The cold start's floor: the same build linked -no-pie (no relocations for the loader to apply;
# anamo ships position-independent, for ASLR). Built first, copied aside, then the shipped build.
cargo rustc --release --locked --quiet --bin anamo -- -C link-arg=-no-pie
cp target/release/anamo "$work/anamo-no-pie"
touch src/main.rs
cargo build --release --locked --quiet
bin="$PWD/target/release/anamo"
if ! file "$bin" | grep -q 'pie executable'; then
  echo "the shipped build is not position-independent: cargo kept the -no-pie link" >&2
  exit 1
fi

# Median of a command's wall time over N runs, in milliseconds.
median_ms() {
  local n=$1; shift
  python3 - "$n" "$@" <<'PY'
import statistics, subprocess, sys, time
n, cmd = int(sys.argv[1]), sys.argv[2:]
times = []
for _ in range(n):
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    times.append((time.perf_counter() - t) * 1000)
print(f"{statistics.median(times):.1f}")
PY
}

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

section() { printf '\n## %s\n\n' "$1" >> "$out"; }
bench() {
  local name=$1
  echo "running cargo bench --bench $name ..." >&2
  { echo '```'; cargo bench --locked --quiet --bench "$name" 2>/dev/null; echo '```'; } >> "$out"
}

{
  echo "# anamo benchmarks"
  echo
  echo "Written by \`scripts/bench.sh\` on $(date -u +%Y-%m-%d); every figure below comes from that"
  echo "run, each beside its reference measured in the same run. Do not edit by hand: run the script."
  echo
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')),"
  echo "$(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(uname -sr), $(rustc --version), $(sqlite3 -version | cut -d' ' -f1-2 | sed 's/^/sqlite3 /')."
  [ -n "${QUICK:-}" ] && echo && echo "**QUICK run: small sizes, for checking the script; not the published figures.**"
} > "$out"

section "Claims: throughput and flatness with store size (SQLite store)"
echo "Reference: the same claim+finish at 1k tasks; flat means the 100k rate is near it." >> "$out"
bench claim

section "Chained steps: the promotion's cost per task, without and with QC gates (SQLite store)"
bench flow

section "anamo report at cohort scale (100,000 samples x 5 steps, 1M task events, 500 instances, 190,000 S3 objects)"
bench report

section "Worker overhead per task"
mkdir -p "$work/w"
(
  cd "$work/w"
  python3 -c "print('task_id,script'); [print(f't{i},true') for i in range($WORKER_TASKS)]" > t.csv
  # Seven pairs, each the worker's run beside a bash loop's right after it; the ratio is the
  # median of the pairs' ratios: the machine's speed drifts by the minute, and moves both
  # halves of a pair alike.
  anamo_runs=(); bare_runs=(); ratios=()
  for pair in 1 2 3 4 5 6 7; do
    rm -f w.db*
    "$bin" --store w.db tasks add t.csv -c W >/dev/null
    start=$(date +%s.%N)
    "$bin" --store w.db worker -c W >/dev/null
    end=$(date +%s.%N)
    a=$(python3 -c "print(($end - $start) * 1000 / $WORKER_TASKS)")
    start=$(date +%s.%N)
    for _ in $(seq "$WORKER_TASKS"); do bash -eo pipefail -c true; done
    end=$(date +%s.%N)
    b=$(python3 -c "print(($end - $start) * 1000 / $WORKER_TASKS)")
    anamo_runs+=("$a"); bare_runs+=("$b"); ratios+=("$(python3 -c "print($a / $b)")")
  done
  med() { python3 -c "import statistics,sys; print(statistics.median(map(float, sys.argv[1:])))" "$@"; }
  anamo_ms=$(med "${anamo_runs[@]}"); bare_ms=$(med "${bare_runs[@]}")
  pair_ratio=$(python3 -c "print(f'{float(\"$(med "${ratios[@]}")\"):.2f}')")
  printf '| | ms per task (median of 7 runs) |\n|---|---:|\n'
  printf '| anamo worker, %s tasks running `true` (claim, spawn, wait, finish) | %.2f |\n' "$WORKER_TASKS" "$anamo_ms"
  printf '| reference: the same scripts started by a bash loop | %.2f |\n' "$bare_ms"
  printf '| ratio (median of the 7 pairs'"'"' ratios) | **%s** |\n' "$pair_ratio"
  echo "$pair_ratio" > "$work/worker-ratio"
) >> "$out"

section "Catalog: sync rows/s and peak RSS; samples-left against the sqlite3 shell"
echo "References: the sqlite3 shell copying the same rows with one INSERT ... SELECT into the same schema; the same samples-left SQL in the sqlite3 shell." >> "$out"
bench catalog

section "DynamoDB: anamo's indexed claim against PyAnamo-style scan-first claims (moto)"
bench dynamo

section "Incremental sync against a full scan (DynamoDB, moto): a table where 1% of the tasks changed"
echo "Reference: a full scan of the same table into a second catalog, in the same run. Items and bytes are what the store's reads returned, sized by DynamoDB's item size rule (moto reports no consumed capacity); requests from moto's log." >> "$out"
bench incremental

section "tasks list against query on the same rows"
bench list

section "Fleet simulation: 1,000 workers on 100,000 tasks, the old claim design against the new"
echo "A model of DynamoDB in virtual time (per-item conditional writes, an index that lags the table, per-partition budgets that throttle); the new design is anamo's own claim code. Deterministic: the same figures on any machine." >> "$out"
bench fleet

section "S3 listings into the catalog (moto)"
echo "Reference: a bare SDK listing of the same prefix, nothing written." >> "$out"
bench objects

section "Cold start"
(
  cd "$work"
  "$bin" demo --dir demo --samples 12 >/dev/null
  cat=demo/anamo.db
  help=$(median_ms "$STARTS" "$bin" --help)
  query=$(median_ms "$STARTS" "$bin" --catalog "$cat" query "SELECT count(*) FROM tasks")
  truth=$(median_ms "$STARTS" true)
  shell=$(median_ms "$STARTS" sqlite3 "$cat" "SELECT count(*) FROM tasks")
  no_pie=$(median_ms "$STARTS" "$work/anamo-no-pie" --catalog "$cat" query "SELECT count(*) FROM tasks")
  printf '| command | median ms (%s runs) | reference | reference ms | ratio |\n|---|---:|---|---:|---:|\n' "$STARTS"
  printf '| `anamo --help` | %s | `true` | %s | %s |\n' "$help" "$truth" "$(ratio "$help" "$truth")"
  printf '| `anamo query "SELECT count(*) FROM tasks"` | %s | the same in `sqlite3` | %s | %s |\n' "$query" "$shell" "$(ratio "$query" "$shell")"
  printf '| floor: the same build linked `-no-pie`, the same query | %s | the same in `sqlite3` | %s | %s |\n' "$no_pie" "$shell" "$(ratio "$no_pie" "$shell")"
  echo "$(ratio "$query" "$shell")" > "$work/query-ratio"
  echo "$(ratio "$no_pie" "$shell")" > "$work/query-floor-ratio"
) >> "$out"

section "Targets (issues 25, 26 and 27), from the figures above"
first_sync=$(sed -n 's/.*ratio anamo \/ sqlite3 shell: first sync \([0-9.]*\),.*/\1/p' "$out" | head -1)
same_work=$(sed -n 's/.*writing the same rows.*first sync \([0-9.]*\).*/\1/p' "$out" | head -1)
left=$(sed -n 's/.*ratio anamo \/ sqlite3: \([0-9.]*\).*/\1/p' "$out" | head -1)
gated=$(sed -n 's/.*ratio gated \/ chained, per task: \([0-9.]*\).*/\1/p' "$out" | head -1)
incremental_bytes=$(sed -n 's/.*ratio incremental \/ full: items [0-9.]*, items and index entries [0-9.]*, bytes \([0-9.]*\).*/\1/p' "$out" | head -1)
incremental_items=$(sed -n 's/.*ratio incremental \/ full: items \([0-9.]*\),.*/\1/p' "$out" | head -1)
gated_promotion=$(sed -n 's/.*a promotion with two gates.*; ratio \([0-9.]*\).*/\1/p' "$out" | head -1)
met() { python3 -c "print('met' if $1 $2 $3 else 'not met')"; }
{
  printf '| what | ratio | target | |\n|---|---:|---:|---|\n'
  w=$(cat "$work/worker-ratio"); q=$(cat "$work/query-ratio")
  printf '| worker overhead (anamo / bash loop) | %s | <= 1.2 | %s |\n' "$w" "$(met "$w" '<=' 1.2)"
  printf '| `anamo query` cold start (anamo / sqlite3) | %s | <= 1.2 | %s |\n' "$q" "$(met "$q" '<=' 1.2)"
  printf '| ... its floor: the same build linked `-no-pie` (anamo / sqlite3) | %s | | |\n' "$(cat "$work/query-floor-ratio")"
  printf '| samples-left, 100k x 5 (anamo / sqlite3) | %s | <= 1.2 | %s |\n' "${left:-?}" "$(met "${left:-99}" '<=' 1.2)"
  printf '| first sync (anamo / bare INSERT ... SELECT, rows/s) | %s | >= 0.8 | %s |\n' "${first_sync:-?}" "$(met "${first_sync:-0}" '>=' 0.8)"
  printf '| ... against the bare INSERT ... SELECT of the same rows: tasks and their first-sighting events | %s | >= 0.8 | %s |\n' "${same_work:-?}" "$(met "${same_work:-0}" '>=' 0.8)"
  printf '| chained steps with two QC gates per downstream task against none (claim + finish + promote, per task) | %s | <= 1.2 | %s |\n' "${gated:-?}" "$(met "${gated:-99}" '<=' 1.2)"
  printf '| ... the promotion alone, with two gates against none | %s | <= 1.2 | %s |\n' "${gated_promotion:-?}" "$(met "${gated_promotion:-99}" '<=' 1.2)"
  printf '| incremental sync after 1%% changed: items read (incremental / full scan) | %s | <= 0.02 | %s |\n' "${incremental_items:-?}" "$(met "${incremental_items:-99}" '<=' 0.02)"
  printf '| ... bytes read, index entries included | %s | <= 0.02 | %s |\n' "${incremental_bytes:-?}" "$(met "${incremental_bytes:-99}" '<=' 0.02)"
} >> "$out"

# Measurements made once by hand (before/after a change) are kept below the script's own.
if [ -f BENCHMARKS.md ]; then
  kept=$(sed -n '/^## One-off measurements/,$p' BENCHMARKS.md)
  if [ -n "$kept" ]; then printf '\n%s\n' "$kept" >> "$out"; fi
fi
mv "$out" BENCHMARKS.md
echo "wrote BENCHMARKS.md" >&2
