#!/bin/sh
# run.sh - system test: meccd under a real systemd 252 booted as PID 1 of its own
# PID/mount/net/UTS/IPC/cgroup namespaces on a private Debian 12 tree, checked with the
# real tools (systemctl, journalctl, systemd-analyze) and a real SMTP relay inside.
#
#   sh tests/system/run.sh             bootstrap (once), install, boot, check, power off
#   sh tests/system/run.sh bootstrap   only build the tree
#   sh tests/system/run.sh keep        the same, but leave the container running after the
#                                      checks (meccd stopped), to look around with:
#   sh tests/system/run.sh in CMD...   run CMD inside the running container
#   sh tests/system/run.sh poweroff    power it off
#
# The tree (.systest/root, debootstrap --variant=minbase, about 320 MB) is built once and
# reused; it is never booted directly nor changed: each boot mounts an overlay whose upper
# layer (.systest/run/upper, wiped at every run) receives `make install DESTDIR=...`.
# systemd never sees the host's filesystem: /proc/sys and sysfs are read-only, /dev is a
# private tmpfs with a few nodes, and the capability bounding set is reduced.
#
# Prints TAP ("ok N - ...", "not ok N - ...") and ends with "N passed, N failed".
# Without the rights to make namespaces it prints "ok 1 # SKIP reason" and exits 0.
set -u

TOP=$(cd "$(dirname "$0")/../.." && pwd)
SELF=$TOP/tests/system/run.sh
BASE=${SYSTEST_BASE:-$TOP/.systest}
ROOTFS=$BASE/root
RUN=$BASE/run
LOG=$BASE/boot.log
INCLUDE=systemd,systemd-sysv,dbus,procps,tzdata,libconfuse2,libcurl4,libsqlite3-0,python3-aiosmtpd
BOOT_TIMEOUT=${BOOT_TIMEOUT:-60}
SMTP_PORT=2525
SMTP_HOST=relay.systest.example     # via /etc/hosts: name lookup works in the sandbox
SMTP_LOGIN=meccd-relay

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
say() { echo "# $*"; }

mirror() {
        m=$(sed -n 's/^URIs: *\([^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
        [ -n "$m" ] || m=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
        echo "${m:-${MIRROR:-}}"
}

cg_root() {
        if [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo /sys/fs/cgroup
        elif [ -f /sys/fs/cgroup/unified/cgroup.controllers ]; then echo /sys/fs/cgroup/unified
        fi
}

# ------------------------------------------------------------------ bootstrap
# The tree is made under a temporary name and renamed when complete, so an
# interrupted debootstrap is never mistaken for a usable tree.
bootstrap() {
        if [ -x "$ROOTFS/lib/systemd/systemd" ] && [ "$(cat "$BASE/root.include" 2>/dev/null)" = "$INCLUDE" ]; then
                return 0
        fi
        if ! command -v debootstrap >/dev/null; then
                export DEBIAN_FRONTEND=noninteractive
                { timeout 300 apt-get install -y -qq debootstrap ||
                        { timeout 300 apt-get update -qq && timeout 300 apt-get install -y -qq debootstrap; }; } >/dev/null 2>&1 ||
                        { echo "# cannot install debootstrap" >&2; return 1; }
        fi
        m=$(mirror)
        [ -n "$m" ] || { echo "# no Debian mirror in apt's sources; set MIRROR" >&2; return 1; }
        mkdir -p "$BASE"
        rm -rf "$BASE/root.new" "$ROOTFS" "$BASE/root.include"
        timeout 1200 debootstrap --variant=minbase --include="$INCLUDE" bookworm "$BASE/root.new" "$m" \
                >"$BASE/debootstrap.log" 2>&1 || { tail -n 20 "$BASE/debootstrap.log" | sed 's/^/# /'; return 1; }
        mv "$BASE/root.new" "$ROOTFS"
        echo "$INCLUDE" >"$BASE/root.include"
}

# ------------------------------------------------------- inside the namespaces
# PID 1 of the new PID namespace, in the new mount namespace, still seeing the host:
# build the container's root under $M, pivot_root into it, exec systemd. Any failure
# aborts before systemd runs.
inner() {
        set -e
        M=$RUN/merged
        mount -t overlay overlay -o "lowerdir=$ROOTFS,upperdir=$RUN/upper,workdir=$RUN/work" "$M"
        mount -t proc -o nosuid,nodev,noexec proc "$M/proc"
        for p in sys sysrq-trigger; do
                [ -e "$M/proc/$p" ] || continue
                mount --bind "$M/proc/$p" "$M/proc/$p"
                mount -o remount,bind,ro,nosuid,nodev,noexec "$M/proc/$p"
        done
        mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$M/sys"
        mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$M/sys/fs/cgroup"
        mount -t tmpfs -o mode=755,nosuid,size=4m tmpfs "$M/dev"
        for n in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
                IFS=: read -r name ma mi <<EOF
$n
EOF
                mknod -m 666 "$M/dev/$name" c "$ma" "$mi"
        done
        mkdir -m 755 "$M/dev/pts"
        mkdir -m 1777 "$M/dev/shm"
        mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$M/dev/pts"
        ln -s pts/ptmx "$M/dev/ptmx"
        ln -s /proc/self/fd "$M/dev/fd"
        ln -s /proc/self/fd/0 "$M/dev/stdin"
        ln -s /proc/self/fd/1 "$M/dev/stdout"
        ln -s /proc/self/fd/2 "$M/dev/stderr"
        mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$M/dev/shm"
        : >"$M/dev/console"
        mount --bind "$(tty)" "$M/dev/console"
        mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$M/run"
        mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$M/tmp"
        # systemd cannot enable controllers while our parent still sits in this cgroup
        i=0
        while grep -qx 0 "$M/sys/fs/cgroup/cgroup.procs" && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        cd "$M"
        mkdir -p .oldroot
        pivot_root . .oldroot
        cd /
        umount -l /.oldroot
        rmdir /.oldroot
        # systemd leaves mount propagation to a container manager; credentials (and the
        # mounts of sandboxed services) reach PID 1's view only through shared mounts.
        # Our namespace was made private first, so nothing propagates to the host.
        mount --make-rshared /
        exec /usr/bin/env -i container=unshare TERM=vt220 \
                /usr/bin/setpriv --bounding-set -sys_module,-sys_time,-sys_rawio,-wake_alarm,-block_suspend,-syslog,-mac_admin,-mac_override,-sys_pacct \
                /lib/systemd/systemd --system --unit=multi-user.target --show-status=1
}

# -------------------------------------------------------------- the container
# in [SECONDS] CMD...: run CMD inside the container, bounded in time
in_ct() {
        _secs=30
        case $1 in [0-9]*) _secs=$1; shift ;; esac
        timeout -k 5 "$_secs" nsenter --target "$(cat "$RUN/systemd.pid")" --mount --uts --ipc --net --pid --cgroup --root --wd \
                /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}

boot() {
        CG=$(cg_root)
        ORIG=$CG$(sed -n 's/^0:://p' /proc/self/cgroup)
        mkdir "$CG/systest.$$" || return 1
        echo "$CG/systest.$$" >"$RUN/cgroup"
        # script(1) gives the container a pty, its /dev/console, logged to $LOG; the
        # shell moves itself into the fresh cgroup, which unshare --cgroup then makes
        # the container's cgroup root.
        setsid script -q -f -e -c "echo \$\$ > '$CG/systest.$$/cgroup.procs' && exec unshare --pid --fork --mount --net --uts --ipc --cgroup --propagation private /bin/sh '$SELF' __inner" \
                "$LOG" </dev/null >/dev/null 2>&1 &
        P=$!
        echo "$P" >"$RUN/script.pid"
        i=0 U='' S=''
        while [ $i -lt 50 ]; do
                U=$(awk '{ print $1 }' "/proc/$P/task/$P/children" 2>/dev/null || true)
                [ -n "$U" ] && S=$(awk '{ print $1 }' "/proc/$U/task/$U/children" 2>/dev/null || true)
                [ -n "$S" ] && grep -q "^0::/systest.$$\$" "/proc/$U/cgroup" 2>/dev/null && break
                sleep 0.1
                i=$((i + 1))
        done
        [ -n "$S" ] || { say "container init did not start; see $LOG"; return 1; }
        echo "$U" >"$ORIG/cgroup.procs"
        echo "$S" >"$RUN/systemd.pid"
        t0=$(now)
        while :; do
                st=$(in_ct 5 systemctl is-system-running 2>/dev/null)
                case $st in running | degraded) break ;; esac
                kill -0 "$S" 2>/dev/null || { say "systemd died during boot; see $LOG"; return 1; }
                [ "$(since "$t0" | cut -d. -f1)" -lt "$BOOT_TIMEOUT" ] || { say "boot timeout (state $st); see $LOG"; return 1; }
                sleep 0.2
        done
        say "system state $st"
        [ "$st" = running ] || in_ct systemctl --no-pager --failed | sed 's/^/# /'
        return 0
}

shutdown() {
        [ -f "$RUN/systemd.pid" ] || return 0
        S=$(cat "$RUN/systemd.pid")
        P=$(cat "$RUN/script.pid" 2>/dev/null)
        kill -s RTMIN+4 "$S" 2>/dev/null
        i=0
        while [ -n "$P" ] && kill -0 "$P" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
        if [ -n "$P" ] && kill -0 "$P" 2>/dev/null; then
                say "clean poweroff timed out; SIGKILL to the container's init"
                kill -9 "$S" 2>/dev/null
                sleep 1
        fi
        rm -f "$RUN/systemd.pid"
        CG=$(cat "$RUN/cgroup" 2>/dev/null)
        left=
        if [ -n "$CG" ] && [ -d "$CG" ]; then
                left=$(find "$CG" -name cgroup.procs -exec cat {} + 2>/dev/null)
                find "$CG" -depth -type d -exec rmdir {} \; 2>/dev/null
        fi
        [ -z "$left" ] && ! kill -0 "$S" 2>/dev/null && { [ -z "$P" ] || ! kill -0 "$P" 2>/dev/null; }
}

# ---------------------------------------------------------------------- TAP
n=0 pass=0 fail=0
ok() { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $*"; }
check() { # DESCRIPTION CMD...: one test line from CMD's exit status, which it returns
        d=$1
        shift
        if "$@"; then ok "$d"; return 0; fi
        not_ok "$d"
        return 1
}
finish() {
        echo "$pass passed, $fail failed"
        [ "$fail" -eq 0 ]
        exit $?
}
skip() {
        echo "ok 1 # SKIP $*"
        echo "0 passed, 0 failed, 1 skipped"
        exit 0
}

# ------------------------------------------------------------------- install
# What an admin does with `make install`, into the overlay's upper layer before boot,
# plus this test's config, password and relay.
stage() {
        U=$RUN/upper
        timeout 600 make -s -C "$TOP" install DESTDIR="$U" PREFIX=/usr/local >"$BASE/install.log" 2>&1 ||
                { sed 's/^/# /' "$BASE/install.log" | tail -n 20; return 1; }
        mkdir -p "$U/etc/systemd/system" "$U/srv/systest"
        ln -sfn /dev/null "$U/etc/systemd/system/console-getty.service"
        printf '127.0.0.1\tlocalhost\n127.0.0.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$SMTP_HOST" >"$U/etc/hosts"
        write_conf "$U/etc/meccd/meccd.conf"
        PASSWORD=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
        (umask 077 && printf '%s\n' "$PASSWORD" >"$U/etc/meccd/smtp-password" &&
                printf '%s\n' "$PASSWORD" >"$U/srv/systest/password")
        cp "$TOP/tests/system/capture.py" "$U/srv/systest/"
}

write_conf() { # FILE [EXTRA_LINE]
        cat >"$1" <<EOF
# system test: relay inside the container, scans every 2 s
timezone = "Europe/London"
database = "/var/lib/meccd/meccd.db"
templates = "/etc/meccd/templates"
scan_interval = 2
organisation = "Oxfordshire MECC Training"
elearning_url = "https://learn.example.org/mecc"
roster_to = {"mecc-team@example.org"}
smtp {
  url = "smtp://$SMTP_HOST:$SMTP_PORT"
  tls = "none"
  username = "$SMTP_LOGIN"
  from = "MECC Training <mecc@example.org>"
  timeout = 10
}
EOF
        [ $# -lt 2 ] || printf '%s\n' "$2" >>"$1"
}

# --------------------------------------------------------------------- checks
active() { [ "$(in_ct systemctl is-active meccd)" = active ]; }
prop() { in_ct systemctl show -P "$1" meccd; }
wait_for() { # SECONDS CMD...: poll CMD every 0.5 s until it succeeds or time is up
        w=$(($1 * 2))
        shift
        while [ $w -gt 0 ]; do
                "$@" && return 0
                sleep 0.5
                w=$((w - 1))
        done
        return 1
}
journal() { in_ct journalctl --no-pager -u meccd "$@"; }
has_mid() { journal -o json MESSAGE_ID="$1" | grep -q .; }
mail_count() { in_ct sh -c 'ls /srv/systest/mail/*.eml 2>/dev/null | wc -l'; }
has_mail() { [ "$(mail_count)" -ge 1 ]; }
pid_status() { in_ct cat "/proc/$MAINPID/status"; }
# the credentials directory is mounted in the service's mount namespace only
in_svc() { in_ct nsenter --target "$MAINPID" --mount "$@"; }
cred_dir() { in_ct cat "/proc/$MAINPID/environ" | tr '\0' '\n' | sed -n 's/^CREDENTIALS_DIRECTORY=//p'; }

check_admin_steps() {
        in_ct systemd-sysusers meccd.conf &&
                in_ct systemd-tmpfiles --create meccd.conf &&
                in_ct journalctl --update-catalog &&
                in_ct systemctl daemon-reload &&
                in_ct getent passwd meccd >/dev/null &&
                [ "$(in_ct stat -c '%U:%G %a' /var/lib/meccd)" = "meccd:meccd 2770" ] &&
                [ "$(in_ct stat -c '%U:%G %a' /etc/meccd/meccd.conf)" = "root:meccd 640" ]
}

check_verify() {
        in_ct systemd-analyze verify --man=no /usr/lib/systemd/system/meccd.service >"$RUN/verify.out" 2>&1
        [ ! -s "$RUN/verify.out" ] || { sed 's/^/# /' "$RUN/verify.out"; return 1; }
}

check_start() {
        in_ct 60 systemctl start meccd || { journal -n 20 -o cat | sed 's/^/# /'; return 1; }
        active && MAINPID=$(prop MainPID) && [ "$MAINPID" -gt 0 ]
}

check_status_text() {
        STATUS=$(prop StatusText)
        say "StatusText: $STATUS"
        [ -n "$STATUS" ] && in_ct systemctl status --no-pager meccd | grep -q "Status: \""
}

check_sandbox() {
        pid_status >"$RUN/pid.status" &&
                grep -q '^NoNewPrivs:[[:space:]]*1' "$RUN/pid.status" &&
                grep -q '^Seccomp:[[:space:]]*2' "$RUN/pid.status" &&
                grep -q '^CapEff:[[:space:]]*0*$' "$RUN/pid.status" &&
                [ "$(in_ct ps -o user= -p "$MAINPID")" = meccd ]
}

check_exposure() {
        e=$(in_ct systemd-analyze security --no-pager meccd.service | sed -n 's/.*Overall exposure level for meccd.service: \([0-9.]*\).*/\1/p')
        say "exposure of the running unit: ${e:-?}"
        [ -n "$e" ] && awk -v e="$e" 'BEGIN { exit !(e <= 1.5) }'
}

check_credential() {
        cdir=$(cred_dir)
        say "CREDENTIALS_DIRECTORY=$cdir"
        [ -n "$cdir" ] &&
                [ "$(in_svc cat "$cdir/smtp-password")" = "$PASSWORD" ] &&
                [ "$(in_svc stat -c '%u %a' "$cdir/smtp-password")" = "$(in_ct id -u meccd) 400" ] &&
                ! in_ct setpriv --reuid=meccd --regid=meccd --clear-groups cat /etc/meccd/smtp-password >/dev/null 2>&1 &&
                ! in_ct grep -rqF "$PASSWORD" /etc/meccd/meccd.conf /etc/systemd /usr/lib/systemd/system/meccd.service
}

check_journal_started() {
        has_mid 1a599a6dfd304984bc71bed2ce18e25c
}

relay_start() {
        in_ct systemd-run --quiet --unit=systest-relay /usr/bin/python3 -W ignore /srv/systest/capture.py \
                "$SMTP_PORT" /srv/systest/mail "$SMTP_LOGIN" /srv/systest/password &&
                wait_for 20 in_ct test -e /srv/systest/mail/ready
}

check_reload_good() {
        in_ct 30 systemctl reload meccd && active && [ "$(prop MainPID)" = "$MAINPID" ] &&
                wait_for 10 has_mid 726b9fb4886a457287aca0a6310cc885
}

check_reload_bad() {
        write_conf "$RUN/bad.conf" "bogus_option = 7"
        BAD_LINE=$(wc -l <"$RUN/bad.conf")
        in_ct sh -c 'cat > /etc/meccd/meccd.conf' <"$RUN/bad.conf" &&
                in_ct 30 systemctl reload meccd
        wait_for 10 has_mid c12299e5dcc240f3abe7a594af1583bf || { say "no reload-failed event"; return 1; }
        BAD_MSG=$(journal -o cat MESSAGE_ID=c12299e5dcc240f3abe7a594af1583bf)
        say "reload-failed: $BAD_MSG"
        active && [ "$(prop MainPID)" = "$MAINPID" ] &&
                echo "$BAD_MSG" | grep -q "/etc/meccd/meccd.conf" && echo "$BAD_MSG" | grep -q "bogus_option"
}

check_bad_line() {
        say "the bad option is on line $BAD_LINE"
        echo "$BAD_MSG" | grep -Eq "(^|[^0-9])$BAD_LINE([^0-9]|$)"
}

restore_conf() {
        write_conf "$RUN/good.conf"
        in_ct sh -c 'cat > /etc/meccd/meccd.conf' <"$RUN/good.conf" && in_ct 30 systemctl reload meccd
}

check_mail() {
        start=$(date -d '+30 days' '+%Y-%m-%d 10:30')
        end=$(date -d '+30 days' '+%Y-%m-%d 12:00')
        SID=$(in_ct meccctl session add --title "MECC live session" --start "$start" --end "$end" --capacity 12 \
                --join-url https://meet.example.org/mecc) || return 1
        RID=$(in_ct meccctl register "$SID" --name "Alex Volunteer" --email alex.volunteer@example.net) || return 1
        say "session $SID, registration $RID"
        wait_for 30 has_mail || { say "no mail at the relay within 30 s"; in_ct cat /srv/systest/mail/auth.log | sed 's/^/# /'; return 1; }
        j=$(in_ct cat /srv/systest/mail/001.json)
        say "relay got: $j"
        in_ct cat /srv/systest/mail/001.eml >"$RUN/001.eml"
        in_ct meccctl --json outbox list >"$RUN/outbox.json"
        echo "$j" | grep -q '"rcpt_tos": \["alex.volunteer@example.net"\]' &&
                echo "$j" | grep -q "\"login\": \"$SMTP_LOGIN\"" &&
                [ "$(kind_of "$RUN/001.eml" "$RUN/outbox.json")" = confirmation ]
}

kind_of() { # EML OUTBOX_JSON: the outbox kind of a captured message, by its Message-ID
        /usr/bin/python3 - "$1" "$2" <<'EOF'
import email, json, sys
mid = email.message_from_binary_file(open(sys.argv[1], "rb"))["Message-ID"].strip()
print(" ".join(r["kind"] for r in json.load(open(sys.argv[2])) if r["message_id"] == mid))
EOF
}

check_journal_fields() {
        wait_for 10 has_mid bab418fdb2ff4dbeb5bec77cab36becc || return 1
        journal -o json >"$RUN/journal.json"
        grep -q "\"MECCD_SESSION\":\"$SID\"" "$RUN/journal.json" &&
                grep -q "\"MECCD_REGISTRATION\":\"$RID\"" "$RUN/journal.json" &&
                grep -q '"MECCD_KIND":"confirmation"' "$RUN/journal.json" &&
                grep -q '"MECCD_OUTBOX":"[0-9]' "$RUN/journal.json"
}

check_journal_private() {
        journal -o json >"$RUN/journal.json" &&
                ! grep -qiF alex.volunteer "$RUN/journal.json" && ! grep -qF "Alex Volunteer" "$RUN/journal.json" &&
                ! grep -qF "$PASSWORD" "$RUN/journal.json"
}

check_catalog() {
        journal -x -o short >"$RUN/journal-x.txt"
        grep -q 'read its configuration, opened its database' "$RUN/journal-x.txt" &&
                grep -Eq 'Email [0-9]+ \(confirmation\) was accepted by the SMTP relay' "$RUN/journal-x.txt"
}

check_no_credential_file() {
        in_ct rm -f /etc/meccd/smtp-password &&
                in_ct 60 systemctl restart meccd && active &&
                MAINPID=$(prop MainPID) && cdir=$(cred_dir) &&
                [ "$(in_svc od -An -c "$cdir/smtp-password" | tr -d ' ')" = '\n' ]
}

check_watchdog() {
        in_ct mkdir -p /run/systemd/system/meccd.service.d &&
                printf '[Service]\nWatchdogSec=2s\n' | in_ct sh -c 'cat > /run/systemd/system/meccd.service.d/watchdog.conf' &&
                in_ct systemctl daemon-reload && in_ct 60 systemctl restart meccd && active || return 1
        MAINPID=$(prop MainPID)
        sleep 7
        active && [ "$(prop MainPID)" = "$MAINPID" ] && [ "$(prop NRestarts)" = 0 ] &&
                ! journal -o cat | grep -q 'Watchdog timeout'
}

check_stop() {
        in_ct 60 systemctl stop meccd || return 1
        st=$(in_ct systemctl is-active meccd)
        say "after stop: $st, $(in_ct systemctl show -p Result -p ExecMainStatus meccd | tr '\n' ' ')"
        [ "$st" = inactive ] && [ "$(prop Result)" = success ] && [ "$(prop ExecMainStatus)" = 0 ] &&
                has_mid 2dcc4f83933042e79d4afcdb86afa7e5
}

# ----------------------------------------------------------------------- main
main() {
        [ "$(id -u)" = 0 ] || skip "needs root to create namespaces"
        [ -n "$(cg_root)" ] || skip "no cgroup2 hierarchy on the host"
        unshare --pid --fork --mount --net --uts --ipc --cgroup --propagation private true 2>/dev/null ||
                skip "new PID/mount/net/UTS/IPC/cgroup namespaces are not allowed here"
        [ "$(readlink -f "$ROOTFS")" != / ] || { echo "Bail out! ROOTFS is /"; exit 1; }

        T=$(now)
        if bootstrap; then ok "Debian tree ready ($(since "$T") s)"; else not_ok "debootstrap"; finish; fi
        [ "${1:-}" = bootstrap ] && finish

        if [ -f "$RUN/systemd.pid" ] && kill -0 "$(cat "$RUN/systemd.pid")" 2>/dev/null; then
                say "a previous container is still running: powering it off"
                shutdown
        fi
        rm -rf "$RUN"
        mkdir -p "$RUN/upper" "$RUN/work" "$RUN/merged"
        check "make install DESTDIR=<overlay> PREFIX=/usr/local" stage || finish

        trap 'shutdown >/dev/null' EXIT
        trap 'exit 1' INT TERM
        t_boot=$(now)
        check "systemd boots as PID 1 of its own namespaces" boot || { shutdown; finish; }
        say "boot took $(since "$t_boot") s"

        t_checks=$(now)
        check "install steps: sysusers, tmpfiles, catalog, daemon-reload" check_admin_steps
        check "systemd-analyze verify meccd.service prints nothing" check_verify
        check "relay with AUTH listening inside the container" relay_start
        check "systemctl start meccd: active" check_start
        MAINPID=${MAINPID:-0}
        check "systemctl status shows the STATUS= text" check_status_text
        check "meccd runs as meccd, no capabilities, seccomp, no_new_privs" check_sandbox
        check "systemd-analyze security: exposure at most 1.5" check_exposure
        check "password only through LoadCredential=" check_credential
        check "journal has the started event (MESSAGE_ID)" check_journal_started
        check "systemctl reload, good config: still active, same MainPID, logged" check_reload_good
        check "systemctl reload, bad config: still active, journal names file and option" check_reload_bad
        check "the reload error gives the bad option's line number" check_bad_line
        check "good config back" restore_conf
        check "meccctl session add + register: confirmation at the relay, with AUTH" check_mail
        check "journalctl -o json has MECCD_SESSION/REGISTRATION/KIND/OUTBOX" check_journal_fields
        check "journal carries no address, name or password" check_journal_private
        check "journalctl -x shows the catalog text, fields filled in" check_catalog
        check "unit starts without /etc/meccd/smtp-password" check_no_credential_file
        check "WatchdogSec=2s: pings keep it alive, no restart" check_watchdog
        check "systemctl stop meccd: inactive, Result=success, exit 0" check_stop
        say "checks took $(since "$t_checks") s"

        if [ "${1:-}" = keep ]; then
                trap - EXIT
                say "container left running: sh $SELF in CMD..., then sh $SELF poweroff"
                finish
        fi
        t_off=$(now)
        check "SIGRTMIN+4 powers off, no process left behind" shutdown
        say "power off took $(since "$t_off") s; total $(since "$T") s"
        finish
}

case ${1:-} in
__inner) inner ;;
in) shift; in_ct 600 "$@" ;;
poweroff) shutdown ;;
*) main "$@" ;;
esac
