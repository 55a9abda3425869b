"""Delivery that never loses or doubles an email: faults at every SMTP stage (smtp-sink),
mixed per-recipient replies, STARTTLS and AUTH, kill -9 in the middle of a large batch, the
watchdog during a stalled server, a locked and a corrupt database."""
import calendar
import collections
import os
import random
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time

from harness import BUILD, with_env
from sinks import Counter, Pki, Recorder, Server, SmtpSink, quiet_server_log

T0 = "2026-08-01T09:00:00Z"          # every first scan; the session is in September
BOOKED_AT = "2026-08-01T08:30:00Z"
EX_TEMPFAIL, EX_UNAVAILABLE, EX_CONFIG = 75, 69, 78


def epoch(iso):
    return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def book(env, n, prefix="p"):
    """One session and n booked registrations (their confirmations queued by the next
    scan). Returns the addresses."""
    sid = env.add_session("MECC conversations", "2026-09-22 10:30", "2026-09-22 12:00", n + 5)
    addrs = ["%s%d@example.org" % (prefix, i) for i in range(n)]
    for a in addrs:
        env.register(sid, "Volunteer " + a.split("@")[0], a, BOOKED_AT)
    return addrs


def point(env, port, scheme="smtp", **smtp):
    env.smtp_settings["url"] = "%s://127.0.0.1:%d" % (scheme, port)
    env.smtp_settings.update(smtp)
    env.write_conf()


def outbox(env):
    return {r["id"]: r for r in env.ctl_json("outbox", "list")}


def assert_none_sending(env):
    stuck = env.sql("SELECT id FROM outbox WHERE sending != 0")
    assert not stuck, "rows left marked as sending: %r" % stuck


def captured_ids(env):
    return [str(m["msg"]["Message-ID"]).strip() for m in env.smtp.messages]


def assert_each_once(ids, expected):
    counts = collections.Counter(ids)
    doubled = {k: v for k, v in counts.items() if v > 1}
    assert not doubled, "delivered more than once: %r" % doubled
    assert set(ids) == set(expected), \
        "delivered %r, expected %r" % (sorted(set(ids)), sorted(expected))


# ---- faults at each SMTP stage ----------------------------------------------------------

TEMPORARY, PERMANENT = "retried", "failed"
STAGES = [("MAIL", "MAIL"), ("RCPT", "RCPT"), ("DATA", "DATA"), ("END", ".")]
FAULTS = [
    # name, smtp-sink options for a command, the outcome for each stage
    ("4xx", lambda c: ["-r", c, "-b", "451 4.3.0 sink says try later"],
     {"MAIL": TEMPORARY, "RCPT": TEMPORARY, "DATA": TEMPORARY, "END": TEMPORARY}),
    # a 5xx to MAIL FROM is the relay refusing us, not the message: it waits as if down
    ("5xx", lambda c: ["-f", c, "-B", "554 5.7.1 sink says never"],
     {"MAIL": TEMPORARY, "RCPT": PERMANENT, "DATA": PERMANENT, "END": PERMANENT}),
    ("421", lambda c: ["-Q", c],
     {"MAIL": TEMPORARY, "RCPT": TEMPORARY, "DATA": TEMPORARY, "END": TEMPORARY}),
    ("drop", lambda c: ["-q", c],
     {"MAIL": TEMPORARY, "RCPT": TEMPORARY, "DATA": TEMPORARY, "END": TEMPORARY}),
    ("stall", lambda c: ["-W", "%s:5" % c],
     {"MAIL": TEMPORARY, "RCPT": TEMPORARY, "DATA": TEMPORARY, "END": TEMPORARY}),
]
REPLY_TEXT = {"4xx": "451 4.3.0 sink says try later", "5xx": "554 5.7.1 sink says never",
              "421": "421"}


def fault_test(fault, options, stage, command, outcome):
    def test(env):
        book(env, 3)
        with SmtpSink(*options(command)) as sink:
            point(env, sink.port, timeout=2)
            t = time.monotonic()
            env.scan(T0, timeout=60)
            took = time.monotonic() - t
            rows = outbox(env)
            seen = sink.message_ids()
        assert_none_sending(env)
        assert len(rows) == 3, rows
        assert took < 20, "a faulty server held the scan for %.1fs" % took
        for r in rows.values():
            if outcome == PERMANENT:
                assert r["status"] == "failed", r
                assert r["attempts"] == 1, r
                assert r["last_error"] == REPLY_TEXT[fault], r
                continue
            assert r["status"] == "queued", r
            if r["attempts"] == 0:
                # the relay refused us: the rest of the batch waits, still due
                assert stage == "MAIL", "row %d never tried: %r" % (r["id"], r)
                assert epoch(r["next_attempt_at"]) <= epoch(T0), r
                continue
            assert r["attempts"] == 1, r
            assert epoch(r["next_attempt_at"]) == epoch(T0) + 60, \
                "first retry not 1 min later: %r" % r
            assert r["last_error"], r
            if fault in REPLY_TEXT:
                assert r["last_error"].startswith(REPLY_TEXT[fault]), r
        tried = [r for r in rows.values() if r["attempts"]]
        assert tried, "nothing was tried"
        if stage != "MAIL" and fault in ("4xx", "5xx"):
            # a refused recipient or message is that message's business, not the relay's
            assert len(tried) == 3, "a per-message fault stopped the batch: %r" % rows
        if stage == "MAIL" and fault in ("4xx", "5xx", "421"):
            # the relay refuses us: what was on the two connections waits, the rest stays
            assert len(tried) <= 2, "kept trying a relay that refuses us: %r" % rows
        # the recovery: a healthy relay, past the backoff
        point(env, env.port)
        env.scan(iso(epoch(T0) + 120))
        after = outbox(env)
        assert_none_sending(env)
        expected = []
        for i, r in after.items():
            if r["kind"] == "unreachable":
                # a 5xx to RCPT refused the address: the coordinators hear of it, once
                assert (stage, fault, r["status"]) == ("RCPT", "5xx", "sent"), r
                expected.append(r["message_id"])
                continue
            if outcome == PERMANENT:
                assert r["status"] == "failed" and r["attempts"] == 1, r
                continue
            assert r["status"] == "sent", r
            assert r["attempts"] == rows[i]["attempts"] + 1, (rows[i], r)
            assert r["last_error"] is None, r
            expected.append(r["message_id"])
        assert_each_once(captured_ids(env), expected)
        # no message data reached the sink before end of data; what it took in at the end
        # is the same message, resent with the same id
        if stage != "END":
            assert not seen, seen
        assert set(seen) <= {r["message_id"] for r in after.values()}, seen

    test.__name__ = "test_fault_%s_at_%s" % (fault, stage)
    return test


for _fault, _options, _outcomes in FAULTS:
    for _stage, _command in STAGES:
        _t = fault_test(_fault, _options, _stage, _command, _outcomes[_stage])
        globals()[_t.__name__] = _t


def test_backoff_doubles_to_an_hour_then_gives_up(env):
    """4xx to every RCPT: 1, 2, 4 ... 32 min, then hourly, until give_up_after; never
    earlier than next_attempt_at."""
    env.smtp_settings["give_up_after"] = "4h"
    book(env, 1)
    waits = []
    with SmtpSink("-r", "RCPT", "-b", "452 4.2.2 mailbox full") as sink:
        point(env, sink.port)
        now = epoch(T0)
        env.scan(iso(now))
        first = now
        for attempt in range(1, 20):
            (r,) = outbox(env).values()
            assert_none_sending(env)
            assert r["attempts"] == attempt, r
            assert r["last_error"] == "452 4.2.2 mailbox full", r
            if r["status"] == "failed":
                break
            assert r["status"] == "queued", r
            due = epoch(r["next_attempt_at"])
            waits.append(due - now)
            # a minute early: not tried
            env.scan(iso(due - 60))
            assert outbox(env)[r["id"]]["attempts"] == attempt, "tried before it was due"
            now = due
            env.scan(iso(now))
        assert not sink.message_ids()
    assert waits == [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600], waits
    assert r["status"] == "failed", r
    # failed at the first attempt at or past 4 h after the first one
    assert now >= first + 4 * 3600 and now - waits[-1] < first + 4 * 3600, (now, first)
    assert not env.smtp.messages


def test_mixed_replies_in_one_batch(env):
    """451 for some recipients, 550 for others, in one batch: the others are delivered and
    each registration's email gets its own outcome."""
    addrs = book(env, 8)
    busy = {addrs[1], addrs[5]}
    unknown = {addrs[2], addrs[4], addrs[7]}
    for a in busy:
        env.smtp.capture.replies[a] = "451 4.2.1 mailbox busy, try later"
    for a in unknown:
        env.smtp.capture.replies[a] = "550 5.1.1 no such mailbox here"
    env.scan(T0)
    assert_none_sending(env)
    rows = {r["recipient"]: r for r in outbox(env).values()}
    for a in addrs:
        r = rows[a]
        if a in busy:
            assert (r["status"], r["attempts"]) == ("queued", 1), r
            assert r["last_error"] == "451 4.2.1 mailbox busy, try later", r
            assert epoch(r["next_attempt_at"]) == epoch(T0) + 60, r
        elif a in unknown:
            assert r["status"] == "failed", r
            assert r["last_error"] == "550 5.1.1 no such mailbox here", r
        else:
            assert r["status"] == "sent", r
    delivered = {m["to"][0] for m in env.smtp.messages}
    assert delivered == set(addrs) - busy - unknown, delivered
    text = env.ctl("outbox", "list", "--status", "failed").stdout
    assert "550 5.1.1 no such mailbox here" in text, text

    env.smtp.capture.replies.clear()
    env.scan(iso(epoch(T0) + 60))
    assert_none_sending(env)
    rows = {r["recipient"]: r for r in outbox(env).values()}
    for a in addrs:
        assert rows[a]["status"] == ("failed" if a in unknown else "sent"), rows[a]
    assert_each_once(captured_ids(env), [r["message_id"] for r in rows.values()
                                         if r["status"] == "sent"])
    assert sorted(m["to"][0] for m in env.smtp.messages
                  if env.kind_of(m)[0] != "unreachable") == sorted(set(addrs) - unknown)
    # the three refused at RCPT are unreachable now: the coordinators heard of them in one email
    (told,) = env.mails(kind="unreachable")
    assert told["to"] == ["mecc-team@example.org"], told["to"]


# ---- STARTTLS and AUTH ------------------------------------------------------------------

def tls_server(pki, **kw):
    return Server(Recorder(), tls_context=pki.context(), require_starttls=True, **kw)


def test_starttls_with_private_ca(env):
    book(env, 2)
    pki = Pki()
    try:
        with tls_server(pki) as srv:
            point(env, srv.port, tls="required", ca_file=pki.ca)
            env.scan(T0)
            got = srv.handler.messages
        assert sorted(m["to"][0] for m in got) == ["p0@example.org", "p1@example.org"]
        assert all(r["status"] == "sent" for r in outbox(env).values())
    finally:
        pki.close()


def test_starttls_unknown_ca_fails_closed(env):
    book(env, 2)
    pki = Pki()
    try:
        with tls_server(pki) as srv, quiet_server_log():
            point(env, srv.port, tls="required")
            p = env.scan(T0)
            assert not srv.handler.messages
            assert srv.handler.mail_commands == 0, "MAIL FROM sent over an unverified link"
        rows = outbox(env)
        assert all(r["status"] == "queued" for r in rows.values()), rows
        tried = [r for r in rows.values() if r["attempts"]]
        assert tried, rows
        for r in tried:
            assert "certificate" in r["last_error"].lower(), r
        assert "certificate" in p.stderr.lower(), p.stderr
        assert_none_sending(env)
    finally:
        pki.close()


def test_tls_required_never_sends_in_clear(env):
    """A relay without STARTTLS and tls = "required": not a byte of mail in clear."""
    book(env, 2)
    with Server(Recorder()) as srv:
        point(env, srv.port, tls="required")
        env.scan(T0)
        assert not srv.handler.messages
        assert srv.handler.mail_commands == 0, "MAIL FROM sent in clear"
    rows = outbox(env)
    assert all(r["status"] == "queued" for r in rows.values()), rows
    assert any("tls" in (r["last_error"] or "").lower() or "ssl" in (r["last_error"] or "").lower()
               for r in rows.values()), rows
    assert_none_sending(env)


def test_smtps_implicit_tls(env):
    book(env, 1)
    pki = Pki()
    try:
        with Server(Recorder(), ssl_context=pki.context()) as srv:
            point(env, srv.port, scheme="smtps", tls="required", ca_file=pki.ca)
            env.scan(T0)
            assert [m["to"][0] for m in srv.handler.messages] == ["p0@example.org"]
    finally:
        pki.close()


PASSWORD = "Tr0ub4dor&3-horse-staple"


def auth_env(env, pki, srv, **smtp):
    point(env, srv.port, tls="required", ca_file=pki.ca, username="mecc", **smtp)


def write_secret(path, mode, secret=PASSWORD):
    with open(path, "w") as f:
        f.write(secret + "\n")
    os.chmod(path, mode)


def assert_no_password(*texts):
    for t in texts:
        assert PASSWORD not in t, "the password leaked: %r" % t


def test_auth_password_file(env):
    book(env, 2)
    pki = Pki()
    pw = os.path.join(env.dir, "smtp-password")
    write_secret(pw, 0o600)
    out = []
    try:
        for mech in ("PLAIN", "LOGIN"):
            other = "LOGIN" if mech == "PLAIN" else "PLAIN"
            with tls_server(pki, users={"mecc": PASSWORD}, auth_require_tls=True,
                            auth_exclude_mechanism=[other]) as srv:
                auth_env(env, pki, srv, password_file=pw)
                env.sql("UPDATE outbox SET status = 'queued', sent_at = NULL")
                p = env.scan(T0)
                out += [p.stdout, p.stderr]
                assert len(srv.handler.messages) == 2, (mech, p.stderr)
                assert srv.handler.logins and \
                    all(l == (mech, "mecc", True) for l in srv.handler.logins), srv.handler.logins
        out += [env.ctl("outbox", "list").stdout, env.ctl("--json", "outbox", "list").stdout,
                env.ctl("status", check=False).stdout]
        assert_no_password(*out)
    finally:
        pki.close()


def test_auth_password_file_readable_by_others_is_refused(env):
    book(env, 1)
    pki = Pki()
    pw = os.path.join(env.dir, "smtp-password")
    write_secret(pw, 0o644)
    try:
        with tls_server(pki, users={"mecc": PASSWORD}) as srv:
            auth_env(env, pki, srv, password_file=pw)
            p = env.scan(T0, check=False)
            assert not srv.handler.messages and not srv.handler.logins
        assert pw in p.stderr and "0644" in p.stderr, p.stderr
        (r,) = outbox(env).values()
        assert r["status"] == "queued" and r["attempts"] == 0, r
        c = env.run("meccd", "--check-config", check=False)
        assert c.returncode == EX_CONFIG, (c.returncode, c.stderr)
        assert pw in c.stderr and "0644" in c.stderr, c.stderr
        assert_no_password(p.stdout, p.stderr, c.stdout, c.stderr)
    finally:
        pki.close()


def test_auth_systemd_credential(env):
    book(env, 1)
    pki = Pki()
    creds = tempfile.mkdtemp(dir=env.dir)
    write_secret(os.path.join(creds, "smtp-password"), 0o400)
    try:
        with tls_server(pki, users={"mecc": PASSWORD}) as srv:
            auth_env(env, pki, srv, password_file="")
            p = env.scan(T0, env={"CREDENTIALS_DIRECTORY": creds})
            assert [m["to"][0] for m in srv.handler.messages] == ["p0@example.org"], p.stderr
            assert [l[1:] for l in srv.handler.logins] == [("mecc", True)], srv.handler.logins
        assert_no_password(p.stdout, p.stderr)
    finally:
        pki.close()


def test_auth_password_never_shown(env):
    """A wrong password is refused by the relay; neither it nor the right one shows in
    stderr, the outbox, or the daemon's argv."""
    book(env, 1)
    pki = Pki()
    pw = os.path.join(env.dir, "smtp-password")
    write_secret(pw, 0o600)
    try:
        with tls_server(pki, users={"mecc": "something-else"}) as srv:
            auth_env(env, pki, srv, password_file=pw)
            p = env.scan(T0)
            assert not srv.handler.messages
            assert srv.handler.logins and not any(l[2] for l in srv.handler.logins)
        (r,) = outbox(env).values()
        assert r["status"] == "queued" and r["attempts"] == 1, r
        assert r["last_error"].startswith("535"), r
        texts = [p.stderr, p.stdout, env.ctl("outbox", "list").stdout,
                 env.ctl("--json", "outbox", "list").stdout]
        # the running daemon: its command line and what it prints
        env.sql("UPDATE outbox SET next_attempt_at = 0")
        with tls_server(pki, users={"mecc": PASSWORD}) as srv:
            auth_env(env, pki, srv, password_file=pw)
            d = subprocess.Popen([os.path.join(BUILD, "meccd"), "-c", env.conf, "--now", T0],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                deadline = time.monotonic() + 20
                while not srv.handler.messages and time.monotonic() < deadline:
                    with open("/proc/%d/cmdline" % d.pid, "rb") as f:
                        texts.append(f.read().decode(errors="replace"))
                    time.sleep(0.1)
                assert srv.handler.messages, "the daemon delivered nothing"
            finally:
                d.send_signal(signal.SIGTERM)
                o, e = d.communicate(timeout=15)
        texts += [o, e]
        assert d.returncode == 0, e
        assert_no_password(*texts)
    finally:
        pki.close()


# ---- kill -9 in the middle of a large batch ---------------------------------------------

@with_env(smtp_settings={"connections": 2, "max_per_minute": 1000000, "timeout": 10})
def test_kill9_loses_nothing_doubles_little(env):
    # enough emails that a faster sender still leaves rows for every kill
    n, min_kills = 20000, 25
    seed = int(os.environ.get("MECCD_SEED", random.randrange(1 << 30)))
    rnd = random.Random(seed)
    print("# seed=%d" % seed, flush=True)
    sid = env.add_session("MECC large", "2026-09-22 10:30", "2026-09-22 12:00", n)
    con = sqlite3.connect(env.db, timeout=10)
    with con:
        con.executemany("INSERT INTO registrations(session_id, name, email, registered_at)"
                        " VALUES (?, ?, ?, ?)",
                        [(sid, "Volunteer %d" % i, "v%05d@example.org" % i, epoch(BOOKED_AT))
                         for i in range(n)])
    con.close()
    # one scan admits them all; the relay is down, so nothing is sent yet
    point(env, free_closed_port())
    p = env.scan(T0, timeout=120)
    counts = dict(env.sql("SELECT status, count(*) FROM outbox GROUP BY status"))
    assert counts == {"queued": n}, (counts, p.stderr[-500:])

    counter = Counter()
    now = iso(epoch(T0) + 120)
    kills, in_flight_at_kills, runs = 0, 0, 0
    deadline = time.monotonic() + 110
    with Server(counter) as srv:
        point(env, srv.port)
        while True:
            assert time.monotonic() < deadline, "the queue did not drain in time"
            runs += 1
            d = subprocess.Popen([os.path.join(BUILD, "meccd"), "-c", env.conf, "--once",
                                  "--now", now], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            try:
                if kills < min_kills:
                    rc = d.wait(rnd.uniform(0.05, 0.35))
                else:
                    rc = d.wait(100)
            except subprocess.TimeoutExpired:
                d.kill()
                d.wait(10)
                kills += 1
                # rows are claimed a batch at a time: more may be marked than are in flight
                in_flight_at_kills += env.sql("SELECT count(*) FROM outbox WHERE sending = 1")[0][0]
                continue
            assert rc == 0, "meccd --once exited %d" % rc
            left = env.sql("SELECT count(*) FROM outbox WHERE status != 'sent' OR sending")[0][0]
            if left == 0:
                break
            assert kills < min_kills, "%d emails left after a clean run" % left
    rows = env.sql("SELECT message_id, status FROM outbox")
    ids = counter.ids
    seen = collections.Counter(ids)
    sent = sum(1 for _, s in rows if s == "sent")
    lost = sum(1 for m, _ in rows if m not in seen)
    duplicates = len(ids) - len(seen)
    print("# kills=%d runs=%d sent=%d received=%d duplicates=%d lost=%d in_flight_at_kills=%d"
          % (kills, runs, sent, len(ids), duplicates, lost, in_flight_at_kills), flush=True)
    assert kills >= 20, kills
    assert len(rows) == n and sent == n, (len(rows), sent)
    assert lost == 0, lost
    assert set(seen) == {m for m, _ in rows}, "the sink got messages the outbox never had"
    # what was sent is recorded before a connection takes another message: a kill sends
    # again at most one email per connection
    assert duplicates <= kills * 2, (duplicates, kills)
    assert duplicates <= in_flight_at_kills, (duplicates, in_flight_at_kills)


def free_closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the watchdog during a stalled server -----------------------------------------------

def test_watchdog_keeps_beating_while_the_relay_stalls(env):
    book(env, 2)
    sock_path = os.path.join(env.dir, "notify")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(sock_path)
    ns.settimeout(0.2)
    messages = []       # (monotonic time, datagram)

    def read_until(cond, limit):
        end = time.monotonic() + limit
        while time.monotonic() < end:
            try:
                m = ns.recv(4096).decode()
            except socket.timeout:
                continue
            messages.append((time.monotonic(), m))
            if cond(m):
                return True
        return False

    with SmtpSink("-W", "DATA:30") as sink:
        point(env, sink.port, timeout=30)
        e = dict(os.environ, NOTIFY_SOCKET=sock_path, WATCHDOG_USEC="2000000")
        e.pop("WATCHDOG_PID", None)
        d = subprocess.Popen([os.path.join(BUILD, "meccd"), "-c", env.conf, "--now", T0],
                             env=e, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            assert read_until(lambda m: "READY=1" in m, 10), messages
            # the relay holds both connections at DATA
            end = time.monotonic() + 10
            while env.sql("SELECT count(*) FROM outbox WHERE sending = 1")[0][0] < 2:
                assert time.monotonic() < end, "delivery never started"
                time.sleep(0.1)
            stall_start = time.monotonic()
            read_until(lambda m: False, 6)
            beats = [t for t, m in messages if "WATCHDOG=1" in m and t >= stall_start]
            # sd-event pings between 1/2 and 3/4 of WATCHDOG_USEC
            assert len(beats) >= 4, "only %d WATCHDOG=1 in 6 s of stall" % len(beats)
            gaps = [b - a for a, b in zip(beats, beats[1:])]
            assert max(gaps) < 1.9, "a %.1fs gap between watchdog pings" % max(gaps)
            assert env.sql("SELECT count(*) FROM outbox WHERE sending = 1")[0][0] == 2
            t = time.monotonic()
            d.send_signal(signal.SIGTERM)
            rc = d.wait(12)
            took = time.monotonic() - t
            read_until(lambda m: False, 0.3)
        finally:
            if d.poll() is None:
                d.kill()
                d.wait(5)
            err = d.stderr.read()
            d.stderr.close()
        assert rc == 0, (rc, err)
        assert took < 10, "SIGTERM took %.1fs" % took
        assert any("STOPPING=1" in m for _, m in messages), messages
    ns.close()
    # the next start sends them, once each
    point(env, env.port)
    env.scan(iso(epoch(T0) + 60))
    assert_none_sending(env)
    rows = outbox(env)
    assert all(r["status"] == "sent" for r in rows.values()), rows
    assert_each_once(captured_ids(env), [r["message_id"] for r in rows.values()])


# ---- the database: locked, corrupt ------------------------------------------------------

def hold_write_lock(path):
    con = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    con.execute("BEGIN IMMEDIATE")
    return con


def test_database_locked_before_the_scan(env):
    addrs = book(env, 3)
    lock = hold_write_lock(env.db)
    try:
        t = time.monotonic()
        p = env.scan(T0, check=False, timeout=60)
        took = time.monotonic() - t
    finally:
        lock.rollback()
        lock.close()
    assert p.returncode in (0, EX_TEMPFAIL), (p.returncode, p.stderr)
    assert took < 20, took
    if p.returncode == EX_TEMPFAIL:
        assert "lock" in p.stderr.lower(), p.stderr
    assert not env.smtp.messages
    assert env.sql("SELECT count(*) FROM registrations WHERE status = 'new'")[0][0] == 3
    env.scan(iso(epoch(T0) + 60))
    assert_none_sending(env)
    rows = outbox(env)
    assert sorted(r["recipient"] for r in rows.values()) == addrs
    assert all(r["status"] == "sent" for r in rows.values()), rows
    assert_each_once(captured_ids(env), [r["message_id"] for r in rows.values()])


class SlowCapture(Recorder):
    async def handle_DATA(self, server, session, envelope):
        import asyncio
        await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


@with_env(smtp_settings={"max_per_minute": 1000000})
def test_database_locked_during_delivery(env):
    """A writer holds the database for longer than the busy timeout while messages are in
    flight: no crash, nothing lost, at most the messages in flight sent twice."""
    addrs = book(env, 60)
    with Server(SlowCapture()) as srv:
        point(env, srv.port)
        d = subprocess.Popen([os.path.join(BUILD, "meccd"), "-c", env.conf, "--once",
                              "--now", T0], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        try:
            end = time.monotonic() + 20
            while len(srv.handler.messages) < 5:
                assert time.monotonic() < end and d.poll() is None, "delivery never started"
                time.sleep(0.01)
            lock = hold_write_lock(env.db)
            try:
                time.sleep(7)
                got_during_lock = len(srv.handler.messages)
            finally:
                lock.rollback()
                lock.close()
            rc = d.wait(60)
        finally:
            if d.poll() is None:
                d.kill()
                d.wait(5)
            err = d.stderr.read()
            d.stderr.close()
        assert rc in (0, EX_TEMPFAIL), (rc, err)
        # past any backoff: what was interrupted goes now
        for minutes in (2, 4, 8):
            env.scan(iso(epoch(T0) + 60 * minutes))
            if not env.sql("SELECT count(*) FROM outbox WHERE status != 'sent'")[0][0]:
                break
        assert_none_sending(env)
        rows = outbox(env)
        assert sorted(r["recipient"] for r in rows.values()) == sorted(addrs)
        assert all(r["status"] == "sent" for r in rows.values()), rows
        ids = [str(m["msg"]["Message-ID"]).strip() for m in srv.handler.messages]
        assert set(ids) == {r["message_id"] for r in rows.values()}
        doubled = len(ids) - len(set(ids))
        print("# received before the lock was released: %d; duplicates: %d"
              % (got_during_lock, doubled), flush=True)
        assert doubled <= 2, doubled


@with_env(scan_interval=1, smtp_settings={"max_per_minute": 1000000, "timeout": 30})
def test_database_locked_under_the_daemon(env):
    """The same with the daemon on the real clock: once the lock is gone, every email is
    recorded as sent, none is left marked as in flight, none goes twice."""
    start = time.strftime("%Y-%m-%d %H:%M", time.localtime(time.time() + 30 * 86400))
    end = time.strftime("%Y-%m-%d %H:%M", time.localtime(time.time() + 30 * 86400 + 5400))
    sid = env.add_session("MECC conversations", start, end, 50, None)
    for i in range(40):
        env.register(sid, "Volunteer %d" % i, "d%d@example.org" % i, None)
    with Server(SlowCapture()) as srv:
        point(env, srv.port)
        d = subprocess.Popen([os.path.join(BUILD, "meccd"), "-c", env.conf],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            end_t = time.monotonic() + 20
            while len(srv.handler.messages) < 5:
                assert time.monotonic() < end_t and d.poll() is None, "delivery never started"
                time.sleep(0.01)
            lock = hold_write_lock(env.db)
            try:
                time.sleep(7)
            finally:
                lock.rollback()
                lock.close()
            end_t = time.monotonic() + 40
            while env.sql("SELECT count(*) FROM outbox WHERE status != 'sent'")[0][0]:
                if time.monotonic() > end_t:
                    break
                assert d.poll() is None, "the daemon died"
                time.sleep(0.2)
            rows = outbox(env)
            stuck = env.sql("SELECT id FROM outbox WHERE sending != 0")
        finally:
            d.send_signal(signal.SIGTERM)
            try:
                d.wait(15)
            finally:
                if d.poll() is None:
                    d.kill()
                    d.wait(5)
                d.stderr.close()
        assert d.returncode == 0, d.returncode
        assert not stuck, "rows left marked as in flight: %r" % stuck
        assert len(rows) == 40 and all(r["status"] == "sent" for r in rows.values()), \
            [r for r in rows.values() if r["status"] != "sent"]
        assert_each_once([str(m["msg"]["Message-ID"]).strip() for m in srv.handler.messages],
                         [r["message_id"] for r in rows.values()])


def test_corrupt_database(env):
    bad = os.path.join(env.dir, "corrupt.db")
    with open(bad, "wb") as f:
        f.write(os.urandom(64 * 1024))
    env.settings["database"] = bad
    env.write_conf()
    for args in (["--once"], []):
        p = env.run("meccd", *args, now=T0, check=False, timeout=30)
        assert p.returncode == EX_UNAVAILABLE, (args, p.returncode, p.stderr)
        assert bad in p.stderr, p.stderr
        assert "not a database" in p.stderr or "corrupt" in p.stderr.lower(), p.stderr
        assert "Sanitizer" not in p.stderr, p.stderr
