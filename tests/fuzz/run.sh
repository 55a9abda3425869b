#!/bin/sh
# run.sh [SECONDS] - build every tests/fuzz/fuzz-*.c with libFuzzer, ASan and UBSan into
# build-fuzz/. Without SECONDS, replay each target's seed corpus once (a quick regression
# check); with SECONDS, fuzz each target for that long from a scratch copy of its seeds and
# report how many inputs it ran. One TAP line per target; exits non-zero on any failure.
#
# Each target links against an archive of the pure sources, so it pulls in only what it
# uses: a source that does not exist yet (or does not build) fails only the targets that
# include its header, and a target whose source is merely missing is skipped.
set -u
secs=${1:-}
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$top/build-fuzz
CC=${FUZZ_CC:-clang}
PURE="addr template csv clock message ics buf text attendance dsn"
COMMON="-g -O1 -fno-sanitize-recover=all -std=c11 -D_GNU_SOURCE -I$top/src"
SLACK=60 # seconds allowed beyond the fuzzing time before a hung target is killed

case $secs in
''|*[!0-9]*) [ -z "$secs" ] || { echo "usage: $0 [SECONDS]" >&2; exit 64; } ;;
esac

mkdir -p "$out/obj"
objs=
for s in $PURE; do
        [ -f "$top/src/$s.c" ] || continue
        if $CC $COMMON -fsanitize=fuzzer-no-link,address,undefined -c -o "$out/obj/$s.o" \
                "$top/src/$s.c" 2>"$out/obj/$s.log"; then
                objs="$objs $out/obj/$s.o"
        else
                echo "# src/$s.c does not build for fuzzing:"
                head -20 "$out/obj/$s.log" | sed 's/^/#   /'
        fi
done
rm -f "$out/libpure.a"
[ -z "$objs" ] || ar rcs "$out/libpure.a" $objs

# the src/*.c files a target needs (by the headers it includes) that are not there yet
missing_sources() { # target.c
        sed -n 's/^#include "\([a-z_-]*\)\.h".*/\1/p' "$1" | while read -r h; do
                [ -f "$top/src/$h.c" ] || printf 'src/%s.c ' "$h"
        done
}

set -- "$top"/tests/fuzz/fuzz-*.c
[ -f "$1" ] || { echo "no fuzz targets"; exit 1; }
echo "1..$#"
n=0 failed=0
for src in "$@"; do
        n=$((n + 1))
        name=$(basename "$src" .c)
        bin=$out/$name
        log=$out/$name.log
        if ! $CC $COMMON -fsanitize=fuzzer,address,undefined -o "$bin" "$src" \
                ${objs:+"$out/libpure.a"} >"$log" 2>&1; then
                miss=$(missing_sources "$src")
                if [ -n "$miss" ]; then
                        echo "ok $n - $name # SKIP ${miss}not written yet"
                else
                        echo "not ok $n - $name # does not build"
                        head -30 "$log" | sed 's/^/#   /'
                        failed=$((failed + 1))
                fi
                continue
        fi

        work=$out/corpus/$name
        rm -rf "$work"
        mkdir -p "$work" "$out/crashes"
        [ -d "$top/tests/fuzz/corpus/$name" ] && cp "$top/tests/fuzz/corpus/$name"/* "$work"/ 2>/dev/null
        if [ -z "$secs" ]; then
                limit=$SLACK opts=-runs=0
        else
                limit=$((secs + SLACK)) opts="-max_total_time=$secs -print_final_stats=1"
        fi
        timeout -k 5 "$limit" "$bin" $opts -timeout=10 -rss_limit_mb=2048 \
                -artifact_prefix="$out/crashes/$name-" "$work" >"$log" 2>&1
        rc=$?
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\)[[:space:]]*DONE.*/\1/p' "$log" | tail -1)
        inputs=$(ls "$work" | wc -l)
        if [ $rc -eq 0 ]; then
                if [ -z "$secs" ]; then
                        echo "ok $n - $name # $inputs seed inputs replayed"
                else
                        echo "ok $n - $name # ${execs:-?} execs in ${secs}s, corpus $inputs"
                fi
        else
                echo "not ok $n - $name # exit $rc after ${execs:-?} execs"
                grep -E 'ERROR|SUMMARY|runtime error|artifact|Test unit written' "$log" | head -20 | sed 's/^/#   /'
                echo "#   full log: $log"
                failed=$((failed + 1))
        fi
done
[ "$failed" -eq 0 ]
