#!/bin/sh
# run.sh BUILD_DIR - every test: cmocka units, then end-to-end suites against the real
# binaries and real servers. Each suite speaks TAP; the last line counts the results.
set -u
B=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
log=$(mktemp -d /tmp/meccd-tests.XXXXXX)
pass=0 fail=0 skip=0

count() { # file
        p=$(grep '^ok ' "$1" | grep -vc '# SKIP') || true
        k=$(grep '^ok ' "$1" | grep -c '# SKIP') || true
        f=$(grep -c '^not ok ' "$1") || true
        pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + k))
}

for t in "$top/$B"/tests/test-*; do
        [ -x "$t" ] || continue
        name=${t##*/}
        CMOCKA_MESSAGE_OUTPUT=TAP "$t" >"$log/$name.tap" 2>&1
        rc=$?
        sed "s/^/[$name] /" "$log/$name.tap" | grep -E '^\[[^]]*\] (ok|not ok|#)' || true
        if [ $rc -ne 0 ] && ! grep -q '^not ok ' "$log/$name.tap"; then
                echo "not ok - $name exited $rc" >>"$log/$name.tap"
                echo "[$name] not ok - exited $rc"
                tail -20 "$log/$name.tap"
        fi
        count "$log/$name.tap"
done

for t in "$top"/tests/e2e/test_*.py; do
        [ -f "$t" ] || continue
        name=$(basename "$t" .py)
        MECCD_BUILD="$top/$B" /usr/bin/python3 "$top/tests/e2e/harness.py" "$t" >"$log/$name.tap" 2>&1
        rc=$?
        sed "s/^/[$name] /" "$log/$name.tap" | grep -E '^\[[^]]*\] (ok|not ok)' || true
        grep -q '^not ok ' "$log/$name.tap" && grep -A40 '^not ok ' "$log/$name.tap" | head -80
        if [ $rc -ne 0 ] && ! grep -q '^not ok ' "$log/$name.tap"; then
                echo "not ok - $name exited $rc" >>"$log/$name.tap"
                echo "[$name] not ok - exited $rc"; tail -30 "$log/$name.tap"
        fi
        count "$log/$name.tap"
done

# the fuzz targets replay their seed corpora (a regression check; `make fuzz` fuzzes)
if [ -z "${SKIP_FUZZ:-}" ] && command -v clang >/dev/null; then
        sh "$top/tests/fuzz/run.sh" >"$log/fuzz.tap" 2>&1
        sed 's/^/[fuzz] /' "$log/fuzz.tap" | grep -E '^\[fuzz\] (ok|not ok)' || true
        count "$log/fuzz.tap"
fi

echo "logs in $log"
if [ "$skip" -gt 0 ]; then
        echo "$pass passed, $fail failed, $skip skipped"
else
        echo "$pass passed, $fail failed"
fi
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
