"""The edges of SPEC 14 and 15 as an admin sees them: the hub's export imported by hand
(idempotent by ref, a cancellation frees the seat), sessions known by the hub's id, an
address the relay refuses at RCPT (unreachable, its place kept, no more email), the address
put right (what is owed goes again), and a journal that names nobody."""
import os
import re

from harness import with_env
from mime_check import check_message

T0 = "2026-08-01 09:00"
LOG = {"MECCD_LOG": "stderr"}


def write(env, name, text):
    path = os.path.join(env.dir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def regs(env, *args):
    return {r["email"]: r for r in env.ctl_json("registrations", "list", *args)}


def test_session_ref(env):
    sid = env.add_session("S", "2026-09-22 10:30", "2026-09-22 12:00", 10, T0, "--ref", "EV-1")
    assert env.sql("SELECT ref FROM sessions WHERE id = ?", sid) == [("EV-1",)]
    other = env.add_session("T", "2026-09-23 10:30", "2026-09-23 12:00", 10, T0)
    p = env.ctl("session", "edit", other, "--ref", "EV-1", check=False)
    assert p.returncode == 65 and "session %s already has the ref \"EV-1\"" % sid in p.stderr, p.stderr
    p = env.ctl("session", "add", "--title", "U", "--start", "2026-09-24 10:30", "--end", "2026-09-24 12:00",
                "--capacity", "5", "--ref", "EV-1", now=T0, check=False)
    assert p.returncode == 65, p.stderr
    assert len(env.ctl_json("session", "list")) == 2  # nothing was added
    env.ctl("session", "edit", other, "--ref", "EV-2")
    assert env.sql("SELECT ref FROM sessions WHERE id = ?", other) == [("EV-2",)]


def test_hub_export_imported_twice_changes_nothing(env):
    sid = env.add_session("S", "2026-09-22 10:30", "2026-09-22 12:00", 1, T0, "--ref", "EV-1")
    export = ("ref,session,name,email,status,organisation,registered_at\n"
              "B1,EV-1,Ann,ann@example.org,Confirmed,Age UK,2026-08-01 08:00\n"
              "B2,EV-1,Bob,bob@example.org,,,2026-08-01 08:05\n")
    path = write(env, "hub.csv", export)
    p = env.ctl("import", "registrations", path, now=T0)
    assert "2 registrations imported" in p.stdout, p.stdout
    p = env.ctl("import", "registrations", path, now=T0)
    assert "0 registrations imported" in p.stdout, p.stdout
    env.scan("2026-08-01 09:05")
    r = regs(env)
    assert (r["ann@example.org"]["status"], r["bob@example.org"]["status"]) == ("booked", "waitlisted"), r
    assert env.sql("SELECT organisation FROM registrations WHERE ref = 'B1'") == [("Age UK",)]

    # Ann cancels at the hub: the next export says so, and Bob gets her place
    path = write(env, "hub2.csv", export.replace("Confirmed", "cancelled"))
    p = env.ctl("import", "registrations", path, now="2026-08-02 09:00")
    assert "1 registration imported" in p.stdout, p.stdout
    env.scan("2026-08-02 09:05")
    r = regs(env)
    assert (r["ann@example.org"]["status"], r["bob@example.org"]["status"]) == ("cancelled", "booked"), r
    assert "promoted" in env.kinds("bob@example.org")

    # a session named by a ref nobody has: nothing is imported
    path = write(env, "bad.csv", "ref,session,name,email\nB3,EV-1,Cy,cy@example.org\nB4,EV-9,Di,di@example.org\n")
    p = env.ctl("import", "registrations", path, check=False)
    assert p.returncode == 65 and re.search(r"bad\.csv:3: no session has the ref \"EV-9\"", p.stderr), p.stderr
    assert len(regs(env)) == 2


def test_refused_at_rcpt_is_unreachable_until_put_right(env):
    sid = env.add_session("S", "2026-09-22 10:30", "2026-09-22 12:00", 5, T0)
    ann = env.register(sid, "Ann", "ann@exmaple.org", "2026-08-01 08:00")
    env.smtp.capture.replies["ann@exmaple.org"] = "550 5.1.1 <ann@exmaple.org>: Recipient address rejected"
    p = env.scan(T0, env=LOG)
    # the journal names nobody: the reply is logged with the address taken out
    assert "exmaple" not in p.stderr and "Ann" not in p.stderr, p.stderr
    assert "550 5.1.1 <[address]>: Recipient address rejected" in p.stderr, p.stderr
    row = env.ctl_json("registrations", "list", "--unreachable")
    assert [(r["id"], r["status"], r["unreachable"]) for r in row] == [(ann, "booked", True)], row
    assert row[0]["unreachable_reason"] == "550 5.1.1 <ann@exmaple.org>: Recipient address rejected"
    # the outbox row keeps the reply whole
    assert env.sql("SELECT last_error FROM outbox WHERE kind = 'confirmation'") == [
        ("550 5.1.1 <ann@exmaple.org>: Recipient address rejected",)]
    status = env.ctl_json("status", now=T0, check=False)
    assert status["unreachable"] == 1, status
    text = env.ctl("status", now=T0, check=False).stdout
    assert "unreachable:       1 registration of sessions to come" in text, text

    # nothing more goes to that address; a later email is failed "address bounced"
    env.scan("2026-09-12 10:31", env=LOG)
    rows = env.sql("SELECT kind, status, last_error FROM outbox WHERE registration_id = ? AND kind <> 'confirmation'", ann)
    assert rows and all(s == "failed" and e == "address bounced" for _, s, e in rows), rows
    assert env.mails(to="ann@exmaple.org") == []

    # put right: the confirmation goes again to the new address, as a new occasion
    p = env.ctl("registration", "edit", ann, "--email", "ann@example.org", now="2026-09-12 11:00")
    assert "queued again" in p.stdout, p.stdout
    assert env.ctl_json("registrations", "list", "--unreachable") == []
    r = regs(env)["ann@example.org"]
    assert (r["unreachable"], r["unreachable_reason"], r["status"]) == (False, None, "booked"), r
    env.scan("2026-09-12 11:01")
    assert "confirmation" in env.kinds("ann@example.org")
    assert env.ctl_json("status", now="2026-09-12 11:01", check=False)["unreachable"] == 0


def test_registration_edit_refuses_bad_input(env):
    sid = env.add_session("S", "2026-09-22 10:30", "2026-09-22 12:00", 5, T0)
    ann = env.register(sid, "Ann", "ann@example.org", "2026-08-01 08:00")
    p = env.ctl("registration", "edit", ann, "--email", "not an address", check=False)
    assert p.returncode == 65 and "not a valid email address" in p.stderr, p.stderr
    p = env.ctl("registration", "edit", "999", "--name", "X", check=False)
    assert p.returncode != 0 and "no registration 999" in p.stderr, p.stderr
    p = env.ctl("registration", "edit", ann, check=False)
    assert p.returncode == 64, p.stderr
    env.ctl("registration", "edit", ann, "--name", "Ann Smith")
    assert regs(env)["ann@example.org"]["name"] == "Ann Smith"


def text(m):
    return m["msg"].get_body(preferencelist=("plain",)).get_content()


@with_env(roster_to=["mecc-team@example.org", "hub@example.org"])
def test_coordinators_told_of_unreachable_once_a_day(env):
    sid = env.add_session("MECC Live Online Training", "2026-09-22 10:30", "2026-09-22 12:00", 5, T0)
    ann = env.register(sid, "Ann Example", "ann@exmaple.org", "2026-08-01 08:00")
    env.register(sid, "Bob Jones", "bob@example.org", "2026-08-01 08:01")
    env.smtp.capture.replies["ann@exmaple.org"] = "550 5.1.1 <ann@exmaple.org>: Recipient address rejected"
    logs = env.scan(T0, env=LOG).stderr            # the relay refuses Ann at RCPT
    assert env.mails(kind="unreachable") == []
    logs += env.scan("2026-08-01 09:10", env=LOG).stderr   # the next scan tells the coordinators
    told = env.mails(kind="unreachable")
    assert sorted(m["to"][0] for m in told) == ["hub@example.org", "mecc-team@example.org"], told
    m = told[0]
    assert not check_message(m["raw"])["errors"], check_message(m["raw"])["errors"]
    assert m["msg"]["Subject"] == "Email addresses to check for MECC bookings"
    body = text(m)
    assert "Ann Example <ann@exmaple.org> (registration %d)" % ann in body, body
    assert "Session: MECC Live Online Training, Tuesday 22 September 2026, 10:30\u201312:00 BST" in body, body
    assert "The mail server said: 550 5.1.1 <ann@exmaple.org>: Recipient address rejected" in body, body
    assert "meccctl registration edit %d --email NEW-ADDRESS" % ann in body, body
    assert "Bob" not in body and "bob@" not in body, body
    html = m["msg"].get_body(preferencelist=("html",)).get_content()
    assert "Ann Example &lt;ann@exmaple.org&gt;" in html, html
    # the journal names nobody, and says the coordinators were told
    assert "exmaple" not in logs and "Ann" not in logs and "Example" not in logs, logs
    assert "the coordinators are told of 1 unreachable registration" in logs, logs

    # Cat is refused later the same day: at most one such email a day, hers comes tomorrow
    cat = env.register(sid, "Cat Smith", "cat@exmaple.org", "2026-08-01 10:00")
    env.smtp.capture.replies["cat@exmaple.org"] = "550 5.1.1 no such user"
    env.scan("2026-08-01 10:01")
    env.scan("2026-08-01 23:00")
    assert len(env.mails(kind="unreachable")) == 2
    env.scan("2026-08-02 08:00")
    later = [m for m in env.mails(kind="unreachable") if m not in told]
    assert len(later) == 2, later
    body = text(later[0])
    assert "Cat Smith <cat@exmaple.org> (registration %d)" % cat in body, body
    assert "Ann" not in body, body                 # Ann was told of once
    env.scan("2026-08-03 08:00")
    assert len(env.mails(kind="unreachable")) == 4


@with_env(smtp_settings={"return_path": "bounces@example.org"})
def test_return_path_is_the_envelope_sender(env):
    sid = env.add_session("S", "2026-09-22 10:30", "2026-09-22 12:00", 5, T0)
    env.register(sid, "Ann", "ann@example.org", "2026-08-01 08:00")
    env.scan(T0)
    (m,) = env.mails(to="ann@example.org")
    assert m["from"] == "bounces@example.org", m["from"]        # MAIL FROM: where bounces go
    assert m["msg"]["From"] == "MECC Training <mecc@example.org>", m["msg"]["From"]

    # by default the envelope sender is the address of from; a bad one is refused
    del env.smtp_settings["return_path"]
    env.write_conf()
    env.register(sid, "Bob", "bob@example.org", "2026-08-01 09:00")
    env.scan("2026-08-01 09:01")
    (m,) = env.mails(to="bob@example.org")
    assert m["from"] == "mecc@example.org", m["from"]
    env.smtp_settings["return_path"] = "Bounces <bounces@example.org>"
    env.write_conf()
    p = env.run("meccd", "--check-config", check=False)
    assert p.returncode == 78 and "return_path" in p.stderr and "not an email address" in p.stderr, p.stderr
