"""Never twice, never stalled: two meccd processes on one database, a stop while the
website holds the write lock, signals to a one-shot run, the watchdog under a website's
lock and under a mass import, a lock held at start, a database restored by root, and an
email retried after its session was edited. Each against the real binaries, a real SQLite
lock taken by a second connection, and real signals."""
import datetime
import os
import signal
import sqlite3
import subprocess
import time

from harness import BUILD, with_env
from sinks import Recorder, Server
from test_daemon import Notify, statuses

WAIT = 15
EX_TEMPFAIL, EX_UNAVAILABLE = 75, 69


def local(dt):
    return dt.strftime("%Y-%m-%d %H:%M")


def wait_until(pred, timeout=WAIT, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return False


def point(env, port, **smtp):
    env.smtp_settings["url"] = "smtp://127.0.0.1:%d" % port
    env.smtp_settings.update(smtp)
    env.write_conf()


def future_session(env, capacity):
    """A session a month ahead on the real clock, for a daemon that runs on it."""
    soon = datetime.datetime.now() + datetime.timedelta(days=30)
    return env.add_session("MECC conversations", local(soon),
                           local(soon + datetime.timedelta(hours=1)), capacity, None)


def insert_registrations(env, sid, n, prefix="v"):
    con = sqlite3.connect(env.db, timeout=10)
    with con:
        con.executemany("INSERT INTO registrations(session_id, name, email, registered_at)"
                        " VALUES (?, ?, ?, strftime('%s', 'now') - 60)",
                        [(sid, "Volunteer %d" % i, "%s%06d@example.org" % (prefix, i)) for i in range(n)])
    con.close()


def hold_write_lock(path):
    con = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    con.execute("BEGIN IMMEDIATE")
    return con


def daemon(env, notify=None, *args, stderr=None, **extra):
    e = dict(os.environ, MECCD_LOG="stderr", **extra)
    e.pop("WATCHDOG_PID", None)
    if notify:
        e["NOTIFY_SOCKET"] = notify.path
    else:
        e.pop("NOTIFY_SOCKET", None)
    return subprocess.Popen([os.path.join(BUILD, "meccd"), "-c", env.conf] + list(args),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=stderr or subprocess.DEVNULL, env=e)


def stop(proc, sig=signal.SIGTERM, timeout=WAIT):
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def ids_of(messages):
    return [str(m["msg"]["Message-ID"]).strip() for m in messages]


def assert_once_each(env):
    ids = ids_of(env.smtp.messages)
    doubled = sorted({i for i in ids if ids.count(i) > 1})
    assert not doubled, "sent twice: %r" % doubled[:5]


def pings(notify, seconds):
    """The moments of WATCHDOG=1 over the next `seconds`."""
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        lines = notify.read(end - time.monotonic())
        if lines and "WATCHDOG=1" in lines:
            out.append(time.monotonic())
    return out


def largest_gap(moments, since, until):
    points = [since] + [m for m in moments if since <= m <= until] + [until]
    return max(b - a for a, b in zip(points, points[1:]))


# ---- never twice -----------------------------------------------------------------------------

@with_env(scan_interval=1, smtp_settings={"max_per_minute": 1000000})
def test_a_second_meccd_on_the_same_database_sends_nothing(env):
    sid = future_session(env, 400)
    insert_registrations(env, sid, 300)
    errlog = os.path.join(env.dir, "once.err")
    d = daemon(env)
    try:
        assert wait_until(lambda: len(env.smtp.messages) > 0), "the daemon sent nothing"
        with open(errlog, "w") as err:
            p = subprocess.run([os.path.join(BUILD, "meccd"), "-c", env.conf, "--once"],
                               stderr=err, stdout=subprocess.DEVNULL, timeout=60,
                               env=dict(os.environ, MECCD_LOG="stderr"))
        said = open(errlog).read()
        assert p.returncode == EX_TEMPFAIL, (p.returncode, said)
        assert "another meccd" in said, said
        assert wait_until(lambda: len(env.smtp.messages) >= 300, timeout=60), len(env.smtp.messages)
    finally:
        assert stop(d) == 0
    assert len(env.smtp.messages) == 300, len(env.smtp.messages)
    assert_once_each(env)


class SlowRecorder(Recorder):
    async def handle_DATA(self, server, session, envelope):
        import asyncio
        await asyncio.sleep(0.3)
        return await super().handle_DATA(server, session, envelope)


@with_env(scan_interval=1, smtp_settings={"max_per_minute": 1000000, "connections": 1})
def test_stop_while_the_website_holds_the_lock_keeps_what_was_sent(env):
    """SIGTERM with a message in flight and the database locked: the stop is quick, the
    outcome is kept beside the database, and the next start neither loses nor resends."""
    sid = future_session(env, 20)
    insert_registrations(env, sid, 5)
    with Server(SlowRecorder()) as srv:
        point(env, srv.port)
        d = daemon(env)
        try:
            assert wait_until(lambda: len(srv.handler.messages) >= 1), "nothing was sent"
            lock = hold_write_lock(env.db)
            try:
                t0 = time.monotonic()
                rc = stop(d)
                took = time.monotonic() - t0
            finally:
                lock.rollback()
                lock.close()
        finally:
            stop(d, signal.SIGKILL)
        assert rc == 0, rc
        assert took < 10, took
        got = len(srv.handler.messages)
        # the next start records what was kept, then sends only the rest
        d = daemon(env)
        try:
            assert wait_until(lambda: len(srv.handler.messages) >= 5, timeout=30), len(srv.handler.messages)
            assert wait_until(lambda: env.sql("SELECT count(*) FROM outbox WHERE status != 'sent'")[0][0] == 0)
        finally:
            assert stop(d) == 0
        ids = ids_of(srv.handler.messages)
        assert len(ids) == len(set(ids)) == 5, (got, ids)
        assert not os.path.exists(env.db + "-unrecorded")


@with_env(smtp_settings={"max_per_minute": 1000000, "connections": 2})
def test_signals_stop_a_one_shot_run_like_the_daemon(env):
    """SIGTERM, SIGINT and SIGHUP to `meccd --once` mid-delivery: exit 0, nothing left
    marked as in flight, and the runs that follow send each email exactly once."""
    sid = env.add_session("MECC large", "2026-09-22 10:30", "2026-09-22 12:00", 3000)
    con = sqlite3.connect(env.db, timeout=10)
    with con:
        con.executemany("INSERT INTO registrations(session_id, name, email, registered_at)"
                        " VALUES (?, ?, ?, 1785571200)",
                        [(sid, "V %d" % i, "s%05d@example.org" % i) for i in range(1500)])
    con.close()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        p = daemon(env, None, "--once", "--now", "2026-08-01 09:00")
        wait_until(lambda: len(env.smtp.messages) > 0, timeout=10, step=0.01)
        time.sleep(0.2)
        assert stop(p, sig) == 0, sig
        assert env.sql("SELECT count(*) FROM outbox WHERE sending != 0")[0][0] == 0, sig
    for _ in range(5):
        p = daemon(env, None, "--once", "--now", "2026-08-01 09:10")
        assert p.wait(120) == 0
        if env.sql("SELECT count(*) FROM outbox WHERE status != 'sent'")[0][0] == 0:
            break
    assert env.sql("SELECT count(*) FROM outbox WHERE status = 'sent'")[0][0] == 1500
    assert_once_each(env)


# ---- the loop never stalls -------------------------------------------------------------------

@with_env(scan_interval=1, smtp_settings={"max_per_minute": 1000000})
def test_watchdog_beats_while_the_website_holds_the_lock(env):
    sid = future_session(env, 50)
    notify = Notify(os.path.join(env.dir, "notify"))
    d = daemon(env, notify, WATCHDOG_USEC="2000000")
    try:
        notify.wait_for("READY=1", d)
        lock = hold_write_lock(env.db)
        try:
            # the website books while it holds the lock; the daemon keeps trying
            lock.execute("INSERT INTO registrations(session_id, name, email, registered_at)"
                         " VALUES (?, 'Ann', 'ann@example.org', strftime('%s', 'now') - 60)", (sid,))
            t0 = time.monotonic()
            seen = pings(notify, 6)
            t1 = time.monotonic()
        finally:
            lock.commit()
            lock.close()
        assert largest_gap(seen, t0, t1) < 1.9, seen
        assert wait_until(lambda: env.kinds("ann@example.org") == ["confirmation"])
    finally:
        assert stop(d) == 0
        notify.close()


@with_env(scan_interval=3600, smtp_settings={"url": "smtp://127.0.0.1:9", "timeout": 1})
def test_mass_import_is_admitted_in_slices_and_a_stop_is_heard(env):
    """A year's bookings on one session: the watchdog is fed while they are admitted, a
    SIGTERM in the middle ends the run within seconds, and what was admitted stays."""
    sid = future_session(env, 100000)
    insert_registrations(env, sid, 90000)
    notify = Notify(os.path.join(env.dir, "notify"))
    d = daemon(env, notify, WATCHDOG_USEC="2000000")
    try:
        notify.wait_for("READY=1", d, timeout=60)
        seen = pings(notify, 3)
        assert len(seen) >= 2, seen
        d.send_signal(signal.SIGTERM)
        t1 = time.monotonic()
        assert d.wait(10) == 0
        assert time.monotonic() - t1 < 10
    finally:
        stop(d, signal.SIGKILL)
        notify.close()
    booked, new = env.sql("SELECT sum(status = 'booked'), sum(status = 'new') FROM registrations")[0]
    print("# admitted before the stop: %d of 90000" % booked, flush=True)
    assert booked > 0 and booked % 512 == 0 or new == 0, (booked, new)
    assert booked + new == 90000, (booked, new)
    # every booking admitted has its confirmation queued, in the same transaction
    assert env.sql("SELECT count(*) FROM outbox WHERE kind = 'confirmation'")[0][0] == booked


@with_env(scan_interval=1)
def test_a_lock_at_start_means_wait_then_start(env):
    sid = future_session(env, 5)
    env.register(sid, "Ann", "ann@example.org", None)
    notify = Notify(os.path.join(env.dir, "notify"))
    lock = hold_write_lock(env.db)
    d = None
    try:
        d = daemon(env, notify)
        seen = []
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            lines = notify.read(deadline - time.monotonic())
            if lines:
                seen.append(lines)
                if any("waiting" in s for s in statuses(seen)):
                    break
        assert any("waiting" in s and "locked" in s for s in statuses(seen)), seen
        assert d.poll() is None, "meccd exited %s under a lock at start" % d.returncode
        assert not any("READY=1" in lines for lines in seen)
    finally:
        lock.rollback()
        lock.close()
    try:
        notify.wait_for("READY=1", d, timeout=WAIT)
        assert wait_until(lambda: env.kinds("ann@example.org") == ["confirmation"])
    finally:
        assert stop(d) == 0
        notify.close()


# ---- a database root touched ---------------------------------------------------------------

def test_a_database_root_restored_is_refused_with_the_fix(env):
    """meccd as an unprivileged user on a database root owns: exit 69 at start, naming the
    file, its owner and the chown that fixes it."""
    env.ctl("init")
    # the state directory is the service user's; the database in it was put back by root
    os.chown(env.dir, 65534, 65534)
    os.chmod(env.conf, 0o644)
    p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                        os.path.join(BUILD, "meccd"), "-c", env.conf, "--once",
                        "--now", "2026-08-01 09:00"],
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, MECCD_LOG="stderr"))
    assert p.returncode == EX_UNAVAILABLE, (p.returncode, p.stderr)
    assert env.db in p.stderr and "root:root" in p.stderr, p.stderr
    assert "chown nobody:" in p.stderr, p.stderr


# ---- what is true when it is sent -------------------------------------------------------------

class Refusing(Recorder):
    """451 to every recipient while `refusing`, then accepts."""

    def __init__(self):
        super().__init__()
        self.refusing = True

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refusing:
            return "451 4.3.0 try again later"
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


@with_env(smtp_settings={"max_per_minute": 1000000})
def test_an_email_retried_after_an_edit_says_what_is_true_then(env):
    sid = env.add_session("MECC conversations", "2026-09-22 10:30", "2026-09-22 12:00", 5,
                          "2026-08-01 09:00", "--join-url", "https://meet.example.org/old")
    env.register(sid, "Ann", "ann@example.org", "2026-09-01 09:00")
    env.scan("2026-09-01 09:05")                      # the confirmation goes
    with Server(Refusing()) as srv:
        point(env, srv.port)
        env.scan("2026-09-20 10:30")                  # the joining link: 451
        assert srv.handler.messages == []
        env.ctl("session", "edit", str(sid), "--start", "2026-09-23 10:30", "--end", "2026-09-23 12:00",
                "--join-url", "https://meet.example.org/new", now="2026-09-20 10:31")
        srv.handler.refusing = False
        env.scan("2026-09-20 10:40")                  # the retry, and the change
        got = {env.kind_of(m)[0]: m for m in srv.handler.messages}
        link = got["joining_link"]["msg"]
        text = link.get_body(preferencelist=("plain",)).get_content()
        assert "meet.example.org/new" in text and "/old" not in text, text
        assert "23 September" in text, text
        ics = [p for p in link.walk() if p.get_content_type() == "text/calendar"][0].get_content()
        assert "SEQUENCE:1" in ics.replace("\r\n", "\n"), ics


# ---- one address rule ------------------------------------------------------------------------

def test_quoted_local_parts_booked_are_mailed(env):
    """The rule that books an address is the rule that mails it: a quoted local part with
    an '@' or a ',' in it is booked and gets its email, to exactly that address."""
    sid = env.add_session("MECC conversations", "2026-09-22 10:30", "2026-09-22 12:00", 5)
    odd = ['"a@b"@example.org', '"a,b"@example.org', '"john..doe"@example.org']
    for i, a in enumerate(odd):
        env.register(sid, "Volunteer %d" % i, a, "2026-08-01 08:00")
    env.scan("2026-08-01 09:00")
    assert env.sql("SELECT count(*) FROM registrations WHERE status = 'booked'")[0][0] == 3
    assert env.sql("SELECT count(*) FROM outbox WHERE status = 'sent'")[0][0] == 3, \
        env.sql("SELECT recipient, status, last_error FROM outbox")
    got = sorted(r for m in env.smtp.messages for r in m["to"])
    # (the capture unquotes a local part that needs no quotes: john..doe)
    assert len(got) == 3 and odd[0] in got and odd[1] in got, got


# ---- secrets ----------------------------------------------------------------------------------

@with_env(scan_interval=60)
def test_the_daemon_cannot_dump_core(env):
    """A watchdog abort must not leave the SMTP password in a core file: meccd makes itself
    non-dumpable, which the kernel shows by giving its /proc files to root even when it
    runs as another user."""
    env.ctl("init")
    env.give_to_nobody()
    p = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                          os.path.join(BUILD, "meccd"), "-c", env.conf],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, MECCD_LOG="stderr"))
    try:
        def running_as_nobody():
            try:
                with open("/proc/%d/status" % p.pid) as f:
                    return any(l.startswith("Uid:") and l.split()[1] == "65534" for l in f)
            except OSError:
                return False
        assert wait_until(running_as_nobody), "meccd did not run as nobody"
        time.sleep(0.2)
        assert p.poll() is None, p.stderr.read()
        assert os.stat("/proc/%d/status" % p.pid).st_uid == 0, "meccd is dumpable"
    finally:
        assert stop(p) == 0
        p.stderr.close()
