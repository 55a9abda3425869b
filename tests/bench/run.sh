#!/bin/sh
# run.sh - `make bench`: what a scan costs on a lived-in database, how fast meccd admits
# new registrations and emails them (end to end) and delivers what is queued, compared
# with Postfix's smtp-source and with a cron + msmtp script, how admission and delivery
# scale, the system calls and SQLite commits each email costs, its memory, and what
# synchronous=FULL would cost. Everything runs on loopback against smtp-sink, on files
# under build/bench-work (the real disk, so fsync is real). The table goes to stdout and
# to bench-results.txt at the top of the tree (BENCH_OUT=FILE elsewhere).
#
# Sizes can be lowered for a quick look (the targets are judged at the defaults):
#   BENCH_SESSIONS=10000 BENCH_REGISTRATIONS=1000000 BENCH_DELIVERY=20000
#   BENCH_BIG=100000 BENCH_BASELINE=1000 BENCH_RUNS=3
#   BENCH_E2E=20000 (new registrations admitted and emailed end to end)
#   BENCH_ADMIT="2000 20000 200000" (admission scaling; drop 200000 for a quicker run)
#   BENCH_ADMIT_LIMIT=300 (seconds one admission run may take before it is stopped)
#   BENCH_COST=5000 (emails counted under strace and the commit hook)
# Where the scheduler puts the sink and its client changes both rates severalfold on a
# virtual machine (a wake-up on another CPU is expensive there), so the comparisons with
# smtp-source run twice, in two fixed placements (taskset): "split", smtp-sink on CPU 1
# and its client (meccd or smtp-source) on CPU 0, as a relay on a machine of its own
# would be; and "same", all on CPU 0, where every microsecond of CPU either side spends
# counts. BENCH_PIN=split or BENCH_PIN=same runs one of them, BENCH_PIN=sched leaves the
# placement to the scheduler.
# MECCD_BUILD=DIR benchmarks another build (for instance an older commit's, built in its
# own worktree): its binaries, and the templates and sources of the tree around DIR when
# DIR/../etc/templates exists.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
B=${MECCD_BUILD:-$top/build}
W=$top/build/bench-work
OUT=${BENCH_OUT:-$top/bench-results.txt}
# the tree the build was made from: its templates and sources go with its binaries
SRC=$top
[ ! -d "$B/../etc/templates" ] || [ ! -d "$B/../src" ] || SRC=$(cd "$B/.." && pwd)
PY=/usr/bin/python3
SESSIONS=${BENCH_SESSIONS:-10000}
REGS=${BENCH_REGISTRATIONS:-1000000}
DELIVERY=${BENCH_DELIVERY:-20000}
BIG=${BENCH_BIG:-100000}
BASELINE=${BENCH_BASELINE:-1000}
RUNS=${BENCH_RUNS:-3}
E2E=${BENCH_E2E:-20000}
ADMIT_SIZES=${BENCH_ADMIT:-2000 20000 200000}
ADMIT_LIMIT=${BENCH_ADMIT_LIMIT:-300}
COST=${BENCH_COST:-5000}
case "${BENCH_PIN:-}" in
"") PLACEMENTS="split same" ;;
same | split | sched) PLACEMENTS=$BENCH_PIN ;;
*) echo "bench: BENCH_PIN is split, same, sched or unset (both fixed placements)" >&2; exit 64 ;;
esac
[ "$(nproc)" -ge 2 ] || [ "$PLACEMENTS" = sched ] || { echo "bench: fixed placements need 2 CPUs (BENCH_PIN=sched)" >&2; exit 69; }
SINK_CPU="" CLIENT_CPU=""
NOW="2027-06-01 08:00Z"
NOW_S=$(date -u -d "2027-06-01 08:00" +%s)

for tool in hyperfine smtp-sink smtp-source msmtp sqlite3 cc; do
        command -v $tool >/dev/null || { echo "bench: $tool is missing (make bench installs it)" >&2; exit 69; }
done
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is missing" >&2; exit 69; }
[ -x "$B/meccd" ] && [ -x "$B/meccctl" ] || { echo "bench: build $B/meccd first (make)" >&2; exit 69; }

B_ORIG=$B
rm -rf "$W"
mkdir -p "$W/bin"
# a private copy: a `make` elsewhere in the tree must not swap the binary mid-run
cp "$B/meccd" "$B/meccctl" "$W/bin/"
B=$W/bin
sink_pid=""
daemon_pid=""
cleanup() {
        [ -z "$daemon_pid" ] || kill "$daemon_pid" 2>/dev/null || true
        [ -z "$sink_pid" ] || kill "$sink_pid" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

: >"$W/table"
: >"$W/notes"
log() { printf '%s\n' "$*" >&2; }
# row LABEL VALUE [TARGET VERDICT]
row() { printf '%-58s %16s  %-12s %s\n' "$1" "$2" "${3:-}" "${4:-}" | tee -a "$W/table" >&2; }
note() { printf '%s\n' "$*" >>"$W/notes"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
verdict() { awk "BEGIN { exit !($1) }" && echo met || echo MISSED; }
LIMITED="" # set once a delivery run had to be stopped at its time limit
now_ns() { date +%s%N; }
free_port() { $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
q() { sqlite3 -batch "$1" "PRAGMA busy_timeout = 5000; $2" | tail -n 1; }
# msg_size NAME KIND REGISTRATION: bytes of that email as it would go on the wire
# (meccctl preview on NAME's database), 4096 when it cannot be had
msg_size() {
        n_=$("$B/meccctl" -c "$W/$1.conf" --now "$NOW" preview "$2" "$3" 2>/dev/null | wc -c)
        [ "$n_" -gt 0 ] || { n_=4096; note "(the size of a $2 email could not be had: smtp-source sends $n_ bytes)"; }
        echo "$n_"
}

# conf NAME DB PORT CONNECTIONS: a configuration for a database and a relay
conf() {
        cat >"$W/$1.conf" <<EOF
database = "$2"
templates = "$SRC/etc/templates"
cancel_url = "https://hub.example.org/cancel?t={{token}}"
feedback_url = "https://hub.example.org/feedback"
smtp {
  url = "smtp://127.0.0.1:$3"
  tls = "none"
  max_per_minute = 1000000
  connections = $4
  from = "Oxfordshire MECC Training <mecc@example.org>"
}
EOF
}

meccd_once() { # CONF [env...]: one scan and delivery at NOW
        conf_=$1
        shift
        env MECCD_LOG=stderr "$@" "$B/meccd" -c "$W/$conf_.conf" --once --now "$NOW"
}

# ---- the databases ----------------------------------------------------------------------

DOWN=$(free_port) # nothing listens here: delivery fails at once and waits

# idle_db NAME SESSIONS REGISTRATIONS: a lived-in database on which a scan at NOW finds
# nothing to do. The generator writes two years of history; one scan settles what is left
# around NOW (closing, reminders), and what it queued is then marked as sent.
idle_db() {
        conf "$1" "$W/$1.db" "$DOWN" 1
        "$B/meccctl" -c "$W/$1.conf" init >/dev/null
        $PY "$top/tests/bench/gen.py" "$W/$1.db" history "$2" "$3" "$NOW_S"
        meccd_once "$1" 2>/dev/null || true
        q "$W/$1.db" "UPDATE outbox SET status = 'sent', sending = 0, sent_at = created_at,
                      last_error = NULL WHERE status = 'queued'" >/dev/null
        meccd_once "$1" 2>/dev/null || true
        left=$(q "$W/$1.db" "SELECT count(*) FROM outbox WHERE status = 'queued'")
        [ "$left" = 0 ] || { log "bench: the idle database $1 still has $left queued emails"; exit 70; }
}

# due_db NAME MESSAGES: sessions starting a day after NOW, 100 booked each (or fewer):
# one scan at NOW queues a joining link with an .ics for each registration.
due_db() {
        per=100
        [ "$2" -ge 100 ] || per=$2
        conf "$1" "$W/$1.db" "$DOWN" 1
        "$B/meccctl" -c "$W/$1.conf" init >/dev/null
        $PY "$top/tests/bench/gen.py" "$W/$1.db" due $(($2 / per)) $per "$NOW_S"
}

# ---- 1. scan cost ------------------------------------------------------------------------

log "== scan cost: generating $SESSIONS sessions / $REGS registrations"
t0=$(now_ns)
idle_db idle "$SESSIONS" "$REGS"
gen_s=$(calc %.1f "($(now_ns) - $t0) / 1e9")
idle_db idle10 $((SESSIONS / 10)) $((REGS / 10))
conf empty "$W/empty.db" "$DOWN" 1
"$B/meccctl" -c "$W/empty.conf" init >/dev/null
outbox_rows=$(q "$W/idle.db" "SELECT count(*) FROM outbox")
db_mb=$(calc %.0f "$(stat -c %s "$W/idle.db") / 1048576")
note "Scan database: $SESSIONS sessions over two years, $REGS registrations, $outbox_rows outbox rows"
note "  ($db_mb MB, generated and settled in $gen_s s); --now $NOW, when nothing is due."

scan_ms() { # NAME: median wall time of `meccd --once` in ms
        hyperfine -N -w 2 -r $((RUNS > 10 ? RUNS : 10)) --export-json "$W/hf-$1.json" \
                "$B/meccd -c $W/$1.conf --once --now '$NOW'" >/dev/null 2>&1
        $PY -c 'import json, sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"] * 1000))' \
                "$W/hf-$1.json"
}
version_ms=$(hyperfine -N -w 3 -r 20 --export-json "$W/hf-version.json" "$B/meccd --version" >/dev/null 2>&1 &&
             $PY -c 'import json, sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"] * 1000))' "$W/hf-version.json")
empty_ms=$(scan_ms empty)
idle10_ms=$(scan_ms idle10)
idle_ms=$(scan_ms idle)
row "scan, $SESSIONS sessions / $REGS registrations (median)" "$idle_ms ms" "<= 20 ms" "$(verdict "$idle_ms <= 20")"
row "scan, $((SESSIONS / 10)) sessions / $((REGS / 10)) registrations (median)" "$idle10_ms ms"
row "scan, empty database (start, config, templates, exit)" "$empty_ms ms"
row "meccd --version (exec and dynamic linking only)" "$version_ms ms"

# where the idle scan's time goes, statement by statement
cc -std=gnu11 -O2 -shared -fPIC -o "$W/sqlprof.so" "$top/tests/bench/sqlprof.c" -ldl -lsqlite3
env SQLPROF_OUT="$W/sqlprof-idle.txt" LD_PRELOAD="$W/sqlprof.so" MECCD_LOG=stderr \
        "$B/meccd" -c "$W/idle.conf" --once --now "$NOW" 2>/dev/null
note ""
note "Where one idle scan of the big database spends its SQL time (ms, calls, statement):"
head -n 6 "$W/sqlprof-idle.txt" | awk -F '\t' '{ printf "  %8.2f %6d  %.90s\n", $1, $2, $3 }' >>"$W/notes"

# every SQL statement of the scan and of delivery must find its rows through an index
note ""
note "EXPLAIN QUERY PLAN of every SQL statement in src/scan.c, outbox.c, db.c, render.c:"
if $PY "$top/tests/bench/plans.py" "$W/idle.db" "$SRC/src/scan.c" "$SRC/src/outbox.c" \
        "$SRC/src/db.c" "$SRC/src/render.c" >"$W/plans.txt"; then
        plans_ok=met
else
        plans_ok=MISSED
fi
cut -c1-150 "$W/plans.txt" | sed 's/^/  /' >>"$W/notes"
n_plans=$(wc -l <"$W/plans.txt")
n_full=$(grep -c '^FULL\|^ERROR' "$W/plans.txt" || true)
row "query plans: $n_plans statements, full scans of big tables" "$n_full" "0" "$plans_ok"

# ---- 2. delivery throughput --------------------------------------------------------------

SINK=$(free_port)
# sink_up: (re)start smtp-sink unless it is running
sink_up() {
        if [ -n "$sink_pid" ] && kill -0 "$sink_pid" 2>/dev/null; then
                return 0
        fi
        [ -z "$sink_pid" ] || note "smtp-sink had exited ($(tail -n 1 "$W/sink.log" 2>/dev/null)); restarted."
        if [ "$(id -u)" = 0 ]; then
                $SINK_CPU smtp-sink -u nobody -c "127.0.0.1:$SINK" 1000 >/dev/null 2>>"$W/sink.log" &
        else
                $SINK_CPU smtp-sink -c "127.0.0.1:$SINK" 1000 >/dev/null 2>>"$W/sink.log" &
        fi
        sink_pid=$!
        $PY - "$SINK" <<'EOF'
import socket, sys, time
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()
        break
    except OSError:
        time.sleep(0.05)
EOF
}
sink_up

# place NAME: where the sink (running, or restarted) and its clients go from now on
place() {
        case "$1" in
        same) sink_mask=0 CLIENT_CPU="taskset -c 0" ;;
        split) sink_mask=1 CLIENT_CPU="taskset -c 0" ;;
        sched) sink_mask=0-$(($(nproc) - 1)) CLIENT_CPU="" ;;
        esac
        SINK_CPU="taskset -c $sink_mask"
        sink_up
        taskset -p -c "$sink_mask" "$sink_pid" >/dev/null
}
# where: the placement in words, for the notes
where() {
        case "$1" in
        same) echo "same: smtp-sink, meccd and smtp-source on CPU 0" ;;
        split) echo "split: smtp-sink on CPU 1, meccd or smtp-source on CPU 0" ;;
        sched) echo "sched: where the scheduler puts them" ;;
        esac
}

# deliver TEMPLATE CONNECTIONS [env...]: copy the template database, run one `meccd --once`
# against the sink, print "seconds sent peak_rss_kb total cpu_seconds", counting the sent
# emails of kind $KIND (joining_link unless set). A run is stopped (gracefully) after
# $LIMIT seconds, by default 30 s plus 1 s per thousand messages; the rate then counts
# what was sent.
KIND=joining_link
LIMIT=""
deliver() {
        tpl=$1 conns=$2
        shift 2
        sink_up
        rm -f "$W/run.db" "$W/run.db-wal" "$W/run.db-shm"
        cp "$W/$tpl.db" "$W/run.db"
        conf run "$W/run.db" "$SINK" "$conns"
        total=$(q "$W/run.db" "SELECT count(*) FROM registrations")
        limit=${LIMIT:-$((30 + total / 1000))}
        t0=$(now_ns)
        env "$@" MECCD_LOG=stderr $CLIENT_CPU /usr/bin/time -v -o "$W/time.txt" timeout "$limit" \
                "$B/meccd" -c "$W/run.conf" --once --now "$NOW" 2>"$W/run.log" || true
        t1=$(now_ns)
        sent=$(q "$W/run.db" "SELECT count(*) FROM outbox WHERE kind = '$KIND' AND status = 'sent'")
        rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$W/time.txt")
        cpu=$(awk -F': ' '/User time|System time/ { s += $2 } END { print s }' "$W/time.txt")
        echo "$(calc %.3f "($t1 - $t0) / 1e9") $sent $rss $total $cpu"
}

# series LABEL TEMPLATE CONNECTIONS [env...]: RUNS deliveries; sets S_SECS S_RATE S_SENT S_RSS
series() {
        label=$1
        shift
        : >"$W/series"
        S_LIMITED=""
        i=0
        while [ $i -lt "$RUNS" ]; do
                deliver "$@" >>"$W/series"
                i=$((i + 1))
                # a run stopped at its limit says enough: do not wait for it twice more
                if stopped "$W/series"; then
                        note "$label: stopped at its time limit with $(tail -n 1 "$W/series" | awk '{ print $2 " of " $4 }') sent; one run only."
                        S_LIMITED=" (stopped)"
                        LIMITED=1
                        break
                fi
        done
        summary "$W/series"
}

# summary FILE: of deliver's lines, sets S_RATE S_SECS S_SENT (medians), S_RSS (peak) and
# S_CPU (median CPU microseconds per email sent)
summary() {
        S_RATE=$(awk '{ print $2 / $1 }' "$1" | median)
        S_SECS=$(awk '{ print $1 }' "$1" | median)
        S_SENT=$(awk '{ print $2 }' "$1" | median)
        S_RSS=$(awk '{ print $3 }' "$1" | sort -n | tail -n 1)
        S_CPU=$(awk '$2 > 0 { print $5 / $2 * 1e6 }' "$1" | median)
        S_N=$(wc -l <"$1")
}

# stopped FILE: did the last run in FILE stop at its time limit?
stopped() { tail -n 1 "$1" | awk '{ exit !($2 < $4) }'; }

source_once() { # SESSIONS SIZE COUNT: messages/s of one smtp-source run
        sink_up
        t0=$(now_ns)
        $CLIENT_CPU smtp-source -l "$2" -m "$3" -s "$1" -d -f mecc@example.org -t volunteer@example.org \
                "127.0.0.1:$SINK" >/dev/null 2>&1
        t1=$(now_ns)
        calc %.1f "$3 / (($t1 - $t0) / 1e9)"
        echo
}

log "== delivery: $DELIVERY due joining links"
due_db due "$DELIVERY"
# the scan alone: the relay is down, so every link is queued and nothing goes out
cp "$W/due.db" "$W/queued.db"
conf queued "$W/queued.db" "$DOWN" 1
t0=$(now_ns)
meccd_once queued 2>/dev/null || true
scan_s=$(calc %.2f "($(now_ns) - $t0) / 1e9")
q "$W/queued.db" "UPDATE outbox SET next_attempt_at = created_at, attempts = 0, sending = 0,
                  first_attempt_at = NULL, last_error = NULL, body = NULL
                  WHERE status = 'queued'" >/dev/null

size=$(msg_size queued joining_link "$(q "$W/queued.db" "SELECT registration_id FROM outbox WHERE kind = 'joining_link' ORDER BY id LIMIT 1 OFFSET $((DELIVERY / 2))")")
# compare_delivery P: meccd against smtp-source in placement P (place P first)
compare_delivery() {
        P=$1
        # each meccd run is followed by its smtp-source reference, so that both see the same load
        for f in d1 dq d4 s1 s4; do : >"$W/$f"; done
        lim1="" limq="" lim4=""
        i=0
        while [ $i -lt "$RUNS" ]; do
                deliver due 1 >>"$W/d1"
                source_once 1 "$size" "$DELIVERY" >>"$W/s1"
                deliver queued 1 >>"$W/dq"
                deliver due 4 >>"$W/d4"
                source_once 4 "$size" "$DELIVERY" >>"$W/s4"
                i=$((i + 1))
                ! stopped "$W/d1" || lim1=" (stopped)"
                ! stopped "$W/dq" || limq=" (stopped)"
                ! stopped "$W/d4" || lim4=" (stopped)"
                if [ -n "$lim1$limq$lim4" ]; then
                        note "Delivery of $DELIVERY joining links: a run stopped at its time limit; one run only."
                        LIMITED=1
                        break
                fi
        done
        summary "$W/d1"
        rate1=$S_RATE
        summary "$W/dq"
        rateq=$S_RATE
        cpuq=$S_CPU
        summary "$W/d4"
        rate4=$S_RATE
        src1=$(median <"$W/s1")
        src4=$(median <"$W/s4")
        ratioq=$(calc %.2f "$rateq / $src1")
        ratio1=$(calc %.2f "$rate1 / $src1")
        ratio4=$(calc %.2f "$rate4 / $src4")
        row "[$P] joining links, scan + delivery, 1 connection (msg/s)" "$(calc %.0f "$rate1")"
        row "[$P] smtp-source -s 1 -d, $size bytes (msg/s)" "$(calc %.0f "$src1")"
        row "[$P]   ratio, 1 connection" "$ratio1" ">= 0.9" "$(verdict "$ratio1 >= 0.9")$lim1"
        row "[$P] joining links, scan + delivery, 4 connections (msg/s)" "$(calc %.0f "$rate4")"
        row "[$P] smtp-source -s 4 -d, $size bytes (msg/s)" "$(calc %.0f "$src4")"
        row "[$P]   ratio, 4 connections" "$ratio4" ">= 0.8" "$(verdict "$ratio4 >= 0.8")$lim4"
        row "[$P] delivery only, pre-queued, 1 connection (msg/s)" "$(calc %.0f "$rateq")"
        row "[$P]   ratio to smtp-source -s 1 -d" "$ratioq" ">= 0.6" "$(verdict "$ratioq >= 0.6")$limq"
        row "[$P] meccd CPU per email, pre-queued (us, user + system)" "$(calc %.0f "${cpuq:-0}")"
}
note ""
note "Delivery: $DELIVERY joining links (text, HTML and .ics; $size bytes each, meccctl preview)"
note "  to smtp-sink on loopback, smtp.max_per_minute = 1000000, tls = \"none\"; smtp-source sends"
note "  messages of the same size. Scan + delivery: scan, queue, render, MIME, SMTP, mark sent."
note "  The scan that queues them all takes $scan_s s of it (relay down, nothing sent). Each"
note "  comparison runs in each placement ([P] in the table):"
for P in $PLACEMENTS; do
        note "    $(where "$P")"
        place "$P"
        compare_delivery "$P"
done
# the other measures: where BENCH_PIN says, else where the scheduler puts them
REST=${BENCH_PIN:-sched}
place "$REST"
row "scan queueing $DELIVERY joining links (s)" "$scan_s"

# ---- 3. end to end: new registrations admitted and emailed ----------------------------------

# new_db NAME N: what the website writes: one open session a month after NOW with room for
# N, and N new registrations made during the day before NOW (sqlite3, as the website would).
new_db() {
        conf "$1" "$W/$1.db" "$DOWN" 1
        "$B/meccctl" -c "$W/$1.conf" init >/dev/null
        sqlite3 -batch "$W/$1.db" "PRAGMA busy_timeout = 5000; BEGIN;
                INSERT INTO sessions(id, title, starts_at, ends_at, capacity, join_url, trainer_email, status)
                VALUES (1, 'MECC Live Online Training', $NOW_S + 30 * 86400 + 3600,
                        $NOW_S + 30 * 86400 + 9000, max($2, 1), 'https://meet.example.org/mecc-1',
                        'trainer@example.org', 'open');
                WITH RECURSIVE k(j) AS (SELECT 1 WHERE $2 > 0 UNION ALL SELECT j + 1 FROM k WHERE j < $2)
                INSERT INTO registrations(id, session_id, name, email, registered_at)
                SELECT j, 1, 'Volunteer Número ' || j, 'volunteer' || j || '@example.org',
                       $NOW_S - 86400 + (j - 1) * 86400 / max($2, 1)
                FROM k;
                COMMIT;" >/dev/null
}

# admit_once NAME: one `meccd --once` on a copy of NAME's database with the relay down: it
# admits every registration, queues their confirmations, finds the relay closed and exits.
# Prints "seconds booked"; a run is stopped after ADMIT_LIMIT seconds (nothing is then
# committed: admission is one transaction).
admit_once() {
        rm -f "$W/adm.db" "$W/adm.db-wal" "$W/adm.db-shm"
        cp "$W/$1.db" "$W/adm.db"
        conf adm "$W/adm.db" "$DOWN" 1
        t0=$(now_ns)
        env MECCD_LOG=stderr $CLIENT_CPU timeout "$ADMIT_LIMIT" "$B/meccd" -c "$W/adm.conf" --once --now "$NOW" \
                2>"$W/adm.log" || true
        t1=$(now_ns)
        echo "$(calc %.3f "($t1 - $t0) / 1e9") $(q "$W/adm.db" "SELECT count(*) FROM registrations WHERE status = 'booked'")"
}

# admit_series N: RUNS admissions of N new registrations (one if a run is stopped); sets
# A_SECS (median) and A_STOPPED, and keeps the last result as admitted$N.db for N = E2E.
admit_series() {
        [ -f "$W/new$1.db" ] || new_db "new$1" "$1"
        : >"$W/aseries"
        A_STOPPED=""
        i=0
        while [ $i -lt "$RUNS" ]; do
                admit_once "new$1" >>"$W/aseries"
                i=$((i + 1))
                if tail -n 1 "$W/aseries" | awk -v n="$1" '{ exit !($2 < n) }'; then
                        A_STOPPED=" (stopped)"
                        note "admission of $1: stopped at its limit of $ADMIT_LIMIT s with nothing committed; one run only."
                        break
                fi
        done
        A_SECS=$(awk '{ print $1 }' "$W/aseries" | median)
        if [ "$1" = "$E2E" ]; then
                cp "$W/adm.db" "$W/admitted.db"
                conf admitted "$W/admitted.db" "$DOWN" 1
        fi
}

log "== end to end: $E2E new registrations on one session; admission at $ADMIT_SIZES"
# the fixed cost of a run (start, the scan's other steps, exit) with nothing to admit
admit_series 0
admit0=$A_SECS
sizes=$(printf '%s\n' $ADMIT_SIZES | sort -n | uniq)
echo " $sizes " | tr '\n' ' ' | grep -q " $E2E " || sizes="$sizes $E2E"
: >"$W/admit"
for n in $sizes; do
        admit_series "$n"
        per=$(calc %.1f "($A_SECS - $admit0) / $n * 1e6")
        echo "$n $A_SECS $per $A_STOPPED" >>"$W/admit"
done
admit_e2e=$(awk -v n="$E2E" '$1 == n { print $2 }' "$W/admit")

# the same messages as a real confirmation, from smtp-source, on 1 and 4 sessions; each
# meccd run is followed by its reference, so that both see the same load
csize=$(msg_size admitted confirmation $((E2E / 2)))

# compare_e2e P: end to end against smtp-source in placement P (place P first)
compare_e2e() {
        P=$1
        KIND=confirmation
        LIMIT=$((60 + E2E / 400))
        for f in e2e1 e2e4 src1c src4c; do : >"$W/$f"; done
        e2e_lim=""
        i=0
        while [ $i -lt "$RUNS" ]; do
                deliver "new$E2E" 1 >>"$W/e2e1"
                source_once 1 "$csize" "$E2E" >>"$W/src1c"
                deliver "new$E2E" 4 >>"$W/e2e4"
                source_once 4 "$csize" "$E2E" >>"$W/src4c"
                i=$((i + 1))
                if stopped "$W/e2e1" || stopped "$W/e2e4"; then
                        note "end to end [$P]: a run stopped at its limit of $LIMIT s: one run only."
                        e2e_lim=" (stopped)"
                        LIMITED=1
                        break
                fi
        done
        KIND=joining_link
        LIMIT=""
        e2e1=$(awk '{ print $2 / $1 }' "$W/e2e1" | median)
        e2e4=$(awk '{ print $2 / $1 }' "$W/e2e4" | median)
        e2e1_s=$(awk '{ print $1 }' "$W/e2e1" | median)
        rss_=$(cat "$W/e2e1" "$W/e2e4" | awk '{ print $3 }' | sort -n | tail -n 1)
        [ "$rss_" -le "${e2e_rss:-0}" ] || e2e_rss=$rss_
        cpu_=$(awk '$2 > 0 { print $5 / $2 * 1e6 }' "$W/e2e1" | median)
        e2e_cpu="$e2e_cpu $(calc %.0f "${cpu_:-0}") [$P]"
        s1c=$(median <"$W/src1c")
        s4c=$(median <"$W/src4c")
        r_e2e1=$(calc %.2f "$e2e1 / $s1c")
        r_e2e4=$(calc %.2f "$e2e4 / $s4c")
        r_e2e41=$(calc %.2f "$e2e4 / $e2e1")
        after1=$(calc %.0f "$E2E / ($e2e1_s - $admit_e2e)")
        row "[$P] end to end, $E2E registrations, 1 connection (emails/s)" "$(calc %.0f "$e2e1")"
        row "[$P] smtp-source -s 1 -d, $csize bytes (msg/s)" "$(calc %.0f "$s1c")"
        row "[$P]   end to end / smtp-source, 1 connection" "$r_e2e1" ">= 0.5" "$(verdict "$r_e2e1 >= 0.5")$e2e_lim"
        row "[$P] end to end, $E2E registrations, 4 connections (emails/s)" "$(calc %.0f "$e2e4")"
        row "[$P] smtp-source -s 4 -d, $csize bytes (msg/s)" "$(calc %.0f "$s4c")"
        row "[$P]   end to end / smtp-source, 4 connections" "$r_e2e4"
        row "[$P]   end to end, 4 connections / 1 connection" "$r_e2e41" ">= 1.5" "$(verdict "$r_e2e41 >= 1.5")$e2e_lim"
        row "[$P]   delivery after admission, 1 connection (emails/s)" "$after1"
}
e2e_rss=0
e2e_cpu=""
for P in $PLACEMENTS; do
        place "$P"
        compare_e2e "$P"
done
place "$REST"
row "end to end: admission alone, relay down (s)" "$(calc %.2f "$admit_e2e")"
note ""
note "End to end: $E2E new registrations on one open session (inserted with sqlite3, as the"
note "  website would; capacity $E2E), one meccd --once at NOW: admit, queue, render, MIME,"
note "  SMTP to smtp-sink, record. Confirmations of $csize bytes (meccctl preview); smtp-source"
note "  sends as many messages of that size, each run right after meccd's. Admission alone is"
note "  meccd --once with the relay down (a closed port): it admits them all, queues, finds the"
note "  relay closed and exits. Peak RSS of the end-to-end runs $(calc %.1f "$e2e_rss / 1024") MiB; CPU"
note "  per email (user + system, 1 connection, admission included):$e2e_cpu us."

note ""
note "Admission alone (relay down), one session, median of $RUNS runs; per registration: the"
note "  time less that of a run with nothing to admit ($(calc %.3f "$admit0") s: start, scan, exit)."
while read -r n secs per stopped; do
        if [ -n "$stopped" ]; then
                row "admission, $n registrations (s; us per registration)" "> $(calc %.0f "$secs"); > $(calc %.0f "$per")"
        else
                row "admission, $n registrations (s; us per registration)" "$(calc %.2f "$secs"); $per"
        fi
done <"$W/admit"
small=$(printf '%s\n' $ADMIT_SIZES | sort -n | head -n 1)
large=$(printf '%s\n' $ADMIT_SIZES | sort -n | tail -n 1)
per_small=$(awk -v n="$small" '$1 == n { print $3 }' "$W/admit")
per_large=$(awk -v n="$large" '$1 == n { print $3 }' "$W/admit")
stop_large=$(awk -v n="$large" '$1 == n { print $4 }' "$W/admit")
a_lin=$(calc %.2f "$per_large / $per_small")
if [ -n "$stop_large" ]; then
        row "  per registration at $large / at $small" "> $a_lin" "<= 2" "MISSED (stopped)"
else
        row "  per registration at $large / at $small" "$a_lin" "<= 2" "$(verdict "$a_lin <= 2")"
fi

# ---- 4. what an email costs: system calls and SQLite commits --------------------------------

# cost NAME TEMPLATE: COST emails of kind $KIND from TEMPLATE on 1 connection, counted twice:
# every system call of the process (strace -f -c) and every write transaction it commits
# (tests/bench/sqlprof.c's commit hook). Sets C_SYS and C_COMMITS (per email sent).
cost() {
        sink_up
        rm -f "$W/run.db" "$W/run.db-wal" "$W/run.db-shm"
        cp "$W/$2.db" "$W/run.db"
        conf run "$W/run.db" "$SINK" 1
        env MECCD_LOG=stderr $CLIENT_CPU timeout 300 strace -f -c -o "$W/strace-$1.txt" \
                "$B/meccd" -c "$W/run.conf" --once --now "$NOW" 2>/dev/null || true
        sent=$(q "$W/run.db" "SELECT count(*) FROM outbox WHERE kind = '$KIND' AND status = 'sent'")
        calls=$(awk '$NF == "total" { print $4 }' "$W/strace-$1.txt")
        C_SYS=$(calc %.1f "$calls / ($sent > 0 ? $sent : 1)")
        rm -f "$W/run.db" "$W/run.db-wal" "$W/run.db-shm"
        cp "$W/$2.db" "$W/run.db"
        # timeout first: only meccd may write the report
        $CLIENT_CPU timeout 300 env SQLPROF_OUT="$W/sqlprof-$1.txt" LD_PRELOAD="$W/sqlprof.so" MECCD_LOG=stderr \
                "$B/meccd" -c "$W/run.conf" --once --now "$NOW" 2>/dev/null || true
        sent=$(q "$W/run.db" "SELECT count(*) FROM outbox WHERE kind = '$KIND' AND status = 'sent'")
        commits=$(awk -F '\t' '$3 == "(commits)" { print $2 }' "$W/sqlprof-$1.txt")
        C_COMMITS=$(calc %.2f "${commits:-0} / ($sent > 0 ? $sent : 1)")
        C_SENT=$sent
}

if command -v strace >/dev/null; then
        log "== cost per email: $COST confirmations under strace and a commit hook"
        KIND=confirmation
        [ -f "$W/new$COST.db" ] || new_db "new$COST" "$COST"
        cost e2e "new$COST"
        row "end to end, system calls per email (strace -c)" "$C_SYS"
        row "end to end, SQLite commits per email" "$C_COMMITS"
        # the same confirmations, admitted (relay down) then delivered
        admit_once "new$COST" >/dev/null
        cp "$W/adm.db" "$W/cq.db"
        q "$W/cq.db" "UPDATE outbox SET next_attempt_at = created_at, attempts = 0, sending = 0,
                      first_attempt_at = NULL, last_error = NULL, body = NULL
                      WHERE status = 'queued'" >/dev/null
        cost queued cq
        row "delivery only (pre-queued), system calls per email" "$C_SYS"
        row "delivery only (pre-queued), SQLite commits per email" "$C_COMMITS"
        note ""
        note "Cost per email: $COST new registrations end to end, and the same confirmations queued"
        note "  beforehand, on 1 connection; system calls of the whole process (strace -f -c), write"
        note "  transactions committed (a commit hook, tests/bench/sqlprof.c); divided by emails sent."
        note "  The system calls of the delivery-only run ($C_SENT sent), most frequent first:"
        awk '$NF != "total" && $4 ~ /^[0-9]+$/ { print $4, $NF }' \
                "$W/strace-queued.txt" | sort -rn | head -n 12 |
                awk -v n="$C_SENT" '{ printf "  %7.2f %s\n", $1 / (n > 0 ? n : 1), $2 }' >>"$W/notes"
        KIND=joining_link
fi

# ---- 5. the cron + msmtp baseline ----------------------------------------------------------

log "== baseline: cron-msmtp.sh, $BASELINE messages"
due_db base "$BASELINE"
cp "$W/base.db" "$W/cron.db"
sink_up
t0=$(now_ns)
NOW=$NOW_S timeout $((60 + BASELINE / 5)) sh "$top/contrib/bench/cron-msmtp.sh" "$W/cron.db" \
        127.0.0.1 "$SINK" >/dev/null 2>"$W/cron.log" || true
t1=$(now_ns)
cron_sent=$(q "$W/cron.db" "SELECT count(*) FROM outbox WHERE kind = 'joining_link' AND status = 'sent'")
cron_rate=$(calc %.2f "$cron_sent / (($t1 - $t0) / 1e9)")
series "meccd, $BASELINE messages" base 1
base_rate=$S_RATE
limb=$S_LIMITED
base_secs=$S_SECS
speedup=$(calc %.0f "$base_rate / $cron_rate")
row "cron + msmtp script, $BASELINE messages (msg/s)" "$cron_rate"
row "meccd, same $BASELINE messages, 1 connection (msg/s)" "$(calc %.0f "$base_rate")"
row "  meccd / script" "${speedup}x" ">= 150x" "$(verdict "$speedup >= 150")$limb"

# ---- 6 and 7. memory and scaling ------------------------------------------------------------

log "== scaling and memory"
due_db d10 $((BIG / 10))
series "meccd, $((BIG / 10)) messages" d10 1
secs10=$S_SECS
rate10=$S_RATE
due_db d100 "$BIG"
RUNS_SAVED=$RUNS
RUNS=1 # one run of the biggest size keeps `make bench` within its time
series "meccd, $BIG messages" d100 1
RUNS=$RUNS_SAVED
secs100=$S_SECS
rate100=$S_RATE
rss100=$S_RSS
sent100=$S_SENT
rss_mb=$(calc %.1f "$rss100 / 1024")
row "peak RSS sending $BIG messages (MiB; $sent100 sent)" "$rss_mb" "<= 16 MiB" "$(verdict "$rss_mb <= 16")"

# idle: the daemon on the big database, after its first scan, with nothing due
conf daemon "$W/idle.db" "$DOWN" 2
env MECCD_LOG=stderr "$B/meccd" -c "$W/daemon.conf" --now "$NOW" 2>"$W/daemon.log" &
daemon_pid=$!
i=0
while [ $i -lt 100 ] && [ "$(q "$W/idle.db" "SELECT value FROM meta WHERE key = 'last_scan_at'")" != "$NOW_S" ]; do
        sleep 0.1
        i=$((i + 1))
done
sleep 0.5
idle_rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$daemon_pid/status")
idle_hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$daemon_pid/status")
kill "$daemon_pid"
wait "$daemon_pid" || true
daemon_pid=""
row "idle RSS of the daemon after a scan of the big database (MiB)" "$(calc %.1f "$idle_rss / 1024")"
row "  its peak during that scan, VmHWM (MiB)" "$(calc %.1f "$idle_hwm / 1024")"

per1=$(calc %.3f "$base_secs / $BASELINE * 1000")
per10=$(calc %.3f "$secs10 / ($BIG / 10) * 1000")
per100=$(calc %.3f "$secs100 / $BIG * 1000")
row "delivery time, $BASELINE messages (s; ms per message)" "$(calc %.2f "$base_secs"); $per1"
row "delivery time, $((BIG / 10)) messages (s; ms per message)" "$(calc %.2f "$secs10"); $per10"
row "delivery time, $BIG messages (s; ms per message)" "$(calc %.2f "$secs100"); $per100"
lin=$(calc %.2f "$per100 / $per10")
row "  linearity: time per message at $BIG / at $((BIG / 10))" "$lin" "~1" "$(verdict "$lin <= 1.25 && $lin >= 0.8")$S_LIMITED"
[ -z "$LIMITED" ] || note "(stopped): a run reached its time limit of 30 s + 1 s per 1000 emails; its rate counts what was sent."
note ""
note "Scaling and memory runs use 1 connection; the $BIG run is done once (time), the"
note "  others $RUNS times (median). Peak RSS: /usr/bin/time -v of meccd --once."

# ---- 8. durability ----------------------------------------------------------------------------

log "== durability: synchronous NORMAL vs FULL"
series "meccd, synchronous=FULL" d10 1 MECCD_SYNCHRONOUS=FULL
rate_full=$S_RATE
row "delivery, $((BIG / 10)) messages, synchronous=NORMAL (msg/s)" "$(calc %.0f "$rate10")"
row "delivery, $((BIG / 10)) messages, synchronous=FULL (msg/s)" "$(calc %.0f "$rate_full")"
note ""
note "NORMAL ships: in WAL mode it loses nothing when meccd crashes or is killed; only a power"
note "  cut can undo the last commits, and then an email may go twice (same Message-ID) or a"
note "  registration be admitted again; FULL adds an fsync to every commit (commits per email above)."

# ---- profile of delivery, where perf can sample -------------------------------------------------

if perf record -e cpu-clock -o "$W/perf.test" true >/dev/null 2>&1; then
        due_db prof 2000
        cp "$W/prof.db" "$W/run.db"
        conf run "$W/run.db" "$SINK" 1
        perf record -e cpu-clock -F 2000 --call-graph dwarf -o "$W/perf.data" \
                env MECCD_LOG=stderr timeout 60 "$B/meccd" -c "$W/run.conf" --once --now "$NOW" \
                >/dev/null 2>&1 || true
        perf report -i "$W/perf.data" --children --sort sym --stdio -g none 2>/dev/null |
                awk '/^ +[0-9.]+%/ && $4 !~ /^0x/ && $5 !~ /^0x/' |
                grep -E 'render_mail|ics_build|vtimezone|message_build|sqlite3_step|db_step_done|curl_multi_socket_action|stale|next_due|__tz_convert|record_outcome|sd_event_run|epoll_wait|finish_task_switch' |
                head -n 16 >"$W/profile.txt" || true
        note ""
        note "CPU profile of delivering 2000 links (perf, cpu-clock; % of samples, inclusive):"
        awk '{ printf "  %7s  %s\n", $1, $4 " " $5 }' "$W/profile.txt" >>"$W/notes"
fi

kill "$sink_pid" 2>/dev/null || true
wait "$sink_pid" 2>/dev/null || true
sink_pid=""

{
        echo "meccd benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), $(git -C "$SRC" describe --always --dirty 2>/dev/null || echo '?')$([ "$SRC" = "$top" ] || echo " (build $B_ORIG; bench from $(git -C "$top" describe --always --dirty 2>/dev/null || echo '?'))")"
        echo "$(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), SQLite $(sqlite3 --version | cut -d' ' -f1), $(curl-config --version 2>/dev/null || echo libcurl); comparisons with smtp-source placed: $PLACEMENTS; the rest: $REST"
        echo
        printf '%-58s %16s  %-12s %s\n' "measure" "value" "target" "verdict"
        cat "$W/table"
        echo
        cat "$W/notes"
} >"$OUT"
cat "$OUT"
