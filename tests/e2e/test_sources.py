"""SPEC 15, the hub as meccd fetches it: a real HTTP server on loopback that answers with
ETag and Last-Modified, 304 to a matching If-None-Match, 500 and garbage; a file:// source;
the daemon fetching on its own every interval. Bookings apply once, a cancelled row cancels,
a bad row is skipped by its line number, a failed fetch changes nothing, and `meccctl status`
shows what each source last gave. The journal names nobody."""
import http.server
import json
import os
import subprocess
import threading
import time

from harness import BUILD

T0 = "2026-08-01 09:00"
LOG = {"MECCD_LOG": "stderr"}
HEADER = "Booking ref,Event ID,Name,Email,Status,Booked on,Organisation,Notes\n"
ROWS = ("B1,EV-1,Ann Example,ann@example.org,Confirmed,2026-08-01 08:00,Age UK,\n"
        "B2,EV-1,Bob Example,bob@example.org,Confirmed,2026-08-01 08:05,,vegetarian\n"
        "B3,EV-1,Cat Example,not-an-address,Confirmed,2026-08-01 08:06,,\n"
        "B4,EV-9,Dan Example,dan@example.org,Confirmed,2026-08-01 08:07,,\n")
PEOPLE = ("ann@example.org", "bob@example.org", "dan@example.org", "not-an-address",
          "Ann Example", "Bob Example", "Cat Example", "Dan Example")


def source_conf(url, interval=600):
    return ('source "hub" {\n'
            '  url = "%s"\n'
            '  interval = %d\n'
            '  columns { ref = "Booking ref"  session = "Event ID"  name = "Name"  email = "Email"\n'
            '            status = "Status"  registered_at = "Booked on"  organisation = "Organisation" }\n'
            '  cancelled = {"Cancelled", "Refunded"}\n'
            '}\n' % (url, interval))


class Hub:
    """The hub's export over HTTP: mode "ok" (with ETag, Last-Modified and 304), "500" or
    "garbage". Each request's conditional headers are kept."""

    def __init__(self):
        self.body = HEADER + ROWS
        self.etag = '"v1"'
        self.mode = "ok"
        self.requests = []
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                hub.requests.append({"if_none_match": self.headers.get("If-None-Match"),
                                     "if_modified_since": self.headers.get("If-Modified-Since")})
                if hub.mode == "500":
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = (hub.body if hub.mode == "ok" else
                        "<html><body><h1>Maintenance</h1>We will be back soon.</body></html>\n")
                etag = hub.etag if hub.mode == "ok" else '"maint"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/csv" if hub.mode == "ok" else "text/html")
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", "Sat, 01 Aug 2026 07:00:00 GMT")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/bookings.csv" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def regs(env):
    return {r["email"]: r for r in env.ctl_json("registrations", "list")}


def source_row(env):
    rows = env.sql("SELECT last_good_at, applied, skipped, last_error, etag FROM sources WHERE name = 'hub'")
    return rows[0] if rows else None


def assert_names_nobody(text):
    for who in PEOPLE:
        assert who not in text, "the journal names %r:\n%s" % (who, text)


def test_http_source_conditional_idempotent_and_failures(env):
    hub = Hub()
    try:
        env.write_conf(source_conf(hub.url))
        sid = env.add_session("S", "2026-09-22 10:30", "2026-09-22 12:00", 1, T0, "--ref", "EV-1")

        p = env.scan(T0, env=LOG)
        log = p.stderr
        r = regs(env)
        assert sorted(r) == ["ann@example.org", "bob@example.org"], r
        assert (r["ann@example.org"]["status"], r["bob@example.org"]["status"]) == ("booked", "waitlisted"), r
        assert env.sql("SELECT organisation FROM registrations WHERE ref = 'B1'") == [("Age UK",)]
        good, applied, skipped, err, etag = source_row(env)
        assert (applied, skipped, err, etag) == (2, 2, None, '"v1"'), source_row(env)
        # the bad rows, by their line numbers, and quoting nobody
        assert "source hub:4:" in log and "source hub:5:" in log and "row skipped" in log, log
        assert_names_nobody(log)

        # the same export again: the server says 304 to the stored ETag, nothing changes
        p = env.scan("2026-08-01 09:10", env=LOG)
        assert hub.requests[-1]["if_none_match"] == '"v1"', hub.requests
        assert hub.requests[-1]["if_modified_since"] == "Sat, 01 Aug 2026 07:00:00 GMT", hub.requests
        assert len(regs(env)) == 2
        assert source_row(env)[1:4] == (2, 2, None)

        # a changed export without the ETag match (a new version): applied once, idempotent
        hub.etag = '"v2"'
        hub.body = HEADER + ROWS.replace("Ann Example,ann@example.org,Confirmed", "Ann Example,ann@example.org,Refunded")
        env.scan("2026-08-02 09:00", env=LOG)
        r = regs(env)
        assert (r["ann@example.org"]["status"], r["bob@example.org"]["status"]) == ("cancelled", "booked"), r
        assert source_row(env)[1:4] == (1, 2, None), source_row(env)
        assert env.sql("SELECT count(*) FROM registrations") == [(2,)]

        # the hub fails: nothing changes, the failure is recorded and shown
        before = env.sql("SELECT id, status, email FROM registrations ORDER BY id")
        good_before = source_row(env)[0]
        hub.mode = "500"
        p = env.scan("2026-08-02 10:00", env=LOG)
        assert "source hub: the server answered HTTP 500; nothing was changed" in p.stderr, p.stderr
        assert env.sql("SELECT id, status, email FROM registrations ORDER BY id") == before
        row = source_row(env)
        assert row[0] == good_before and row[3] == "the server answered HTTP 500", row

        # garbage (a maintenance page, 200): not an export, nothing changes
        hub.mode = "garbage"
        p = env.scan("2026-08-02 11:00", env=LOG)
        assert "nothing was changed" in p.stderr, p.stderr
        assert env.sql("SELECT id, status, email FROM registrations ORDER BY id") == before
        row = source_row(env)
        assert row[0] == good_before and "header" in row[3] and row[4] == '"v2"', row
        assert_names_nobody(p.stderr)

        # meccctl status: the last good fetch, its figures, and the failure since
        st = env.ctl("status", now="2026-08-02 11:05", check=False)
        assert "source hub:" in st.stdout and "2 skipped" in st.stdout and "1 row applied" in st.stdout, st.stdout
        assert "header" in st.stdout, st.stdout
        js = json.loads(env.ctl("--json", "status", now="2026-08-02 11:05", check=False).stdout)
        src = js["sources"]
        assert len(src) == 1 and src[0]["name"] == "hub", js
        assert (src[0]["applied"], src[0]["skipped"]) == (1, 2), src
        assert src[0]["last_good_at"] and "header" in src[0]["last_error"], src

        # the hub is back with the export: applied, the error cleared, still idempotent
        hub.mode = "ok"
        env.scan("2026-08-02 12:00", env=LOG)
        assert source_row(env)[3] is None
        assert env.sql("SELECT count(*) FROM registrations") == [(2,)]
        assert sid
    finally:
        hub.close()


def test_file_source_applies_once(env):
    path = os.path.join(env.dir, "export.csv")
    with open(path, "w") as f:
        f.write(HEADER + ROWS)
    env.write_conf(source_conf("file://" + path))
    env.add_session("S", "2026-09-22 10:30", "2026-09-22 12:00", 5, T0, "--ref", "EV-1")
    env.scan(T0, env=LOG)
    assert sorted(regs(env)) == ["ann@example.org", "bob@example.org"]
    assert source_row(env)[1:4] == (2, 2, None)
    # the same file again (no ETag for a file): applied again, and it changes nothing
    env.scan("2026-08-01 09:10", env=LOG)
    assert env.sql("SELECT count(*) FROM registrations") == [(2,)]
    assert source_row(env)[1:4] == (0, 2, None)
    # a file that went away: a failed fetch, nothing changes
    os.unlink(path)
    p = env.scan("2026-08-01 09:20", env=LOG)
    assert "source hub:" in p.stderr and "nothing was changed" in p.stderr, p.stderr
    assert env.sql("SELECT count(*) FROM registrations") == [(2,)]
    assert source_row(env)[3], source_row(env)


def test_source_config_is_checked(env):
    for bad, what in (('url = "ftp://hub.example.org/x.csv"', "must be an https://"),
                      ('url = "https://user:secret@hub.example.org/x.csv"', "must not hold a user or password"),
                      ('url = "https://hub.example.org/x.csv"\n  interval = 0', "must be a positive number"),
                      ('url = "https://hub.example.org/x.csv"\n  columns { email = "" }', "must not be empty"),
                      ('interval = 60', "option url must be set")):
        env.write_conf('source "hub" {\n  %s\n}\n' % bad)
        p = env.run("meccd", "--check-config", check=False, env=LOG)
        assert p.returncode == 78 and what in p.stderr, (bad, p.returncode, p.stderr)
        assert "meccd.conf:" in p.stderr, p.stderr
    # the password never in the config: a file others can read is refused
    pw = os.path.join(env.dir, "hub-password")
    with open(pw, "w") as f:
        f.write("secret\n")
    os.chmod(pw, 0o644)
    env.write_conf('source "hub" {\n  url = "https://hub.example.org/x.csv"\n  username = "mecc"\n'
                   '  password_file = "%s"\n}\n' % pw)
    p = env.run("meccd", "--check-config", check=False, env=LOG)
    assert p.returncode == 78 and "mode 0644" in p.stderr and "secret" not in p.stderr, p.stderr
    os.chmod(pw, 0o600)
    assert env.run("meccd", "--check-config", check=False, env=LOG).returncode == 0


def test_daemon_fetches_every_interval(env):
    hub = Hub()
    proc = None
    try:
        env.write_conf(source_conf(hub.url, interval=1))
        env.add_session("S", "2026-09-22 10:30", "2026-09-22 12:00", 5, T0, "--ref", "EV-1")
        e = dict(os.environ, **LOG)
        e.pop("NOTIFY_SOCKET", None)
        err = open(os.path.join(env.dir, "meccd.err"), "w")
        proc = subprocess.Popen([os.path.join(BUILD, "meccd"), "-c", env.conf], stderr=err, env=e)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(hub.requests) < 3:
            time.sleep(0.1)
        assert len(hub.requests) >= 3, hub.requests
        # the later fetches were conditional: the export was applied once
        assert hub.requests[-1]["if_none_match"] == '"v1"', hub.requests
        assert env.sql("SELECT count(*) FROM registrations") == [(2,)]
        assert source_row(env)[1:4] == (2, 2, None)
    finally:
        hub.close()
        if proc:
            proc.terminate()
            proc.wait(timeout=20)
    with open(os.path.join(env.dir, "meccd.err")) as f:
        assert_names_nobody(f.read())
