"""Day-two operation: sending the queue now (outbox flush, retry keeping the history) with a
running daemon, a refused login or a broken TLS setup reported by `meccctl status` at once,
backups taken while meccd sends, and `meccctl test-email` against real relays."""
import json
import os
import signal
import stat
import subprocess
import time

from harness import BUILD, SmtpServer, free_port, with_env
from sinks import Pki, Recorder, Server, SmtpSink, quiet_server_log

T0 = "2026-08-01T09:00:00Z"
BOOKED_AT = "2026-08-01T08:30:00Z"
PASSWORD = "Tr0ub4dor&3-horse-staple"


def point(env, port, scheme="smtp", **smtp):
    env.smtp_settings["url"] = "%s://127.0.0.1:%d" % (scheme, port)
    env.smtp_settings.update(smtp)
    env.write_conf()


def outbox(env):
    return {r["recipient"]: r for r in env.ctl_json("outbox", "list")}


def future(days, minutes=0):
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(time.time() + days * 86400 + minutes * 60))


def book_real_clock(env, n, prefix="d"):
    """A session a month ahead on the real clock and n registrations made now."""
    sid = env.add_session("MECC conversations", future(30), future(30, 90), n + 5, None)
    return [env.register(sid, "Volunteer %d" % i, "%s%d@example.org" % (prefix, i), None)
            for i in range(n)] and ["%s%d@example.org" % (prefix, i) for i in range(n)]


def start_daemon(env):
    e = dict(os.environ)
    e.pop("NOTIFY_SOCKET", None)
    return subprocess.Popen([os.path.join(BUILD, "meccd"), "-c", env.conf],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=e)


def stop_daemon(d):
    d.send_signal(signal.SIGTERM)
    try:
        _, err = d.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        d.kill()
        _, err = d.communicate(timeout=5)
    assert d.returncode == 0, (d.returncode, err)
    return err


def wait_for(what, cond, timeout, daemon=None):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "waited %ds for %s" % (timeout, what)
        assert daemon is None or daemon.poll() is None, "the daemon died"
        time.sleep(0.1)


# ---- outbox flush and retry ------------------------------------------------------------

@with_env(smtp=False, scan_interval=3600)
def test_flush_reaches_a_running_daemon_within_seconds(env):
    """The relay was down: the emails wait out a backoff. Once it is back, `outbox flush`
    makes the running daemon send them within seconds, not at the next hourly scan; the
    history of attempts stays."""
    addrs = book_real_clock(env, 3)
    d = start_daemon(env)
    try:
        wait_for("a first attempt", lambda: len(outbox(env)) == 3 and any(
            r["attempts"] for r in outbox(env).values()), 20, d)
        rows = outbox(env)
        assert all(r["status"] == "queued" for r in rows.values()), rows
        tried = [r for r in rows.values() if r["attempts"]]
        srv = SmtpServer(port=env.port).start()
        try:
            p = env.ctl("outbox", "flush")
            assert "3 queued emails due now" in p.stdout, p.stdout
            t0 = time.monotonic()
            wait_for("the flushed emails", lambda: len(srv.messages) == 3, 10, d)
            took = time.monotonic() - t0
            print("# flushed emails arrived %.1fs after the flush" % took, flush=True)
            wait_for("sent recorded", lambda: all(
                r["status"] == "sent" for r in outbox(env).values()), 10, d)
        finally:
            srv.stop()
        rows = outbox(env)
        assert sorted(rows) == sorted(addrs)
        for r in tried:
            assert rows[r["recipient"]]["attempts"] == r["attempts"] + 1, (r, rows)
    finally:
        err = stop_daemon(d)
    assert "delivery asked for by meccctl" in err, err


def test_retry_keeps_the_history(env):
    sid = env.add_session("S", "2026-09-22 10:30", "2026-09-22 12:00", 5)
    env.register(sid, "Ann", "ann@example.org", "2026-09-01 09:00")
    env.smtp.capture.replies["ann@example.org"] = "550 5.1.1 <ann@example.org>: mailbox unavailable"
    env.scan("2026-09-01 09:05")
    (r,) = env.ctl_json("outbox", "list", "--status", "failed")
    env.ctl("outbox", "retry", r["id"], now="2026-09-01 10:00")
    (q,) = env.ctl_json("outbox", "list")
    assert q["status"] == "queued" and q["attempts"] == 1, q
    assert "mailbox unavailable" in q["last_error"], q
    assert q["next_attempt_at"] == "2026-09-01T09:00:00Z", q
    del env.smtp.capture.replies["ann@example.org"]
    env.scan("2026-09-01 10:05")
    (s,) = env.ctl_json("outbox", "list")
    assert s["status"] == "sent" and s["attempts"] == 2, s


def test_flush_without_a_daemon_and_nothing_queued(env):
    p = env.ctl("outbox", "flush")
    assert "0 queued emails due now" in p.stdout, p.stdout
    assert env.ctl_json("outbox", "flush") == {"due": 0}
    assert env.ctl("outbox", "flush", "extra", check=False).returncode == 64


# ---- the admin's problems: a refused login, a broken TLS setup ----------------------------

def tls_server(pki, **kw):
    return Server(Recorder(), tls_context=pki.context(), require_starttls=True, **kw)


def book(env, n):
    sid = env.add_session("MECC conversations", "2026-09-22 10:30", "2026-09-22 12:00", n + 5)
    for i in range(n):
        env.register(sid, "Volunteer %d" % i, "p%d@example.org" % i, BOOKED_AT)


def status(env, now):
    p = env.ctl("status", now=now, check=False)
    j = env.run("meccctl", "--json", "status", now=now, check=False)
    return p, json.loads(j.stdout)


def test_refused_login_is_reported_at_once_and_cleared_by_a_success(env):
    book(env, 2)
    pki = Pki()
    pw = os.path.join(env.dir, "smtp-password")
    with open(pw, "w") as f:
        f.write(PASSWORD + "\n")
    os.chmod(pw, 0o600)
    try:
        with tls_server(pki, users={"mecc": "the-new-password"}) as srv:
            point(env, srv.port, tls="required", ca_file=pki.ca, username="mecc", password_file=pw)
            env.scan(T0)
            assert not srv.handler.messages
        # a minute later, not an hour: health says so with the relay's reply
        p, j = status(env, "2026-08-01T09:01:00Z")
        assert p.returncode == 1, (p.returncode, p.stdout)
        assert "the relay refused the login: 535" in p.stdout, p.stdout
        assert j["healthy"] is False and j["relay_problem"].startswith("the relay refused the login: 535"), j
        assert j["relay_problem_at"] == T0, j
        assert PASSWORD not in p.stdout + json.dumps(j)
        print("# " + "\n# ".join(p.stdout.splitlines()[:6]), flush=True)
        # the password is put right: the next email sent clears it
        with tls_server(pki, users={"mecc": PASSWORD}) as srv:
            point(env, srv.port)
            env.ctl("outbox", "flush", now="2026-08-01T09:02:00Z")
            env.scan("2026-08-01T09:02:00Z")
            assert len(srv.handler.messages) == 2
        p, j = status(env, "2026-08-01T09:03:00Z")
        assert p.returncode == 0 and j["relay_problem"] is None, (p.stdout, j)
        assert "health:            OK" in p.stdout, p.stdout
    finally:
        pki.close()


def test_unverified_certificate_is_the_admins_problem(env):
    book(env, 1)
    pki = Pki()
    try:
        with tls_server(pki) as srv, quiet_server_log():
            point(env, srv.port, tls="required")
            env.scan(T0)
        p, j = status(env, "2026-08-01T09:01:00Z")
        assert p.returncode == 1, p.stdout
        assert "TLS with the relay failed" in j["relay_problem"], j
        assert "certificate" in j["relay_problem"].lower(), j
    finally:
        pki.close()


def test_unreadable_ca_file_is_a_configuration_error(env):
    """A ca_file the service user cannot read (root's, mode 0600: it passes a check made as
    root) is a setup error health reports at once; no email is tried, so none spends its
    attempts on it. (A ca_file that is not there at all is refused by the config check.)"""
    book(env, 1)
    ca = os.path.join(env.dir, "private-ca.pem")
    with open(ca, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\n")
    os.chmod(ca, 0o600)
    with Server(Recorder()) as srv:
        point(env, srv.port, tls="required", ca_file=ca)
        env.ctl("init")
        # the state directory and the database are the service user's, the CA file root's
        env.give_to_nobody()
        p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            os.path.join(BUILD, "meccd"), "-c", env.conf, "--once", "--now", T0],
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, MECCD_LOG="stderr"))
        assert p.returncode == 0, (p.returncode, p.stderr)
        assert not srv.handler.mail_commands
    assert ca in p.stderr, p.stderr
    (r,) = outbox(env).values()
    assert r["status"] == "queued" and r["attempts"] == 0, r
    p, j = status(env, "2026-08-01T09:01:00Z")
    assert p.returncode == 1
    assert j["relay_problem"].startswith("configuration: smtp.ca_file %s" % ca), j


# ---- backup and restore -------------------------------------------------------------------

class SlowCapture(Recorder):
    """Accepts each message after a short pause: a daemon that is still sending."""

    async def handle_DATA(self, server, session, envelope):
        import asyncio
        await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


@with_env(smtp=False, scan_interval=1, smtp_settings={"max_per_minute": 1000000})
def test_backup_while_sending_then_restore_sends_nothing_twice(env):
    addrs = book_real_clock(env, 60, prefix="b")
    backup = os.path.join(env.dir, "backup.db")
    with Server(SlowCapture(), port=env.port) as srv:
        d = start_daemon(env)
        try:
            wait_for("sending to start", lambda: len(srv.handler.messages) >= 10, 30, d)
            before = {str(m["msg"]["Message-ID"]).strip() for m in srv.handler.messages}
            p = env.ctl("backup", backup)
            assert backup in p.stdout, p.stdout
            wait_for("every email sent", lambda: env.sql(
                "SELECT count(*) FROM outbox WHERE status != 'sent'")[0][0] == 0, 60, d)
        finally:
            stop_daemon(d)
        sent_live = [str(m["msg"]["Message-ID"]).strip() for m in srv.handler.messages]
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600
    assert not os.path.exists(backup + "-wal")
    # a second backup to the same file is refused, and leaves the first alone
    again = env.ctl("backup", backup, check=False)
    assert again.returncode == 73 and "--force" in again.stderr, (again.returncode, again.stderr)
    later = os.path.join(env.dir, "later.db")
    with open(later, "w") as f:
        f.write("old")
    os.chmod(later, 0o644)
    assert env.ctl("backup", "--force", later).returncode == 0
    assert stat.S_IMODE(os.stat(later).st_mode) == 0o600

    # restore into a fresh install: its own directory, config and relay
    fresh = os.path.join(env.dir, "fresh")
    os.mkdir(fresh, 0o700)
    restored = os.path.join(fresh, "meccd.db")
    os.rename(backup, restored)
    env.settings["database"] = restored
    env.db = restored
    sent_in_backup = {r[0] for r in env.sql(
        "SELECT message_id FROM outbox WHERE status = 'sent'")}
    assert sent_in_backup, "the backup was taken before anything was sent"
    # what the relay had taken before the backup began is sent in it (but for a message a
    # connection whose reply may still have been on its way: two connections)
    assert len(before - sent_in_backup) <= 2, (len(before), len(before - sent_in_backup))
    assert len(sent_in_backup) < len(addrs), "the backup was taken after everything was sent"
    with Server(Recorder()) as srv2:
        point(env, srv2.port)
        env.run("meccd", "--once")
        again_sent = [str(m["msg"]["Message-ID"]).strip() for m in srv2.handler.messages]
    assert not set(again_sent) & sent_in_backup, "an email sent before the backup went again"
    # only what was still queued (or in flight) at the backup goes again, same Message-IDs
    assert set(again_sent) <= set(sent_live)
    rows = env.ctl_json("outbox", "list")
    assert len(rows) == len(addrs) and all(r["status"] == "sent" for r in rows), rows
    print("# backup: %d sent in it, %d sent again from the restored copy"
          % (len(sent_in_backup), len(again_sent)), flush=True)


# ---- test-email ----------------------------------------------------------------------------

def test_test_email_through_starttls_and_auth(env):
    pki = Pki()
    pw = os.path.join(env.dir, "smtp-password")
    with open(pw, "w") as f:
        f.write(PASSWORD + "\n")
    os.chmod(pw, 0o600)
    try:
        with tls_server(pki, users={"mecc": PASSWORD}, auth_require_tls=True) as srv:
            point(env, srv.port, tls="required", ca_file=pki.ca, username="mecc", password_file=pw)
            p = env.ctl("test-email", "admin@example.org")
            assert [m["to"] for m in srv.handler.messages] == [["admin@example.org"]]
            assert srv.handler.logins == [("PLAIN", "mecc", True)] or \
                [l[1:] for l in srv.handler.logins] == [("mecc", True)], srv.handler.logins
        out = p.stdout
        print("# " + "\n# ".join(out.splitlines()), flush=True)
        assert "password from %s" % pw in out, out
        assert "> STARTTLS" in out and "SSL connection using" in out, out
        assert "(credentials not shown)" in out and "< 235" in out, out
        assert "accepted: 250" in out, out
        assert PASSWORD not in out + p.stderr
        import base64
        assert base64.b64encode(b"\0mecc\0" + PASSWORD.encode()).decode() not in out
        # no outbox row: a test email is not the programme's mail
        assert env.ctl_json("outbox", "list") == []

        # the wrong password: the relay's reply, and a non-zero exit
        with tls_server(pki, users={"mecc": "another"}) as srv:
            point(env, srv.port)
            p = env.ctl("test-email", "admin@example.org", check=False)
        assert p.returncode == 69, (p.returncode, p.stdout)
        assert "refused:  535" in p.stdout and "refused the login" in p.stdout, p.stdout
    finally:
        pki.close()


def test_test_email_refused_by_the_relay(env):
    with SmtpSink("-f", "RCPT", "-B", "550 5.1.1 no such user here") as sink:
        point(env, sink.port)
        p = env.ctl("test-email", "nobody@example.org", check=False)
    assert p.returncode == 65, (p.returncode, p.stdout, p.stderr)
    assert "< 550 5.1.1 no such user here" in p.stdout and "refused:  550" in p.stdout, p.stdout
    assert "login:    none" in p.stdout
    q = env.ctl("test-email", "not an address", check=False)
    assert q.returncode == 64 and "not an email address" in q.stderr


# ---- --check-config: what the service user can read, and always on stderr ------------------

def test_check_config_as_the_service_user(env):
    import pwd
    nobody = pwd.getpwnam("nobody")
    if os.geteuid() != 0:
        from harness import Skip
        raise Skip("needs root")
    os.chmod(env.dir, 0o711)
    os.chmod(env.conf, 0o600)  # root's: what `meccd --check-config` as root used to pass
    p = env.run("meccd", "--check-config", "--user", "nobody", check=False)
    assert p.returncode == 78, (p.returncode, p.stdout, p.stderr)
    assert "checked as user nobody" in p.stderr, p.stderr
    assert "configuration %s: Permission denied" % env.conf in p.stderr, p.stderr
    assert "database %s" % env.db in p.stderr and "chown" in p.stderr, p.stderr
    os.chmod(env.conf, 0o644)
    os.chown(env.dir, nobody.pw_uid, nobody.pw_gid)
    p = env.run("meccd", "--check-config", "--user", "nobody", check=False)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    assert "user nobody can read them" in p.stdout, p.stdout
    assert env.run("meccd", "--check-config", "--user", "no-such-user-here", check=False).returncode == 64
    assert env.run("meccd", "--user", "nobody", check=False).returncode == 64


def test_check_config_answers_on_stderr_whatever_meccd_log_says(env):
    """Not a terminal, MECCD_LOG=journal, a journal stream: the verdict still goes to stderr."""
    with open(env.conf, "a") as f:
        f.write("scan_intervall = 5\n")
    for extra in ({"MECCD_LOG": "journal"}, {"JOURNAL_STREAM": "8:1234"}, {}):
        p = env.run("meccd", "--check-config", check=False, env=extra)
        assert p.returncode == 78, (extra, p.returncode)
        assert "scan_intervall" in p.stderr and env.conf in p.stderr, (extra, p.stderr)


# ---- monitoring -----------------------------------------------------------------------------

def test_nagios_style_check_script(env):
    from harness import TOP
    script = os.path.join(TOP, "contrib", "monitoring", "check_meccd")
    e = dict(os.environ, MECCCTL=os.path.join(BUILD, "meccctl"))

    def check():
        p = subprocess.run(["sh", script, "-c", env.conf], capture_output=True, text=True, env=e)
        return p.returncode, p.stdout.strip()

    env.scan(None)
    rc, out = check()
    assert rc == 0 and out.startswith("MECCD OK - OK; 0 queued, 0 failed"), (rc, out)
    env.sql("INSERT INTO meta(key, value) VALUES ('relay_problem', ?)",
            "%d the relay refused the login: 535 5.7.8 Authentication credentials invalid" % time.time())
    rc, out = check()
    assert rc == 1 and out.startswith("MECCD WARNING - the relay refused the login: 535"), (rc, out)
    env.settings["database"] = "/nonexistent/meccd/meccd.db"
    env.write_conf()
    rc, out = check()
    assert rc == 3 and out.startswith("MECCD UNKNOWN - meccctl status exited 69"), (rc, out)
