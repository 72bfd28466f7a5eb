#!/usr/bin/env bash
# fhir-pts beside its peers (json/orjson floors, DuckDB) on synthetic Bulk Data exports, every tool timed side by
# side in ONE run of ../shared/bench/peers.py (ratios within a run are what counts on a shared machine), plus
# the start-up commands (--help, analyses) and the .ndjson.gz rate. Writes Markdown + JSON per export and a
# summary to benchmarks/results/ (docs/performance.md quotes them).
#
#   bash benchmarks/bench_peers.sh                       # 10k and 50k exports, 10k gzipped, start-up
#   SIZES="10k" REPEAT=3 bash benchmarks/bench_peers.sh  # one size, best of 3
#
# Environment:
#   BENCH_DIR    where the exports live or are written (default /work/benchdata; outside the repo: 50k = 11.5 GB)
#   BENCH_TOOLS  the folder of peers.py / make_export.py (default ../shared/bench next to the repo)
#   FHIR_PTS     the fhir-pts command to time (default .venv/bin/fhir-pts of this checkout)
#   SIZES        exports to time: 10k, 50k, 10k-gz (default "10k 10k-gz 50k")
#   REPEAT       runs per tool, best kept (default 2)
#   ONLY         peers.py tool keys to time (e.g. "f,g": DuckDB count + filter and fhir-pts only; default: every
#                tool but fhiry and pandas.read_json)
# Exports are generated once (make_export.py --seed 1) under `flock $BENCH_DIR.lock`, and reused.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BENCH_DIR=${BENCH_DIR:-/work/benchdata}
BENCH_TOOLS=${BENCH_TOOLS:-$REPO/../shared/bench}
[ -f "$BENCH_TOOLS/peers.py" ] || BENCH_TOOLS=/work/shared/bench
FHIR_PTS=${FHIR_PTS:-$REPO/.venv/bin/fhir-pts}
SIZES=${SIZES-10k 10k-gz 50k}  # SIZES="" times the start-up commands only
REPEAT=${REPEAT:-2}
OUT=$REPO/benchmarks/results
mkdir -p "$OUT" "$BENCH_DIR"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
summary=$OUT/peers-$stamp.md

export_dir() {  # name -> generate (once) and print the folder
    local name=$1 patients extra=""
    case $name in
        10k) patients=10000 ;;
        50k) patients=50000 ;;
        10k-gz) patients=10000; extra=--gzip ;;
        *) echo "unknown size $name" >&2; return 1 ;;
    esac
    flock "$BENCH_DIR.lock" bash -c "
        if [ ! -e '$BENCH_DIR/$name' ]; then
            rm -rf '$BENCH_DIR/$name.tmp'
            python3 '$BENCH_TOOLS/make_export.py' --patients $patients --seed 1 --out '$BENCH_DIR/$name.tmp' $extra >&2
            mv '$BENCH_DIR/$name.tmp' '$BENCH_DIR/$name'
        fi"
    echo "$BENCH_DIR/$name"
}

best_of() {  # N command... -> best wall seconds
    local n=$1 best="" t tmp; shift
    tmp=$(mktemp)
    for _ in $(seq "$n"); do
        /usr/bin/time -f "%e" -o "$tmp" "$@" >/dev/null 2>&1 || true
        t=$(tail -1 "$tmp")
        if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
    done
    rm -f "$tmp"
    echo "$best"
}

{
    echo "# fhir-pts beside its peers — $stamp"
    echo
    echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GB; load before: $(uptime | sed 's/.*load average: //')"
    echo "fhir-pts: $("$FHIR_PTS" --version) ($(git -C "$REPO" rev-parse --short HEAD))"
    echo
    echo "## start-up (best of 5)"
    echo
    echo "| command | seconds |"
    echo "|---|---:|"
    echo "| \`fhir-pts --help\` | $(best_of 5 "$FHIR_PTS" --help) |"
    echo "| \`fhir-pts analyses\` | $(best_of 5 "$FHIR_PTS" analyses) |"
    echo
} > "$summary"

for size in $SIZES; do
    dir=$(export_dir "$size")
    select=(--skip d,e)
    if [ -n "${ONLY:-}" ]; then select=(--only "$ONLY"); fi
    # gzipped export: the floors read it through gzip too; DuckDB reads .gz natively
    echo "## $size ($dir), load before: $(uptime | sed 's/.*load average: //')" >> "$summary"
    FHIR_PTS="$FHIR_PTS" python3 "$BENCH_TOOLS/peers.py" "$dir" "${select[@]}" --repeat "$REPEAT" --label "$size" \
        --md "$OUT/peers-$size-$stamp.md" --json "$OUT/peers-$size-$stamp.json" >&2
    cat "$OUT/peers-$size-$stamp.md" >> "$summary"
    echo >> "$summary"
    echo "load after: $(uptime | sed 's/.*load average: //')" >> "$summary"
    echo >> "$summary"
done
echo "$summary"
