#!/bin/sh
# run.sh - `make bench`: what a scan costs on a lived-in database, how fast meccd delivers
# compared with Postfix's smtp-source and with a cron + msmtp script, its memory, how
# delivery time scales, and what synchronous=FULL would cost. Everything runs on loopback
# against smtp-sink, on files under build/bench-work (the real disk, so fsync is real).
# The table goes to stdout and to bench-results.txt at the top of the tree.
#
# Sizes can be lowered for a quick look (the targets are judged at the defaults):
#   BENCH_SESSIONS=10000 BENCH_REGISTRATIONS=1000000 BENCH_DELIVERY=20000
#   BENCH_BIG=100000 BENCH_BASELINE=1000 BENCH_RUNS=3
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
B=${MECCD_BUILD:-$top/build}
W=$top/build/bench-work
OUT=$top/bench-results.txt
PY=/usr/bin/python3
SESSIONS=${BENCH_SESSIONS:-10000}
REGS=${BENCH_REGISTRATIONS:-1000000}
DELIVERY=${BENCH_DELIVERY:-20000}
BIG=${BENCH_BIG:-100000}
BASELINE=${BENCH_BASELINE:-1000}
RUNS=${BENCH_RUNS:-3}
NOW="2027-06-01 08:00Z"
NOW_S=$(date -u -d "2027-06-01 08:00" +%s)

for tool in hyperfine smtp-sink smtp-source msmtp sqlite3 cc; do
        command -v $tool >/dev/null || { echo "bench: $tool is missing (make bench installs it)" >&2; exit 69; }
done
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is missing" >&2; exit 69; }
[ -x "$B/meccd" ] && [ -x "$B/meccctl" ] || { echo "bench: build $B/meccd first (make)" >&2; exit 69; }

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

# conf NAME DB PORT CONNECTIONS: a configuration for a database and a relay
conf() {
        cat >"$W/$1.conf" <<EOF
database = "$2"
templates = "$top/etc/templates"
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
if $PY "$top/tests/bench/plans.py" "$W/idle.db" "$top/src/scan.c" "$top/src/outbox.c" \
        "$top/src/db.c" "$top/src/render.c" >"$W/plans.txt"; then
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
                smtp-sink -u nobody -c "127.0.0.1:$SINK" 1000 >/dev/null 2>>"$W/sink.log" &
        else
                smtp-sink -c "127.0.0.1:$SINK" 1000 >/dev/null 2>>"$W/sink.log" &
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

# deliver TEMPLATE CONNECTIONS [env...]: copy the template database, run one `meccd --once`
# against the sink, print "seconds sent peak_rss_kb". A run is stopped (gracefully) after
# 30 s plus 1 s per thousand messages; the rate then counts what was sent.
deliver() {
        tpl=$1 conns=$2
        shift 2
        sink_up
        rm -f "$W/run.db" "$W/run.db-wal" "$W/run.db-shm"
        cp "$W/$tpl.db" "$W/run.db"
        conf run "$W/run.db" "$SINK" "$conns"
        total=$(q "$W/run.db" "SELECT count(*) FROM registrations")
        limit=$((30 + total / 1000))
        t0=$(now_ns)
        env "$@" MECCD_LOG=stderr /usr/bin/time -v -o "$W/time.txt" timeout "$limit" \
                "$B/meccd" -c "$W/run.conf" --once --now "$NOW" 2>"$W/run.log" || true
        t1=$(now_ns)
        sent=$(q "$W/run.db" "SELECT count(*) FROM outbox WHERE kind = 'joining_link' AND status = 'sent'")
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
                if tail -n 1 "$W/series" | awk '{ exit !($2 < $4) }'; then
                        note "$label: stopped at its time limit with $(tail -n 1 "$W/series" | awk '{ print $2 " of " $4 }') sent; one run only."
                        S_LIMITED=" (stopped)"
                        LIMITED=1
                        break
                fi
        done
        S_RATE=$(awk '{ print $2 / $1 }' "$W/series" | median)
        S_SECS=$(awk '{ print $1 }' "$W/series" | median)
        S_SENT=$(awk '{ print $2 }' "$W/series" | median)
        S_RSS=$(awk '{ print $3 }' "$W/series" | sort -n | tail -n 1)
        S_CPU=$(awk '$2 > 0 { print $5 / $2 * 1e6 }' "$W/series" | median)
        S_N=$(wc -l <"$W/series")
}

source_rate() { # SESSIONS SIZE COUNT: median messages/s of smtp-source
        : >"$W/src"
        i=0
        while [ $i -lt "$RUNS" ]; do
                sink_up
                t0=$(now_ns)
                smtp-source -l "$2" -m "$3" -s "$1" -d -f mecc@example.org -t volunteer@example.org \
                        "127.0.0.1:$SINK" >/dev/null 2>&1
                t1=$(now_ns)
                calc %.1f "$3 / (($t1 - $t0) / 1e9)" >>"$W/src"
                echo >>"$W/src"
                i=$((i + 1))
        done
        median <"$W/src"
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

series "meccd, 1 connection" due 1
rate1=$S_RATE
lim1=$S_LIMITED
size=$(q "$W/run.db" "SELECT CAST(avg(length(body)) AS INTEGER) FROM outbox WHERE kind = 'joining_link' AND body IS NOT NULL")
[ -n "$size" ] && [ "$size" != 0 ] || size=4096
series "meccd, pre-queued, 1 connection" queued 1
rateq=$S_RATE
cpuq=$S_CPU
series "meccd, 4 connections" due 4
rate4=$S_RATE
lim4=$S_LIMITED
src1=$(source_rate 1 "$size" "$DELIVERY")
src4=$(source_rate 4 "$size" "$DELIVERY")
ratio1=$(calc %.2f "$rate1 / $src1")
ratio4=$(calc %.2f "$rate4 / $src4")
note ""
note "Delivery: $DELIVERY joining links (text, HTML and .ics; $size bytes on average) to smtp-sink"
note "  on loopback, smtp.max_per_minute = 1000000, tls = \"none\"; smtp-source sends messages of"
note "  the same size. meccd end to end: scan, queue, render, MIME, SMTP, mark sent."
note "  The scan that queues them all takes $scan_s s of it (relay down, nothing sent)."
row "meccd end to end, 1 connection (msg/s)" "$(calc %.0f "$rate1")"
row "smtp-source -s 1 -d (msg/s)" "$(calc %.0f "$src1")"
row "  ratio, 1 connection" "$ratio1" ">= 0.9" "$(verdict "$ratio1 >= 0.9")$lim1"
row "meccd end to end, 4 connections (msg/s)" "$(calc %.0f "$rate4")"
row "smtp-source -s 4 -d (msg/s)" "$(calc %.0f "$src4")"
row "  ratio, 4 connections" "$ratio4" ">= 0.8" "$(verdict "$ratio4 >= 0.8")$lim4"
row "meccd delivery only, pre-queued, 1 connection (msg/s)" "$(calc %.0f "$rateq")"
row "meccd CPU time per email, pre-queued (us, user + system)" "$(calc %.0f "${cpuq:-0}")"
row "scan queueing $DELIVERY joining links (s)" "$scan_s"

# ---- 3. the cron + msmtp baseline ----------------------------------------------------------

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

# ---- 4 and 5. memory and scaling ------------------------------------------------------------

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
row "peak RSS sending $BIG messages (MB; $sent100 sent)" "$rss_mb" "<= 16 MB" "$(verdict "$rss_mb <= 16")"

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
row "idle RSS of the daemon after a scan of the big database (MB)" "$(calc %.1f "$idle_rss / 1024")"
row "  its peak during that scan, VmHWM (MB)" "$(calc %.1f "$idle_hwm / 1024")"

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

# ---- 6. durability ----------------------------------------------------------------------------

log "== durability: synchronous NORMAL vs FULL"
series "meccd, synchronous=FULL" d10 1 MECCD_SYNCHRONOUS=FULL
rate_full=$S_RATE
row "delivery, $((BIG / 10)) messages, synchronous=NORMAL (msg/s)" "$(calc %.0f "$rate10")"
row "delivery, $((BIG / 10)) messages, synchronous=FULL (msg/s)" "$(calc %.0f "$rate_full")"
note ""
note "NORMAL ships: in WAL mode it loses nothing when meccd crashes or is killed; only a power"
note "  cut can undo the last commits, and then an email may go twice (same Message-ID) or a"
note "  registration be admitted again; FULL adds an fsync to every commit (two per email)."

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
        echo "meccd benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), $(git -C "$top" describe --always --dirty 2>/dev/null || echo '?')"
        echo "$(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), SQLite $(sqlite3 --version | cut -d' ' -f1), $(curl-config --version 2>/dev/null || echo libcurl)"
        echo
        printf '%-58s %16s  %-12s %s\n' "measure" "value" "target" "verdict"
        cat "$W/table"
        echo
        cat "$W/notes"
} >"$OUT"
cat "$OUT"
