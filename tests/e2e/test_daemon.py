"""The daemon as systemd runs it: readiness, status, watchdog, reload and stop over a real
notify socket; and the --once path under valgrind with real work to do."""
import datetime
import os
import harness
import shutil
import signal
import socket
import subprocess
import time

from harness import BUILD, with_env

WAIT = 10  # seconds: the bound on every wait below


class Notify:
    """An AF_UNIX datagram socket standing in for systemd's notify socket."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.log = []  # every datagram, split into its lines

    def read(self, timeout):
        self.sock.settimeout(max(timeout, 0.01))
        try:
            data = self.sock.recv(4096).decode()
        except socket.timeout:
            return None
        lines = data.split("\n")
        self.log.append(lines)
        return lines

    def wait_for(self, line, proc, timeout=WAIT):
        """Datagrams up to and including the first holding `line`."""
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError("meccd exited %d while waiting for %s; saw %r"
                                     % (proc.returncode, line, seen))
            lines = self.read(deadline - time.monotonic())
            if lines is None:
                continue
            seen.append(lines)
            if line in lines:
                return seen
        raise AssertionError("no %s within %ds; saw %r" % (line, timeout, seen))

    def close(self):
        self.sock.close()


def local(dt):
    return dt.strftime("%Y-%m-%d %H:%M")


def wait_until(pred, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def start_daemon(env, notify, stderr_path, **extra_env):
    e = dict(os.environ, NOTIFY_SOCKET=notify.path, MECCD_LOG="stderr", **extra_env)
    e.pop("WATCHDOG_PID", None)
    with open(stderr_path, "w") as err:
        return subprocess.Popen([os.path.join(BUILD, "meccd"), "-c", env.conf],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, env=e)


def statuses(datagrams):
    return [line[len("STATUS="):] for lines in datagrams for line in lines
            if line.startswith("STATUS=")]


@with_env(scan_interval=1)
def test_notify_ready_status_watchdog_reload_stop(env):
    notify = Notify(os.path.join(env.dir, "notify"))
    errlog = os.path.join(env.dir, "stderr")
    # real time: a session a month ahead, and a booking waiting for the daemon
    soon = datetime.datetime.now() + datetime.timedelta(days=30)
    sid = env.add_session("MECC live session", local(soon), local(soon + datetime.timedelta(hours=1)),
                          5, None)
    env.register(sid, "Ann", "ann@example.org", None)
    proc = start_daemon(env, notify, errlog, WATCHDOG_USEC="2000000")
    try:
        seen = notify.wait_for("READY=1", proc)
        assert statuses(seen), seen
        # the first scan books Ann and her confirmation goes out from the event loop
        assert wait_until(lambda: env.kinds("ann@example.org") == ["confirmation"]), \
            open(errlog).read()
        # STATUS says what it is doing, in the admin's words
        def settled(s):
            return "next scan" in s and "1 open session" in s and "0 queued" in s
        said = statuses(notify.log)
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and not any(settled(s) for s in said):
            said += statuses([notify.read(deadline - time.monotonic()) or []])
        assert any(settled(s) for s in said), said

        # the watchdog is fed from the loop: several pings within a few seconds
        t0 = time.monotonic()
        pings = 0
        while time.monotonic() - t0 < 4 and pings < 3:
            lines = notify.read(4 - (time.monotonic() - t0))
            if lines and "WATCHDOG=1" in lines:
                pings += 1
        assert pings >= 3, notify.log[-10:]

        # reload: RELOADING=1, then READY=1 again
        proc.send_signal(signal.SIGHUP)
        seen = notify.wait_for("RELOADING=1", proc)
        seen = notify.wait_for("READY=1", proc)
        assert proc.poll() is None

        # a bad new config is logged with its line, and the old one is kept
        with open(env.conf, "a") as f:
            f.write('booking_cutoff = "one week"\n')
        proc.send_signal(signal.SIGHUP)
        notify.wait_for("RELOADING=1", proc)
        notify.wait_for("READY=1", proc)
        assert wait_until(lambda: "booking_cutoff" in open(errlog).read())
        log = open(errlog).read()
        assert "%s:%d:" % (env.conf, sum(1 for _ in open(env.conf))) in log, log
        assert proc.poll() is None
        env.sql("INSERT INTO registrations (session_id, name, email, registered_at)"
                " VALUES (?, 'Bob', 'bob@example.org', strftime('%s', 'now'))", sid)
        assert wait_until(lambda: env.kinds("bob@example.org") == ["confirmation"]), \
            open(errlog).read()

        # stop: STOPPING=1 and a clean exit well within systemd's 10 s
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        notify.wait_for("STOPPING=1", proc)
        assert proc.wait(timeout=WAIT) == 0, open(errlog).read()
        assert time.monotonic() - t0 < WAIT
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()
    # nobody was emailed twice across the reloads
    assert len(env.smtp.messages) == 2


VALGRIND = ["valgrind", "--quiet", "--leak-check=full", "--show-leak-kinds=definite,indirect",
            "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99",
            "--track-fds=no"]


def valgrind(env, binary, *args, now=None):
    log = os.path.join(env.dir, "valgrind.log")
    cmd = VALGRIND + ["--log-file=" + log, os.path.join(BUILD, binary), "-c", env.conf]
    if now:
        cmd += ["--now", now]
    cmd += [str(a) for a in args]
    e = dict(os.environ, MECCD_LOG="stderr")
    e.pop("NOTIFY_SOCKET", None)
    p = subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=300)
    with open(log) as f:
        report = f.read()
    return p, report


def test_once_under_valgrind(env):
    if harness.built_with_asan():
        raise harness.Skip("AddressSanitizer build: valgrind runs in the plain build's pass")
    if not shutil.which("valgrind"):
        raise AssertionError("valgrind is not installed (contrib/install-deps.sh test)")
    sid = env.add_session("MECC live session", "2026-09-22 10:30", "2026-09-22 12:00", 2,
                          "2026-08-01 09:00", "--join-url", "https://meet.example.org/x",
                          "--trainer", "trainer@example.org")
    for i, name in enumerate(("Ann", "Bob", "Cat", "Dee")):
        env.register(sid, name, "%s@example.org" % name.lower(), "2026-09-01 09:0%d" % i)
    env.register(sid, "Ann again", "ANN@example.org", "2026-09-01 09:05")
    env.sql("INSERT INTO registrations (session_id, name, email, registered_at)"
            " VALUES (?, 'Eve', 'not an address', 1788250000)", sid)

    # admissions, then a promotion after a cancellation; the cutoff (roster with CSV,
    # not_placed), reminders, the joining link (with .ics), the follow-up
    for now in ("2026-09-01 09:10", "2026-09-02 09:10", "2026-09-15 10:30",
                "2026-09-19 10:30", "2026-09-20 10:30", "2026-09-23 12:00"):
        if now == "2026-09-02 09:10":
            env.ctl("cancel", 2, now="2026-09-02 09:00")
        p, report = valgrind(env, "meccd", "--once", now=now)
        assert p.returncode == 0, (now, p.returncode, p.stderr, report)
        assert report.strip() == "", report
    kinds = sorted(env.kind_of(m)[0] for m in env.smtp.messages)
    assert kinds == ["confirmation"] * 2 + ["elearning_reminder"] * 4 + ["follow_up"] * 2 + \
        ["joining_link"] * 2 + ["not_placed", "promoted", "roster"] + ["waitlisted"] * 2, kinds

    # a delivery that fails and is retried, on the same path
    env.register(sid, "Fay", "fay@example.org", "2026-09-24 09:00")
    env.smtp.stop()
    p, report = valgrind(env, "meccd", "--once", now="2026-09-24 09:10")
    assert p.returncode == 0 and report.strip() == "", (p.stderr, report)

    # the admin's commands that read and render
    for args in (["status"], ["--json", "session", "list"], ["registrations", "list"],
                 ["outbox", "list"], ["upcoming", "--until", "2026-12-01 00:00"],
                 ["preview", "joining_link", 1], ["--json", "session", "show", sid]):
        p, report = valgrind(env, "meccctl", *args, now="2026-09-24 09:30")
        # status: 1, needs attention (no scan for 20 minutes, an email waiting)
        assert p.returncode == (1 if args == ["status"] else 0), (args, p.returncode, p.stderr, report)
        assert report.strip() == "", (args, report)
