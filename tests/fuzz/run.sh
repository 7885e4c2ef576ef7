#!/bin/sh
# run.sh DIR SECONDS TARGET... - make fuzz's runner. For each target
# built in DIR: replays every input of tests/fuzz/regressions/<target>/,
# then fuzzes for SECONDS on DIR/corpus/<target> (new inputs go there)
# plus the seeds of tests/fuzz/corpus/<target> (read only), and prints
# the executions. Exits 1 if any target crashed, leaked or hung.
# FUZZ_SEED, when set, is libFuzzer's -seed.
set -u
dir=$1
secs=$2
shift 2
here=$(dirname "$0")
failed=""
summary=""

for t in "$@"; do
    bin=$dir/$t
    work=$dir/corpus/$t
    art=$dir/artifacts/$t/
    log=$dir/$t.log
    mkdir -p "$work" "$art"
    dict=""
    [ -f "$here/$t.dict" ] && dict="-dict=$here/$t.dict"
    seed=""
    [ -n "${FUZZ_SEED:-}" ] && seed="-seed=$FUZZ_SEED"

    regs=$(find "$here/regressions/$t" -type f 2>/dev/null | sort)
    if [ -n "$regs" ]; then
        echo "== $t: replaying $(echo "$regs" | wc -l) regression input(s)"
        # shellcheck disable=SC2086
        if ! "$bin" -runs=1 $regs >"$dir/$t.regressions.log" 2>&1; then
            tail -n 40 "$dir/$t.regressions.log"
            failed="$failed $t(regression)"
            continue
        fi
    fi

    echo "== $t: fuzzing for ${secs}s"
    # shellcheck disable=SC2086
    "$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=25 \
        -rss_limit_mb=2048 -max_len=8192 -artifact_prefix="$art" $dict $seed \
        "$work" "$here/corpus/$t" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    [ -n "$runs" ] ||
        runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
    runs=${runs:-0}
    rate=$((runs / (secs > 0 ? secs : 1)))
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
    if [ $rc -ne 0 ]; then
        tail -n 60 "$log"
        echo "$t: FAILED (exit $rc) after $runs executions; input in $art"
        failed="$failed $t"
        summary="$summary
$t: FAILED after $runs executions"
    else
        summary="$summary
$t: $runs executions in ${secs}s (~$rate/s), $cov"
    fi
done

echo
echo "== fuzz summary$summary"
if [ -n "$failed" ]; then
    echo "fuzz: failed:$failed"
    exit 1
fi
