#!/bin/sh
# run.sh - system test: meccd under a real systemd 252 booted as PID 1 of its own
# PID/mount/net/UTS/IPC/cgroup namespaces on a private Debian 12 tree, checked with the
# real tools (systemctl, journalctl, systemd-analyze, apt-get) and a real SMTP relay inside.
#
# Two boots, each on a fresh overlay of the same tree:
#   1. `make install` as an admin does it (PREFIX=/usr/local): the service, its sandbox,
#      reload (a typo fails `systemctl reload`), the journal, the booking website's user
#      writing registrations through the group meccd; then the same container reinstalled
#      with `make install PREFIX=/usr`, as a packager does: the unit runs /usr/sbin/meccd.
#   2. the Debian package (`make deb`, build/deb/meccd_*.deb), installed with apt-get in
#      the tree before boot: enabled and running at boot, sends mail, purged clean.
#
#   sh tests/system/run.sh             bootstrap (once), install, boot, check, power off
#   sh tests/system/run.sh bootstrap   only build the tree
#   sh tests/system/run.sh keep        the same, but leave the second container running
#                                      after the checks, to look around with:
#   sh tests/system/run.sh in CMD...   run CMD inside the running container
#   sh tests/system/run.sh poweroff    power it off
#
# The tree (.systest/root, debootstrap --variant=minbase, about 320 MB) is built once and
# reused; it is never booted directly nor changed: each boot mounts an overlay whose upper
# layer (.systest/run/upper, wiped before each boot) receives `make install DESTDIR=...`
# or the package. systemd never sees the host's filesystem: /proc/sys and sysfs are
# read-only, /dev is a private tmpfs with a few nodes, and the capability bounding set is
# reduced.
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
DEB_DIR=${SYSTEST_DEB_DIR:-$TOP/build/deb}
BOOT_N=0
INCLUDE=systemd,systemd-sysv,dbus,procps,tzdata,libconfuse2,libcurl4,libsqlite3-0,python3-aiosmtpd,sqlite3
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
        BOOT_N=$((BOOT_N + 1))
        CGN=systest.$$.$BOOT_N
        CG=$(cg_root)
        ORIG=$CG$(sed -n 's/^0:://p' /proc/self/cgroup)
        mkdir "$CG/$CGN" || return 1
        echo "$CG/$CGN" >"$RUN/cgroup"
        # script(1) gives the container a pty, its /dev/console, logged to $LOG; the
        # shell moves itself into the fresh cgroup, which unshare --cgroup then makes
        # the container's cgroup root.
        setsid script -q -f -e -c "echo \$\$ > '$CG/$CGN/cgroup.procs' && exec unshare --pid --fork --mount --net --uts --ipc --cgroup --propagation private /bin/sh '$SELF' __inner" \
                "$LOG" </dev/null >/dev/null 2>&1 &
        P=$!
        echo "$P" >"$RUN/script.pid"
        i=0 U='' S=''
        while [ $i -lt 50 ]; do
                U=$(awk '{ print $1 }' "/proc/$P/task/$P/children" 2>/dev/null || true)
                [ -n "$U" ] && S=$(awk '{ print $1 }' "/proc/$U/task/$U/children" 2>/dev/null || true)
                [ -n "$S" ] && grep -q "^0::/$CGN\$" "/proc/$U/cgroup" 2>/dev/null && break
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
fresh_upper() {
        rm -rf "$RUN/upper" "$RUN/work"
        mkdir -p "$RUN/upper" "$RUN/work" "$RUN/merged"
}

# What an admin does with `make install`, into the overlay's upper layer before boot,
# plus this test's config, password and relay.
stage() {
        fresh_upper
        timeout 600 make -s -C "$TOP" install DESTDIR="$RUN/upper" PREFIX=/usr/local >"$BASE/install.log" 2>&1 ||
                { sed 's/^/# /' "$BASE/install.log" | tail -n 20; return 1; }
        stage_test_files
}

# The package, installed with apt-get into the tree (seen through a fresh overlay) as
# on a real machine, in a private mount namespace with /proc, before boot: no
# /run/systemd/system there, so the maintainer scripts enable the unit but start nothing.
# Then what an admin does next: the relay's settings and password.
deb_stage() {
        DEB=$(ls "$DEB_DIR"/meccd_*.deb 2>/dev/null | head -n1)
        [ -n "$DEB" ] || { say "no package in $DEB_DIR: run make deb"; return 1; }
        say "package: $DEB"
        fresh_upper
        cp "$DEB" "$RUN/meccd.deb"
        unshare --mount --propagation private /bin/sh "$SELF" __chroot_apt >"$BASE/apt.log" 2>&1 ||
                { sed 's/^/# /' "$BASE/apt.log" | tail -n 20; return 1; }
        grep -q "^Setting up meccd " "$BASE/apt.log" || return 1
        [ -f "$RUN/upper/usr/lib/systemd/system/meccd.service" ] &&
                [ -L "$RUN/upper/etc/systemd/system/multi-user.target.wants/meccd.service" ] || return 1
        stage_test_files
}

chroot_apt() {
        set -e
        M=$RUN/merged
        mount -t overlay overlay -o "lowerdir=$ROOTFS,upperdir=$RUN/upper,workdir=$RUN/work" "$M"
        mount -t proc proc "$M/proc"
        cp --remove-destination /etc/resolv.conf "$M/etc/resolv.conf"
        cp "$RUN/meccd.deb" "$M/tmp/meccd.deb"
        timeout 300 chroot "$M" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
                apt-get install -y --no-install-recommends -o Dpkg::Use-Pty=0 /tmp/meccd.deb
        rm -f "$M/tmp/meccd.deb"
}

stage_test_files() {
        U=$RUN/upper
        mkdir -p "$U/etc/systemd/system" "$U/srv/systest" "$U/etc/meccd"
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

# ------------------------------------------------------------- README blocks
# The README's commands as an admin pastes them. readme_block HEADING N: the Nth
# indented block after the line HEADING, before the next heading.
readme_block() {
        awk -v h="$1" -v n="$2" '
                /^#/ { on = ($0 == h); b = 0; inb = 0 }
                !on { next }
                /^    / { if (!inb) { b++; inb = 1 } if (b == n) { sub(/^    /, ""); print } next }
                { inb = 0 }' "$TOP/README.md"
}

# run_readme HEADING N MAKE_ARGS: that block, pasted into a root shell in the container:
# its lines go to sh on its standard input, so a command reading its input would swallow
# the lines after it, as in a terminal. A `make` line runs here, on the source tree, with
# DESTDIR= the container's root and MAKE_ARGS added (skipped when MAKE_ARGS is "-":
# `make install` was staged before boot).
run_readme() {
        readme_block "$1" "$2" >"$RUN/block"
        [ -s "$RUN/block" ] || { say "README.md has no block $2 under \"$1\""; return 1; }
        : >"$RUN/chunk"
        while IFS= read -r line; do
                case $line in
                make\ *)
                        flush_chunk || return 1
                        [ "$3" = - ] && continue
                        croot=/proc/$(cat "$RUN/systemd.pid")/root
                        [ -d "$croot/srv/systest" ] || { say "no container root at $croot"; return 1; }
                        cmd=$(printf '%s' "${line%%#*}" | sed 's/ *$//')
                        say "\$ $cmd $3 (DESTDIR=the container's root)"
                        timeout 600 $cmd -s -C "$TOP" DESTDIR="$croot" $3 >"$BASE/readme-make.log" 2>&1 ||
                                { sed 's/^/#   /' "$BASE/readme-make.log" | tail -n 20; return 1; }
                        ;;
                *) printf '%s\n' "$line" >>"$RUN/chunk" ;;
                esac
        done <"$RUN/block"
        flush_chunk
}

flush_chunk() {
        [ -s "$RUN/chunk" ] || return 0
        sed 's/^/# $ /' "$RUN/chunk"
        in_ct 120 sh -e <"$RUN/chunk" >"$RUN/chunk.out" 2>&1
        rc=$?
        : >"$RUN/chunk"
        [ $rc -eq 0 ] || sed 's/^/#   /' "$RUN/chunk.out" | tail -n 20
        return $rc
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

# The README's install block after `make install` (staged before boot), pasted: the
# user, the directories and their modes; a password already there is kept.
check_admin_steps() {
        run_readme "## Installing as a service" 1 - &&
                in_ct getent passwd meccd >/dev/null &&
                [ "$(in_ct cat /etc/meccd/smtp-password)" = "$PASSWORD" ] &&
                [ "$(in_ct stat -c '%U:%G %a' /etc/meccd/smtp-password)" = "root:root 600" ] &&
                [ "$(in_ct stat -c '%U:%G %a' /var/lib/meccd)" = "meccd:meccd 2770" ] &&
                [ "$(in_ct stat -c '%U:%G %a' /etc/meccd/meccd.conf)" = "root:meccd 640" ]
}

check_verify() {
        in_ct systemd-analyze verify --man=no /usr/lib/systemd/system/meccd.service >"$RUN/verify.out" 2>&1
        [ ! -s "$RUN/verify.out" ] || { sed 's/^/# /' "$RUN/verify.out"; return 1; }
}

# The README's "check and start" block.
check_start() {
        run_readme "## Installing as a service" 3 - || { journal -n 20 -o cat | sed 's/^/# /'; return 1; }
        wait_for 10 active && MAINPID=$(prop MainPID) && [ "$MAINPID" -gt 0 ] &&
                [ "$(in_ct systemctl is-enabled meccd)" = enabled ]
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

# events the daemon itself logged (the reload's check logs under the unit too)
count_mid() { journal -o cat MESSAGE_ID="$1" _PID="$MAINPID" | wc -l; }
more_mid() { [ "$(count_mid "$1")" -gt "$2" ]; }
typo_logged() { journal -o cat | grep -qF "/etc/meccd/meccd.conf:$TYPO_LINE: no such option 'scan_intervall'"; }

# An admin means scan_interval and types scan_intervall: `systemctl reload` runs
# `meccd --check-config` first, so the reload fails where the admin sees it, and the
# daemon is never signalled: same process, which logs neither a reload nor a rejected
# configuration, so it runs on with the old one.
check_reload_typo() {
        write_conf "$RUN/typo.conf" "scan_intervall = 5"
        TYPO_LINE=$(wc -l <"$RUN/typo.conf")
        reloads=$(count_mid 726b9fb4886a457287aca0a6310cc885)
        rejects=$(count_mid c12299e5dcc240f3abe7a594af1583bf)
        in_ct sh -c 'cat > /etc/meccd/meccd.conf' <"$RUN/typo.conf" || return 1
        if in_ct 30 systemctl reload meccd 2>"$RUN/reload.err"; then
                say "systemctl reload succeeded with a typo in the config"
                return 1
        fi
        say "systemctl reload: $(head -n1 "$RUN/reload.err")"
        say "ReloadResult=$(prop ReloadResult)"
        wait_for 10 typo_logged ||
                { say "no check-config error naming line $TYPO_LINE in the journal"; journal -n 5 -o cat | sed 's/^/# /'; return 1; }
        say "journal: $(journal -o short | grep -F "no such option 'scan_intervall'" | tail -n1 | cut -d' ' -f5-)"
        sleep 2 # a signal would have been handled by now
        active && [ "$(prop MainPID)" = "$MAINPID" ] &&
                [ "$(count_mid 726b9fb4886a457287aca0a6310cc885)" = "$reloads" ] &&
                [ "$(count_mid c12299e5dcc240f3abe7a594af1583bf)" = "$rejects" ]
}

# SIGHUP straight to the daemon (kill -HUP, bypassing the check): meccd keeps its old
# configuration by itself and says why.
check_reload_bad() {
        write_conf "$RUN/bad.conf" "bogus_option = 7"
        BAD_LINE=$(wc -l <"$RUN/bad.conf")
        rejects=$(count_mid c12299e5dcc240f3abe7a594af1583bf)
        in_ct sh -c 'cat > /etc/meccd/meccd.conf' <"$RUN/bad.conf" &&
                in_ct 30 systemctl kill -s HUP --kill-whom=main meccd
        wait_for 10 more_mid c12299e5dcc240f3abe7a594af1583bf "$rejects" || { say "no reload-failed event"; return 1; }
        BAD_MSG=$(journal -o cat MESSAGE_ID=c12299e5dcc240f3abe7a594af1583bf _PID="$MAINPID")
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

exited_69() { [ "$(prop ExecMainStatus)" = 69 ]; }

# A database put back by root (`cp backup meccd.db` as root): meccd refuses to start with
# 69, naming the file, its owner and the chown; the chown fixes it. Leaves meccd stopped.
check_root_restored_db() {
        in_ct sh -c 'cp /var/lib/meccd/meccd.db /root/meccd-backup.db &&
                rm -f /var/lib/meccd/meccd.db /var/lib/meccd/meccd.db-wal /var/lib/meccd/meccd.db-shm &&
                cp /root/meccd-backup.db /var/lib/meccd/meccd.db' || return 1
        say "restored by root: $(in_ct stat -c '%U:%G %a' /var/lib/meccd/meccd.db)"
        ! in_ct 30 systemctl start meccd 2>/dev/null
        wait_for 10 exited_69 || { say "ExecMainStatus: $(prop ExecMainStatus)"; return 1; }
        journal -n 30 -o cat | grep -q "owned by root:.*chown meccd: /var/lib/meccd/meccd.db" ||
                { journal -n 10 -o cat | sed 's/^/# /'; return 1; }
        in_ct systemctl stop meccd
        in_ct chown meccd:meccd /var/lib/meccd/meccd.db &&
                in_ct systemctl reset-failed meccd && in_ct 30 systemctl start meccd && wait_for 10 active &&
                in_ct 60 systemctl stop meccd
}

# `meccctl init` as root before the service first starts (what meccctl(8) suggests): the
# database it creates is the service's, and meccd starts on it.
check_root_init() {
        in_ct rm -f /var/lib/meccd/meccd.db /var/lib/meccd/meccd.db-wal /var/lib/meccd/meccd.db-shm &&
                in_ct meccctl init || return 1
        owner=$(in_ct stat -c '%U' /var/lib/meccd/meccd.db)
        say "meccctl init as root made a database owned by $owner"
        [ "$owner" = meccd ] && in_ct 30 systemctl start meccd && wait_for 10 active &&
                in_ct 60 systemctl stop meccd
}

mail_to() { in_ct sh -c 'cat /srv/systest/mail/*.json 2>/dev/null' | grep -qF "\"$1\""; }
db_sql() { in_ct sqlite3 -cmd '.timeout 5000' /var/lib/meccd/meccd.db "$1"; }

# The database's directory and files as the website's user needs them: the directory
# 2770 meccd:meccd, the database and its -wal/-shm 0660 in the group meccd.
check_shared_layout() {
        lay=$(in_ct stat -c '%n %a %U:%G' /var/lib/meccd /var/lib/meccd/meccd.db /var/lib/meccd/meccd.db-wal /var/lib/meccd/meccd.db-shm)
        echo "$lay" | sed 's/^/# /'
        [ "$lay" = "/var/lib/meccd 2770 meccd:meccd
/var/lib/meccd/meccd.db 660 meccd:meccd
/var/lib/meccd/meccd.db-wal 660 meccd:meccd
/var/lib/meccd/meccd.db-shm 660 meccd:meccd" ]
}

# The booking website's user (www-data) joins the group meccd and writes a
# registration with sqlite3 while meccd runs: it is admitted and emailed. A user
# outside the group can neither read nor write.
check_website() {
        run_readme "### The booking website" 1 - || return 1
        web="setpriv --reuid=www-data --regid=www-data --init-groups"
        ins="INSERT INTO registrations (session_id, name, email, registered_at) VALUES ($SID, 'Sam Website', 'sam.website@example.net', unixepoch());"
        in_ct $web sqlite3 -cmd '.timeout 5000' /var/lib/meccd/meccd.db "$ins" || { say "www-data could not insert"; return 1; }
        if in_ct setpriv --reuid=nobody --regid=nogroup --clear-groups sqlite3 /var/lib/meccd/meccd.db \
                "SELECT count(*) FROM registrations" >/dev/null 2>&1; then
                say "nobody could read the database"
                return 1
        fi
        wait_for 30 mail_to sam.website@example.net || { say "no email for the website's registration"; return 1; }
        st=$(db_sql "SELECT status FROM registrations WHERE email = 'sam.website@example.net'")
        say "the website's registration is $st"
        [ "$st" = booked ] && check_shared_layout
}

# A new SMTP password, as meccd.conf(5) says to change it: the file, then a restart; the
# service's credential is the new one and the relay accepts it. (systemd documents
# LoadCredential= as read at start; 252 was seen to refresh it at a reload too, which
# the documentation does not promise, so the test does not rely on either.)
check_password_change() {
        new=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
        in_ct sh -c "printf '%s\n' '$new' >/srv/systest/password && printf '%s\n' '$new' >/etc/meccd/smtp-password" || return 1
        in_ct 30 systemctl restart meccd && wait_for 10 active || return 1
        MAINPID=$(prop MainPID)
        [ "$(in_svc cat "$(cred_dir)/smtp-password")" = "$new" ] || { say "the restart kept the old password"; return 1; }
        SID2=$(in_ct meccctl session add --title "MECC after the password change" --start "$(date -d '+31 days' '+%Y-%m-%d 10:30')" \
                --end "$(date -d '+31 days' '+%Y-%m-%d 12:00')" --capacity 5) &&
                in_ct meccctl register "$SID2" --name "Pat Volunteer" --email pat.volunteer@example.net >/dev/null &&
                wait_for 30 mail_to pat.volunteer@example.net || { in_ct tail -3 /srv/systest/mail/auth.log | sed 's/^/# /'; return 1; }
        PASSWORD=$new
}

# The same container reinstalled as a packager installs, with the README's upgrade
# block and PREFIX=/usr: the /usr/local binaries removed first, so only the unit's own
# ExecStart= can make it run. The config and templates in place are kept.
check_upgrade_usr() {
        conf=$(in_ct md5sum /etc/meccd/meccd.conf)
        in_ct rm -f /usr/local/sbin/meccd /usr/local/sbin/meccctl &&
                run_readme "### Upgrade" 1 PREFIX=/usr || return 1
        path=$(in_ct systemctl show -P ExecStart meccd | sed -n 's/.*path=\([^ ;]*\).*/\1/p')
        say "ExecStart path=$path"
        [ "$path" = /usr/sbin/meccd ] && [ "$(in_ct md5sum /etc/meccd/meccd.conf)" = "$conf" ] &&
                ! in_ct sh -c 'ls /etc/meccd/templates/*.dist' 2>/dev/null && check_verify
}

check_usr_runs() {
        wait_for 10 active && MAINPID=$(prop MainPID) || { journal -n 20 -o cat | sed 's/^/# /'; return 1; }
        exe=$(in_ct readlink "/proc/$MAINPID/exe")
        say "running: $exe"
        [ "$exe" = /usr/sbin/meccd ] && in_ct 30 systemctl reload meccd && active &&
                [ "$(prop MainPID)" = "$MAINPID" ]
}

# The README's uninstall block: meccd stopped, its files gone but the admin's.
check_uninstall() {
        run_readme "### Uninstall" 1 PREFIX=/usr || return 1
        left=$(in_ct sh -c 'ls -d /usr/sbin/meccd /usr/sbin/meccctl /usr/lib/systemd/system/meccd.service \
                /usr/lib/systemd/catalog/meccd.catalog /usr/share/man/man5/meccd-database.5 2>/dev/null')
        [ -z "$left" ] || { say "left behind: $left"; return 1; }
        ! in_ct pgrep -x meccd >/dev/null && [ "$(prop LoadState)" = not-found ] &&
                in_ct test -f /etc/meccd/meccd.conf && in_ct test -f /var/lib/meccd/meccd.db &&
                ! in_ct journalctl --list-catalog 1a599a6dfd304984bc71bed2ce18e25c 2>/dev/null | grep -q meccd
}

# After the package's installation and a boot, with nothing started by hand.
check_deb_boot() {
        en=$(in_ct systemctl is-enabled meccd)
        say "meccd.service is $en, $(in_ct systemctl is-active meccd)"
        [ "$en" = enabled ] && wait_for 20 active && MAINPID=$(prop MainPID) &&
                [ "$(in_ct readlink "/proc/$MAINPID/exe")" = /usr/sbin/meccd ] &&
                [ "$(prop FragmentPath)" = /lib/systemd/system/meccd.service ] &&
                [ "$(in_ct stat -c '%U:%G %a' /etc/meccd/meccd.conf)" = "root:meccd 640" ] &&
                check_shared_layout
}

# apt-get purge: the service stopped, and nothing of it left but the user.
check_purge() {
        in_ct 120 env DEBIAN_FRONTEND=noninteractive apt-get purge -y meccd >"$RUN/purge.log" 2>&1 ||
                { sed 's/^/# /' "$RUN/purge.log" | tail -n 20; return 1; }
        if grep -i 'warning' "$RUN/purge.log" | sed 's/^/# /' | grep .; then return 1; fi
        left=$(in_ct sh -c 'ls -d /etc/meccd /var/lib/meccd /lib/systemd/system/meccd.service /usr/sbin/meccd \
                /etc/systemd/system/multi-user.target.wants/meccd.service /usr/lib/sysusers.d/meccd.conf \
                /usr/lib/tmpfiles.d/meccd.conf /usr/lib/systemd/catalog/meccd.catalog 2>/dev/null')
        [ -z "$left" ] || { say "left behind: $left"; return 1; }
        st=$(in_ct dpkg-query -W -f='${db:Status-Abbrev}' meccd 2>/dev/null)
        say "dpkg: ${st:-unknown}; user kept: $(in_ct getent passwd meccd | cut -d: -f1,3)"
        ! in_ct pgrep -x meccd >/dev/null && [ "$(prop LoadState)" = not-found ] &&
                [ -z "$st" -o "$st" = "un " -o "$st" = "pn " ] &&
                ! in_ct journalctl --list-catalog 1a599a6dfd304984bc71bed2ce18e25c 2>/dev/null | grep -q meccd
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
        mkdir -p "$RUN"
        trap 'shutdown >/dev/null' EXIT
        trap 'exit 1' INT TERM

        say "boot 1: make install"
        check "make install DESTDIR=<overlay> PREFIX=/usr/local" stage || finish
        LOG=$BASE/boot-make.log
        t_boot=$(now)
        check "systemd boots as PID 1 of its own namespaces" boot || { shutdown; finish; }
        say "boot took $(since "$t_boot") s"

        t_checks=$(now)
        check "README install block pasted: sysusers, tmpfiles, catalog, daemon-reload, password kept" check_admin_steps
        check "systemd-analyze verify meccd.service prints nothing" check_verify
        check "relay with AUTH listening inside the container" relay_start
        check "README: meccd --check-config, systemctl enable --now meccd: active, enabled" check_start
        MAINPID=${MAINPID:-0}
        check "systemctl status shows the STATUS= text" check_status_text
        check "meccd runs as meccd, no capabilities, seccomp, no_new_privs" check_sandbox
        check "systemd-analyze security: exposure at most 1.5" check_exposure
        check "password only through LoadCredential=" check_credential
        check "journal has the started event (MESSAGE_ID)" check_journal_started
        check "systemctl reload, good config: still active, same MainPID, logged" check_reload_good
        check "systemctl reload, typo scan_intervall: reload fails, journal names the line, same daemon, not reloaded" check_reload_typo
        check "kill -HUP, bad config: still active, journal names file and option" check_reload_bad
        check "the reload error gives the bad option's line number" check_bad_line
        check "good config back" restore_conf
        check "meccctl session add + register: confirmation at the relay, with AUTH" check_mail
        check "journalctl -o json has MECCD_SESSION/REGISTRATION/KIND/OUTBOX" check_journal_fields
        check "journal carries no address, name or password" check_journal_private
        check "journalctl -x shows the catalog text, fields filled in" check_catalog
        check "website user in group meccd inserts with sqlite3: booked and emailed; others locked out" check_website
        check "unit starts without /etc/meccd/smtp-password" check_no_credential_file
        check "WatchdogSec=2s: pings keep it alive, no restart" check_watchdog
        check "a new SMTP password: after a restart the credential is the new one and the relay accepts it" check_password_change
        check "systemctl stop meccd: inactive, Result=success, exit 0" check_stop
        check "a database restored by root: start fails with 69, the journal names owner and chown; chown fixes it" check_root_restored_db
        check "meccctl init as root: the database is the service user's, and meccd starts on it" check_root_init
        check "README upgrade with make install PREFIX=/usr, /usr/local gone: ExecStart=/usr/sbin/meccd, config kept, verify clean" check_upgrade_usr
        check "PREFIX=/usr: restarted, runs /usr/sbin/meccd, reload works" check_usr_runs
        check "README uninstall: stopped, binaries, unit and catalog gone, config and database kept" check_uninstall
        say "checks took $(since "$t_checks") s"
        t_off=$(now)
        check "SIGRTMIN+4 powers off, no process left behind" shutdown
        say "power off took $(since "$t_off") s"

        say "boot 2: the Debian package"
        t_apt=$(now)
        check "apt-get install ./meccd_*.deb in the tree: unpacked, unit enabled" deb_stage || finish
        say "apt-get took $(since "$t_apt") s"
        LOG=$BASE/boot-deb.log
        check "systemd boots the tree with the package" boot || { shutdown; finish; }
        check "after boot: meccd enabled and running /usr/sbin/meccd, config root:meccd 640, state shared with the group" check_deb_boot
        check "relay with AUTH listening inside the container" relay_start
        check "the package's meccd sends a confirmation through the relay" check_mail
        check "journalctl -x explains its events (catalog updated by the package)" check_catalog
        if [ "${1:-}" = keep ]; then
                trap - EXIT
                say "container left running: sh $SELF in CMD..., then sh $SELF poweroff"
                finish
        fi
        check "apt-get purge meccd: stopped, no file left in /etc/meccd, /var/lib/meccd, unit gone" check_purge
        t_off=$(now)
        check "SIGRTMIN+4 powers off, no process left behind" shutdown
        say "total $(since "$T") s"
        finish
}

case ${1:-} in
__inner) inner ;;
__chroot_apt) chroot_apt ;;
in) shift; in_ct 600 "$@" ;;
poweroff) shutdown ;;
*) main "$@" ;;
esac
