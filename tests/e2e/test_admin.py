"""What an admin does with meccctl, checked the way they would see it: the ids it prints,
the JSON fields of SPEC 9, spreadsheet imports, cancelling, editing, cancelling and
closing sessions, retrying failed emails, previews, the dry run and "is it healthy?"."""
import csv
import email
import email.policy
import io
import json
import os
import re
import shlex
import subprocess

from harness import BUILD, TOP, SmtpServer, with_env

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
SESSION_FIELDS = {"id", "title", "starts_at", "ends_at", "closes_at", "capacity", "status",
                  "booked", "waitlisted", "seats_left", "join_url", "elearning_url",
                  "trainer_email"}
REG_FIELDS = {"id", "session_id", "name", "email", "status", "registered_at",
              "elearning_done_at", "unreachable", "unreachable_reason"}
OUTBOX_FIELDS = {"id", "registration_id", "session_id", "kind", "recipient", "status",
                 "attempts", "created_at", "sent_at", "next_attempt_at", "last_error",
                 "message_id"}
UPCOMING_FIELDS = {"at", "kind", "registration_id", "session_id"}


def body(m):
    return m["msg"].get_body(preferencelist=("plain",)).get_content()


def attachment(m, ctype):
    found = [p for p in m["msg"].iter_attachments() if p.get_content_type() == ctype]
    assert len(found) == 1, [p.get_content_type() for p in m["msg"].iter_attachments()]
    return found[0].get_payload(decode=True).decode()


def ics_field(cal, name):
    """A property of the VEVENT (not of the VTIMEZONE before it)."""
    event = cal.replace("\r\n ", "").split("BEGIN:VEVENT", 1)[1]
    m = re.search(r"^%s[:;]([^\r\n]*)" % name, event, re.M)
    return m.group(1) if m else None


def text_of(wire):
    """The text/plain body of a message as printed by preview."""
    msg = email.message_from_string(wire, policy=email.policy.default)
    return msg.get_body(preferencelist=("plain",)).get_content()


def write(env, name, data):
    path = os.path.join(env.dir, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def statuses(env):
    return {r["id"]: r["status"] for r in env.ctl_json("registrations", "list")}


# ---- sessions, registrations, JSON shapes ---------------------------------------------------

def test_sessions_and_registrations_json(env):
    p = env.ctl("session", "add", "--title", "MECC live session", "--start", "2026-09-22 10:30",
                "--end", "2026-09-22 12:00", "--capacity", "2", "--join-url",
                "https://meet.example.org/a", "--trainer", "trainer@example.org",
                now="2026-09-01 09:00")
    assert re.fullmatch(r"\d+\n", p.stdout), p.stdout  # the id alone
    sid = int(p.stdout)
    other = env.add_session("Autumn", "2026-10-27 10:30", "2026-10-27 12:00", 5)
    ids = [env.register(sid, n, "%s@example.org" % n.lower(), "2026-09-01 09:0%d" % i)
           for i, n in enumerate(("Ann", "Bob", "Cat"))]
    env.scan("2026-09-01 09:10")

    s = env.ctl_json("session", "show", sid)
    assert isinstance(s, dict) and SESSION_FIELDS <= set(s), s
    assert s["starts_at"] == "2026-09-22T09:30:00Z" and s["ends_at"] == "2026-09-22T11:00:00Z"
    assert s["closes_at"] == "2026-09-15T09:30:00Z"   # a week before, in local time
    assert (s["capacity"], s["booked"], s["waitlisted"], s["seats_left"]) == (2, 2, 1, 0)
    assert s["status"] == "open" and s["join_url"] == "https://meet.example.org/a"
    assert s["trainer_email"] == "trainer@example.org" and s["elearning_url"] is None
    lst = env.ctl_json("session", "list")
    assert isinstance(lst, list) and [x["id"] for x in lst] == [sid, other]
    autumn = lst[1]
    assert autumn["starts_at"] == "2026-10-27T10:30:00Z"  # GMT by then
    assert autumn["closes_at"] == "2026-10-20T09:30:00Z"  # still BST a week before
    assert autumn["join_url"] is None and autumn["trainer_email"] is None

    regs = env.ctl_json("registrations", "list")
    assert [r["id"] for r in regs] == ids
    for r in regs:
        assert set(r) >= REG_FIELDS, r
        assert ISO.match(r["registered_at"]) and r["elearning_done_at"] is None
    assert [r["status"] for r in regs] == ["booked", "booked", "waitlisted"]
    assert regs[0]["registered_at"] == "2026-09-01T08:00:00Z"
    assert env.ctl_json("registrations", "list", "--session", other) == []

    rows = env.ctl_json("outbox", "list")
    assert len(rows) == 3 and all(set(r) >= OUTBOX_FIELDS for r in rows), rows
    assert [r["kind"] for r in rows] == ["confirmation", "confirmation", "waitlisted"]
    for r in rows:
        assert r["status"] == "sent" and r["attempts"] == 1 and r["last_error"] is None
        assert r["sent_at"] == "2026-09-01T08:10:00Z" and r["next_attempt_at"] is None
        assert r["message_id"].startswith("<") and r["session_id"] == sid
    assert [r["registration_id"] for r in rows] == ids
    assert rows[0]["recipient"] == "ann@example.org"
    assert env.ctl_json("outbox", "list", "--status", "failed") == []

    # the text forms say the same in local time
    text = env.ctl("session", "show", sid).stdout
    assert "2026-09-22 10:30 BST" in text and "2 booked of 2, 1 waiting" in text, text
    assert "cat@example.org" in env.ctl("registrations", "list").stdout


def test_bad_commands_and_data(env):
    sid = env.add_session("S", "2026-09-22 10:30", "2026-09-22 12:00", 2)

    def code(*args):
        return env.ctl(*args, check=False).returncode

    assert code("frobnicate") == 64
    assert code("session", "add", "--title", "T") == 64
    assert code("session", "add", "--title", "T", "--start", "22/09/2026", "--end",
                "2026-09-22 12:00", "--capacity", "2") == 65
    assert code("session", "add", "--title", "T", "--start", "2026-09-22 12:00", "--end",
                "2026-09-22 10:30", "--capacity", "2") == 65
    assert code("session", "add", "--title", "T", "--start", "2026-09-22 10:30", "--end",
                "2026-09-22 12:00", "--capacity", "-1") == 65
    assert code("session", "show", "99") == 65
    assert code("session", "show", "x") == 64
    assert code("register", sid, "--name", "A", "--email", "a at example.org") == 65
    assert code("register", "99", "--name", "A", "--email", "a@example.org") == 65
    assert code("cancel", "99") == 65
    assert code("outbox", "list", "--status", "lost") == 64
    assert code("preview", "nonsense", "1") == 64
    assert code("upcoming", "--until", "soon") == 64
    p = env.ctl("register", sid, "--name", "Ann", "--email", "ann@example.org",
                now="2026-09-01 09:00")
    assert re.fullmatch(r"\d+\n", p.stdout), p.stdout
    assert env.ctl_json("session", "list")[0]["id"] == sid  # nothing else was added


def test_command_line_forms(env):
    """The global options may come anywhere on the line; a group alone lists its commands;
    a value that is not a time is named."""
    sid = env.add_session("S", "2026-09-22 10:30", "2026-09-22 12:00", 2)

    def ctl(*args):
        return subprocess.run([os.path.join(BUILD, "meccctl")] + [str(a) for a in args],
                              capture_output=True, text=True, timeout=60)

    want = env.ctl_json("session", "show", sid)
    for args in (["session", "show", sid, "--json", "-c", env.conf],
                 ["session", "--json", "show", sid, "--config=" + env.conf],
                 ["-c", env.conf, "session", "show", "--now", "2026-08-01 09:00", sid, "--json"]):
        p = ctl(*args)
        assert p.returncode == 0 and json.loads(p.stdout) == want, (args, p.stdout, p.stderr)
    p = ctl("status", "--json", "-c", env.conf, "--now", "2026-08-01 09:00")
    assert json.loads(p.stdout)["open_sessions"] == 1, (p.stdout, p.stderr)
    # an option's value is the option's, even when it looks like a global option
    p = ctl("register", sid, "--name", "--json", "--email", "j@example.org", "-c", env.conf)
    assert p.returncode == 0 and re.fullmatch(r"\d+\n", p.stdout), (p.stdout, p.stderr)
    assert env.ctl_json("registrations", "list")[0]["name"] == "--json"

    for group, verbs in (("session", ("add", "list", "show", "edit", "cancel", "close")),
                         ("registrations", ("list",)), ("outbox", ("list", "retry")),
                         ("import", ("registrations", "elearning"))):
        p = env.ctl(group, check=False)
        assert p.returncode == 64 and "unknown command" not in p.stderr, (group, p.stderr)
        for verb in verbs:
            assert re.search(r"^ +%s %s\b" % (group, verb), p.stderr, re.M), (group, verb, p.stderr)
        assert p.stdout == ""
    p = env.ctl("session", "frobnicate", check=False)
    assert p.returncode == 64 and 'unknown command "session frobnicate"' in p.stderr, p.stderr
    p = env.ctl("session", "add", "--help")
    assert p.stdout.strip().startswith("session add --title T"), p.stdout

    p = env.ctl("upcoming", "--until", "tomorrow", check=False)
    assert p.returncode == 64, p.returncode
    assert '--until: "tomorrow" is not a time like "2026-09-22 10:30"' in p.stderr, p.stderr


def usage_commands(env):
    """{(group, name or None): set of options} as `meccctl --help` lists the commands."""
    text = env.ctl("--help").stdout
    found = {}
    for m in re.finditer(r"^  ([a-z-]+)(?: ([a-z][a-z-]*))?(?=\s|$)(.*(?:\n {6,}\S.*)*)", text, re.M):
        found[(m.group(1), m.group(2))] = set(re.findall(r"--[a-z][a-z-]*", m.group(3)))
    assert len(found) >= 17, text
    return found


def complete(*words):
    """What bash offers for the last word after the others, with the shipped completion."""
    script = "source %s\nCOMP_WORDS=(%s)\nCOMP_CWORD=%d\n_meccctl\nprintf '%%s\\n' \"${COMPREPLY[@]}\"\n" % (
        shlex.quote(os.path.join(TOP, "contrib", "meccctl.bash-completion")),
        " ".join(shlex.quote(w) for w in ("meccctl",) + words), len(words))
    p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, PATH="/usr/bin:/bin"))
    assert p.returncode == 0, p.stderr
    return set(p.stdout.split())


def test_man_page_and_completion_know_every_command_and_option(env):
    commands = usage_commands(env)
    man = []
    with open(os.path.join(TOP, "man", "meccctl.8.in")) as f:
        for line in f:
            t = re.sub(r"\\f[BIRP]", "", line).replace("\\-", "-").replace('"', "")
            man.append(re.sub(r"^\.[A-Z]{1,2}\s+", "", t).strip())
    groups = {g for g, _ in commands}
    assert complete("") == groups, complete("")
    for (group, name), opts in sorted(commands.items(), key=str):
        words = [group] + ([name] if name else [])
        lines = [l for l in man if re.match(r"%s(\s|$)" % re.escape(" ".join(words)), l)]
        assert lines, "meccctl(8) does not describe " + " ".join(words)
        documented = set(re.findall(r"--[a-z][a-z-]*", " ".join(lines)))
        assert documented == opts, (words, "man", documented, "usage", opts)
        if name:
            assert name in complete(group, ""), (group, name, complete(group, ""))
        offered = complete(*words, "--")
        assert opts <= offered, (words, "completion", offered, "usage", opts)
    # the global options, after a command as before it
    assert {"--json", "--now", "-c"} <= complete("session", "list", "-")


# ---- CSV imports ------------------------------------------------------------------------------

def test_import_registrations_as_spreadsheets_write_them(env):
    sid = env.add_session("S", "2026-09-22 10:30", "2026-09-22 12:00", 10)
    # Excel: UTF-8 BOM, CRLF, quoted fields with commas, doubled quotes and accents
    excel = ("\ufeffsession_id,name,email,registered_at\r\n"
             '%d,"O\'Brien, Siobh\u00e1n",siobhan@example.org,2026-09-01 09:00\r\n'
             '%d,"Said ""Sid"" Ali",sid@example.org,\r\n'
             "\r\n"
             "%d,Zo\u00eb Price,zoe@example.org,2026-09-01T09:30\r\n" % (sid, sid, sid))
    p = env.ctl("import", "registrations", write(env, "excel.csv", excel.encode()),
                now="2026-09-01 10:00")
    assert "3 registrations imported" in p.stdout, p.stdout
    # LibreOffice: LF, no BOM, no registered_at column
    lo = "session_id,name,email\n%d,Tom,tom@example.org\n" % sid
    env.ctl("import", "registrations", write(env, "lo.csv", lo.encode()), now="2026-09-01 10:00")
    regs = env.ctl_json("registrations", "list")
    assert [(r["name"], r["email"]) for r in regs] == [
        ("O'Brien, Siobh\u00e1n", "siobhan@example.org"),
        ("Zo\u00eb Price", "zoe@example.org"),
        ('Said "Sid" Ali', "sid@example.org"),
        ("Tom", "tom@example.org")], regs
    assert regs[0]["registered_at"] == "2026-09-01T08:00:00Z"
    assert regs[2]["registered_at"] == "2026-09-01T09:00:00Z"  # empty: the import's time
    env.scan("2026-09-01 10:05")
    assert set(statuses(env).values()) == {"booked"}
    m = env.mails(to="siobhan@example.org")[0]
    assert "Dear O'Brien, Siobh\u00e1n" in body(m)


def test_import_registrations_all_or_nothing(env):
    sid = env.add_session("S", "2026-09-22 10:30", "2026-09-22 12:00", 10)
    cases = [
        ("session_id,name,email\n%d,Ann,ann@example.org\n%d,Bob,bob at example.org\n" % (sid, sid),
         r":3: .*bob at example\.org.*not a valid email address"),
        ("session_id,name,email\r\n%d,Ann,ann@example.org\r\n99,Bob,bob@example.org\r\n" % sid,
         r":3: .*no session 99"),
        ("session_id,name,email\n%d,Ann,ann@example.org\nx,Bob,bob@example.org\n" % sid,
         r":3: session_id \"x\" is not a number"),
        ("session_id,name,email\n%d,\"Ann,ann@example.org\n" % sid, r":2: "),
        ("session_id,name,email,registered_at\n%d,Ann,ann@example.org,yesterday\n" % sid,
         r":2: registered_at \"yesterday\""),
        ("session_id,name,email\n%d,Ann,ann@example.org,extra,fields\n" % sid, r":2: expected 3 fields, found 5"),
        ("sid,name,email\n%d,Ann,ann@example.org\n" % sid, r":1: the header must name the columns"),
        ("", r":1: the file is empty"),
    ]
    for i, (text, why) in enumerate(cases):
        path = write(env, "bad%d.csv" % i, text.encode())
        p = env.ctl("import", "registrations", path, check=False)
        assert p.returncode == 65, (text, p.returncode, p.stderr)
        assert re.search(re.escape(path) + why, p.stderr), (why, p.stderr)
        assert env.ctl_json("registrations", "list") == [], text
    p = env.ctl("import", "registrations", os.path.join(env.dir, "missing.csv"), check=False)
    assert p.returncode == 66 and "missing.csv" in p.stderr, p.stderr


def test_import_elearning(env):
    sid = env.add_session("S", "2026-09-22 10:30", "2026-09-22 12:00", 10)
    ann = env.register(sid, "Ann", "Ann.Smith@example.org", "2026-09-01 09:00")
    bob = env.register(sid, "Bob", "bob@example.org", "2026-09-01 09:01")
    env.scan("2026-09-01 09:05")
    bad = "email,completed_at\nann.smith@example.org,2026-09-03 10:00\nbob@example.org,last week\n"
    p = env.ctl("import", "elearning", write(env, "bad.csv", bad.encode()), check=False)
    assert p.returncode == 65 and ":3: " in p.stderr and "last week" in p.stderr, p.stderr
    assert [r["elearning_done_at"] for r in env.ctl_json("registrations", "list")] == [None, None]

    good = ("\ufeffEmail,Completed_At\r\nANN.SMITH@EXAMPLE.ORG,2026-09-03 10:00\r\n"
            "ghost@example.org,2026-09-03 11:00\r\n")
    path = write(env, "good.csv", good.encode())
    p = env.ctl("import", "elearning", path, now="2026-09-04 09:00")
    assert p.returncode == 0
    assert re.search(re.escape(path) + r":3: no registration for ghost@example\.org", p.stderr), p.stderr
    assert "1 completion recorded; 1 address not found" in p.stdout, p.stdout
    regs = {r["id"]: r for r in env.ctl_json("registrations", "list")}
    assert regs[ann]["elearning_done_at"] == "2026-09-03T09:00:00Z"
    assert regs[bob]["elearning_done_at"] is None
    # the 10-day reminder then goes to Bob only
    env.scan("2026-09-12 10:30")
    assert env.kinds("bob@example.org")[-1] == "elearning_reminder"
    assert "elearning_reminder" not in env.kinds("ann.smith@example.org")
    # elearning-done by address is case-insensitive too; unknown → 65
    env.ctl("elearning-done", "BOB@example.org", now="2026-09-13 10:00")
    assert env.ctl_json("registrations", "list")[1]["elearning_done_at"] == "2026-09-13T09:00:00Z"
    assert env.ctl("elearning-done", "nobody@example.org", check=False).returncode == 65


# ---- cancelling, editing, cancelling and closing sessions --------------------------------------

def test_cancel_registration_promotes(env):
    sid = env.add_session("S", "2026-09-22 10:30", "2026-09-22 12:00", 1)
    ann = env.register(sid, "Ann", "ann@example.org", "2026-09-01 09:00")
    bob = env.register(sid, "Bob", "bob@example.org", "2026-09-01 09:01")
    env.scan("2026-09-01 09:05")
    p = env.ctl("cancel", ann, now="2026-09-02 09:00")
    assert "cancelled" in p.stdout
    again = env.ctl("cancel", ann, check=False)
    assert again.returncode == 65 and "cancelled" in again.stderr, again.stderr
    env.scan("2026-09-02 09:05")
    assert statuses(env) == {ann: "cancelled", bob: "booked"}
    assert env.kinds("bob@example.org") == ["waitlisted", "promoted"]
    assert env.kinds("ann@example.org") == ["confirmation"]
    # the freed place is visible to the website
    avail = env.sql("SELECT booked, waitlisted, seats_left, full FROM session_availability")
    assert avail == [(1, 0, 0, 1)], avail


def test_session_add_refuses_what_would_close_at_once(env):
    """A start sooner than the booking cutoff (bookings would close at once and the roster go
    out) or in the past is most likely a typo: refused unless --force."""
    soon = ["session", "add", "--title", "Soon", "--start", "2026-09-05 10:30", "--end",
            "2026-09-05 12:00", "--capacity", "5"]
    now = "2026-09-01 09:00"
    p = env.ctl(*soon, now=now, check=False)
    assert p.returncode == 65, (p.returncode, p.stderr)
    assert "close 2026-08-29 10:30 BST, which is already past" in p.stderr, p.stderr
    assert "--force" in p.stderr and p.stdout == "", (p.stdout, p.stderr)
    past = soon[:5] + ["2026-08-31 10:30", "--end", "2026-08-31 12:00"] + soon[8:]
    p = env.ctl(*past, now=now, check=False)
    assert p.returncode == 65 and "in the past" in p.stderr, (p.returncode, p.stderr)
    assert env.sql("SELECT count(*) FROM sessions") == [(0,)]

    # its own cutoff, still to come: nothing to warn about
    p = env.ctl(*soon, "--closes", "2026-09-04 12:00", now=now)
    assert re.fullmatch(r"\d+\n", p.stdout) and p.stderr == "", (p.stdout, p.stderr)
    # forced: added, with the warning
    p = env.ctl(*soon, "--force", now=now)
    sid = int(p.stdout)
    assert "warning: " in p.stderr and "already past" in p.stderr, p.stderr
    env.scan("2026-09-01 09:05")
    assert env.ctl_json("session", "show", sid)["status"] == "closed"


def test_session_edit(env):
    sid = env.add_session("MECC live session", "2026-09-22 10:30", "2026-09-22 12:00", 1,
                          "2026-08-01 09:00", "--join-url", "https://meet.example.org/a")
    ann = env.register(sid, "Ann", "ann@example.org", "2026-09-01 09:00")
    bob = env.register(sid, "Bob", "bob@example.org", "2026-09-01 09:01")
    env.scan("2026-09-01 09:05")
    env.ctl("elearning-done", ann, now="2026-09-02 09:00")
    env.scan("2026-09-20 10:30")
    first = attachment(env.mails(to="ann@example.org", kind="joining_link")[0], "text/calendar")

    # a new title or trainer alone tells nobody
    env.ctl("session", "edit", sid, "--title", "MECC: live session", now="2026-09-20 11:00")
    env.scan("2026-09-20 11:05")
    assert env.kinds("ann@example.org") == ["confirmation", "joining_link"]

    # a raised capacity books the waiting list at the next scan... but not after the cutoff
    env.ctl("session", "edit", sid, "--capacity", "2", now="2026-09-20 11:10")
    env.scan("2026-09-20 11:15")
    assert statuses(env)[bob] == "late"
    assert "promoted" not in env.kinds("bob@example.org")

    # the start moves: Ann hears once, with the new details and an updated invitation
    p = env.ctl("session", "edit", sid, "--start", "2026-09-22 14:00", "--end", "2026-09-22 15:30",
                "--join-url", "https://meet.example.org/b", now="2026-09-20 12:00")
    assert "told at the next scan" in p.stdout, p.stdout
    env.scan("2026-09-20 12:05")
    env.scan("2026-09-20 13:05")
    changed = env.mails(to="ann@example.org", kind="session_changed")
    assert len(changed) == 1
    text = body(changed[0])
    assert "14:00\u201315:30 BST" in text and "https://meet.example.org/b" in text, text
    assert "The session now takes place on Tuesday 22 September 2026, 14:00\u201315:30 BST." in text
    assert "The joining link has changed." in text
    cal = attachment(changed[0], "text/calendar")
    assert ics_field(cal, "UID") == ics_field(first, "UID")
    assert int(ics_field(cal, "SEQUENCE")) > int(ics_field(first, "SEQUENCE"))
    assert "20260922T140000" in ics_field(cal, "DTSTART")
    assert "https://meet.example.org/b" in cal.replace("\r\n ", "")
    assert env.mails(to="bob@example.org", kind="session_changed") == []
    show = env.ctl_json("session", "show", sid)
    assert show["title"] == "MECC: live session" and show["capacity"] == 2
    assert show["starts_at"] == "2026-09-22T13:00:00Z"

    assert env.ctl("session", "edit", sid, "--end", "2026-09-22 13:00", check=False).returncode == 65
    env.scan("2026-09-22 16:00")
    p = env.ctl("session", "edit", sid, "--capacity", "3", check=False)
    assert p.returncode == 65 and "done" in p.stderr


def test_session_edit_applies_every_option(env):
    """Each option that `session edit` accepts changes what `session show` says (one of them
    was once accepted and dropped). The options come from meccctl's own usage: a new option
    fails here until it has a line below."""
    env.write_conf('course "c" {\n  title = "A course"\n}\n')
    sid = env.add_session("Before", "2026-09-22 10:30", "2026-09-22 12:00", 5, "2026-08-01 09:00",
                          "--join-url", "https://meet.example.org/a", "--elearning-url",
                          "https://learn.example.org/a", "--trainer", "a@example.org")
    edits = {  # option: (value, JSON field, the field's value afterwards)
        "--title": ("After", "title", "After"),
        "--start": ("2026-09-22 09:30", "starts_at", "2026-09-22T08:30:00Z"),
        "--end": ("2026-09-22 13:00", "ends_at", "2026-09-22T12:00:00Z"),
        "--capacity": ("7", "capacity", 7),
        "--join-url": ("https://meet.example.org/b", "join_url", "https://meet.example.org/b"),
        "--elearning-url": ("https://learn.example.org/b", "elearning_url",
                            "https://learn.example.org/b"),
        "--trainer": ("b@example.org", "trainer_email", "b@example.org"),
        "--closes": ("2026-09-20 17:00", "closes_at", "2026-09-20T16:00:00Z"),
        "--course": ("c", "course", "c"),
    }
    usage = env.ctl("--help").stdout
    line = re.search(r"^ +session edit (.*(?:\n {6,}\S.*)*)", usage, re.M)
    assert line, usage
    # --ref is not in the JSON: test_edges.py checks it
    assert set(re.findall(r"--[a-z-]+", line.group(1))) == set(edits) | {"--ref"}, line.group(1)
    for opt, (value, field, want) in edits.items():
        before = env.ctl_json("session", "show", sid)
        assert before[field] != want, (opt, before)
        env.ctl("session", "edit", sid, opt, value, now="2026-08-02 09:00")
        after = env.ctl_json("session", "show", sid)
        assert after[field] == want, (opt, after)


def test_session_cancel(env):
    sid = env.add_session("MECC live session", "2026-09-22 10:30", "2026-09-22 12:00", 1)
    nxt = env.add_session("Next one", "2026-10-06 10:30", "2026-10-06 12:00", 5)
    ann = env.register(sid, "Ann", "ann@example.org", "2026-09-01 09:00")
    env.register(sid, "Bob", "bob@example.org", "2026-09-01 09:01")
    gone = env.register(sid, "Cat", "cat@example.org", "2026-09-01 09:02")
    env.scan("2026-09-01 09:05")
    env.ctl("cancel", gone, now="2026-09-01 09:30")
    p = env.ctl("session", "cancel", sid, now="2026-09-02 09:00")
    assert "cancelled" in p.stdout
    assert env.ctl("session", "cancel", sid, check=False).returncode == 65
    env.scan("2026-09-02 09:05")
    env.scan("2026-09-03 09:05")
    for who in ("ann", "bob"):
        mails = env.mails(to="%s@example.org" % who, kind="session_cancelled")
        assert len(mails) == 1, who
        cal = attachment(mails[0], "text/calendar")
        assert "METHOD:CANCEL" in cal and "STATUS:CANCELLED" in cal
        assert "Next one: Tuesday 6 October 2026" in body(mails[0])
    assert env.mails(to="cat@example.org", kind="session_cancelled") == []
    # nothing else follows for it, and it cannot be edited
    env.scan("2026-09-12 10:30")
    env.scan("2026-09-20 10:30")
    env.scan("2026-09-23 12:00")
    assert env.kinds("ann@example.org") == ["confirmation", "session_cancelled"]
    assert env.ctl("session", "edit", sid, "--capacity", "3", check=False).returncode == 65
    assert env.ctl_json("session", "show", sid)["status"] == "cancelled"
    assert statuses(env)[ann] == "booked"
    assert env.ctl_json("session", "show", nxt)["status"] == "open"


def test_session_close_early(env):
    sid = env.add_session("S", "2026-09-22 10:30", "2026-09-22 12:00", 1, "2026-08-01 09:00",
                          "--trainer", "trainer@example.org")
    env.register(sid, "Ann", "ann@example.org", "2026-09-01 09:00")
    bob = env.register(sid, "Bob", "bob@example.org", "2026-09-01 09:01")
    env.scan("2026-09-01 09:05")
    env.ctl("session", "close", sid, now="2026-09-05 10:00")
    assert env.ctl_json("session", "show", sid)["status"] == "closed"
    assert statuses(env)[bob] == "late"
    assert env.ctl("session", "close", sid, check=False).returncode == 65
    late = env.register(sid, "Cat", "cat@example.org", "2026-09-05 10:30")
    env.scan("2026-09-05 11:00")
    assert env.kinds("bob@example.org") == ["waitlisted", "not_placed"]
    assert env.kinds("trainer@example.org") == ["roster"]
    assert statuses(env)[late] == "late" and env.kinds("cat@example.org") == ["late"]
    roster = attachment(env.mails(to="trainer@example.org")[0], "text/csv")
    assert [r["name"] for r in csv.DictReader(io.StringIO(roster))] == ["Ann"]


# ---- the outbox ---------------------------------------------------------------------------------

def test_outbox_retry(env):
    sid = env.add_session("S", "2026-09-22 10:30", "2026-09-22 12:00", 5)
    env.register(sid, "Ann", "ann@example.org", "2026-09-01 09:00")
    env.register(sid, "Bob", "bob@example.org", "2026-09-01 09:01")
    env.smtp.capture.replies["ann@example.org"] = "550 5.1.1 <ann@example.org>: mailbox unavailable"
    env.smtp.capture.replies["bob@example.org"] = "550 5.2.1 mailbox disabled"
    env.scan("2026-09-01 09:05")
    failed = env.ctl_json("outbox", "list", "--status", "failed")
    assert [r["recipient"] for r in failed] == ["ann@example.org", "bob@example.org"]
    assert "mailbox unavailable" in failed[0]["last_error"], failed
    assert failed[0]["sent_at"] is None
    text = env.ctl("outbox", "list", "--status", "failed").stdout
    assert "mailbox unavailable" in text and "mailbox disabled" in text, text

    # the mailbox is fixed: retry one, and it goes at the next scan
    del env.smtp.capture.replies["ann@example.org"]
    p = env.ctl("outbox", "retry", failed[0]["id"], now="2026-09-01 10:00")
    assert "1 email queued again" in p.stdout
    assert env.ctl("outbox", "retry", failed[0]["id"], check=False).returncode == 65
    env.scan("2026-09-01 10:05")
    assert env.kinds("ann@example.org") == ["confirmation"]
    rows = {r["recipient"]: r for r in env.ctl_json("outbox", "list")}
    assert rows["ann@example.org"]["status"] == "sent"
    assert rows["ann@example.org"]["last_error"] is None
    assert rows["bob@example.org"]["status"] == "failed"

    del env.smtp.capture.replies["bob@example.org"]
    env.ctl("outbox", "retry", "--all-failed", now="2026-09-01 11:00")
    env.scan("2026-09-01 11:05")
    assert env.kinds("bob@example.org") == ["confirmation"]
    assert env.ctl_json("outbox", "list", "--status", "failed") == []
    # the same Message-ID as the first attempt: one email, not two
    assert len({str(m["msg"]["Message-ID"]) for m in env.smtp.messages
                if env.kind_of(m)[0] == "confirmation"}) == 2


# ---- preview, upcoming, status ---------------------------------------------------------------------

@with_env(reminders={"elearning": ["10d"]}, cancel_url="https://hub.example.org/cancel?t={{token}}")
def test_preview(env):
    sid = env.add_session("MECC live session", "2026-09-22 10:30", "2026-09-22 12:00", 5,
                          "2026-08-01 09:00", "--join-url", "https://meet.example.org/a",
                          "--trainer", "trainer@example.org")
    ann = env.register(sid, "Ann Smith", "ann@example.org", "2026-09-01 09:00")
    env.scan("2026-09-01 09:05")
    token = env.sql("SELECT token FROM registrations WHERE id = ?", ann)[0][0]
    before = env.sql("SELECT count(*) FROM outbox")

    p = env.ctl("preview", "confirmation", ann, now="2026-09-01 09:10")
    head = p.stdout.partition("\r\n\r\n")[0]
    for h in ("Date:", "From: MECC Training <mecc@example.org>", "To: Ann Smith <ann@example.org>",
              "Subject: Your place is booked", "Message-ID:", "MIME-Version: 1.0"):
        assert h in head, head
    # the same Message-ID as the email that was sent
    sent = env.mails(to="ann@example.org")[0]
    assert str(sent["msg"]["Message-ID"]) in head
    assert "https://hub.example.org/cancel?t=" + token in text_of(p.stdout)

    p = env.ctl("preview", "elearning_reminder", ann, now="2026-09-12 10:30")
    assert "is in 10 days" in text_of(p.stdout), p.stdout
    p = env.ctl("preview", "joining_link", ann, now="2026-09-20 10:30")
    assert "text/calendar" in p.stdout and "https://meet.example.org/a" in p.stdout
    p = env.ctl("preview", "roster", ann, now="2026-09-15 10:30")
    assert "To: trainer@example.org" in p.stdout and "text/csv" in p.stdout, p.stdout[:600]
    # a preview sends and records nothing
    assert env.sql("SELECT count(*) FROM outbox") == before
    assert len(env.smtp.messages) == 1
    assert env.ctl("preview", "confirmation", 99, check=False).returncode == 65


def test_upcoming(env):
    sid = env.add_session("S", "2026-09-22 10:30", "2026-09-22 12:00", 1, "2026-08-01 09:00",
                          "--trainer", "trainer@example.org")
    ann = env.register(sid, "Ann", "ann@example.org", "2026-09-01 09:00")
    bob = env.register(sid, "Bob", "bob@example.org", "2026-09-01 09:01")
    items = env.ctl_json("upcoming", "--until", "2026-09-16 00:00", now="2026-09-01 09:05")
    assert all(set(i) == UPCOMING_FIELDS for i in items), items
    got = [(i["at"], i["kind"], i["registration_id"], i["session_id"]) for i in items]
    assert got == [
        ("2026-09-01T08:05:00Z", "confirmation", ann, sid),
        ("2026-09-01T08:05:00Z", "waitlisted", bob, sid),
        ("2026-09-12T09:30:00Z", "elearning_reminder", ann, sid),
        ("2026-09-15T09:30:00Z", "not_placed", bob, sid),
        ("2026-09-15T09:30:00Z", "roster", None, sid),
    ], got
    # a dry run: nothing changed, nothing sent
    assert env.sql("SELECT count(*) FROM outbox")[0][0] == 0
    assert set(statuses(env).values()) == {"new"}
    assert env.smtp.messages == []
    text = env.ctl("upcoming", "--until", "2026-09-24 00:00", now="2026-09-01 09:05").stdout
    assert re.search(r"2026-09-20 10:30 BST\s+joining_link\s+%d\s+%d" % (ann, sid), text), text
    assert re.search(r"2026-09-23 12:00 BST\s+follow_up\s+%d" % ann, text), text
    # the default window is two weeks
    default = env.ctl_json("upcoming", now="2026-09-01 09:05")
    assert [i["kind"] for i in default] == ["confirmation", "waitlisted", "elearning_reminder"]

    # with the relay down, what is queued is listed now; a cancelled booking's email is not
    port = env.smtp.port
    env.smtp.stop()
    env.scan("2026-09-01 09:05")
    env.ctl("cancel", ann, now="2026-09-01 09:30")
    items = env.ctl_json("upcoming", "--until", "2026-09-02 00:00", now="2026-09-01 10:00")
    # (Bob's queued "waitlisted" is no longer true once he is promoted: dropped too)
    assert [(i["at"], i["kind"]) for i in items] == [("2026-09-01T09:00:00Z", "promoted")], items
    env.smtp = SmtpServer(port=port).start()
    env.scan("2026-09-01 10:00")
    assert [env.kind_of(m)[0] for m in env.smtp.messages] == ["promoted"]
    assert env.ctl("upcoming", "--until", "2026-09-02 00:00", now="2026-09-01 10:01").stdout \
        .strip().endswith("(nothing due)")


def test_status_answers_is_it_healthy(env):
    """The verdict is in the text, the JSON and the exit status: 0 healthy, 1 needs
    attention, 69 cannot tell."""
    def status(now):
        p = env.ctl("--json", "status", now=now, check=False)
        assert p.returncode in (0, 1), (p.returncode, p.stderr)
        st = json.loads(p.stdout)
        assert p.returncode == (0 if st["healthy"] else 1), (p.returncode, st)
        return st

    def text(now):
        p = env.ctl("status", now=now, check=False)
        assert p.returncode in (0, 1), (p.returncode, p.stderr)
        assert p.stdout.startswith("health:            OK" if p.returncode == 0 else
                                   "health:            needs attention"), p.stdout
        return p.stdout

    sid = env.add_session("S", "2026-09-22 10:30", "2026-09-22 12:00", 3)
    st = status("2026-09-01 09:00")
    assert st["healthy"] is False and st["last_scan_at"] is None
    assert "never scanned" in text("2026-09-01 09:00")

    env.register(sid, "Ann", "ann@example.org", "2026-09-01 09:00")
    env.scan("2026-09-01 09:05")
    st = status("2026-09-01 09:06")
    assert st == {"healthy": True, "open_sessions": 1, "seats_left": 2,
                  "unprocessed_registrations": 0, "queued": 0, "overdue": 0, "failed": 0,
                  "held_back": 0, "last_scan_at": "2026-09-01T08:05:00Z", "unreachable": 0,
                  "relay_problem": None, "relay_problem_at": None, "stuck_registrations": 0,
                  "held_sessions": 0, "invalid_registrations": 0, "database_problem": None,
                  "sources": []}, st
    out = text("2026-09-01 09:06")
    assert "1 (2 places left)" in out and "0 queued, 0 failed" in out

    # meccd stopped scanning an hour ago
    assert status("2026-09-01 10:06")["healthy"] is False
    assert "no scan for 61 minutes" in text("2026-09-01 10:06")

    # the relay has been down for over an hour: scans run, emails wait
    port = env.smtp.port
    env.smtp.stop()
    env.register(sid, "Bob", "bob@example.org", "2026-09-01 11:00")
    env.scan("2026-09-01 11:05")
    assert status("2026-09-01 11:06")["healthy"] is True
    env.scan("2026-09-01 12:10")
    st = status("2026-09-01 12:11")
    assert (st["healthy"], st["queued"], st["overdue"]) == (False, 1, 1), st
    assert "mail relay" in text("2026-09-01 12:11")
    env.smtp = SmtpServer(port=port).start()

    # a refused email needs someone to look at it
    env.smtp.capture.replies["cat@example.org"] = "550 5.1.1 no such user"
    env.register(sid, "Cat", "cat@example.org", "2026-09-01 12:30")
    env.scan("2026-09-01 12:35")
    st = status("2026-09-01 12:36")
    assert (st["healthy"], st["queued"], st["overdue"], st["failed"]) == (False, 0, 0, 1), st
    out = text("2026-09-01 12:36")
    assert "1 email failed" in out and "outbox list --status failed" in out, out

    # a database that cannot be read: no verdict
    with open(env.db, "wb") as f:
        f.write(b"this is not a database\n" * 200)
    for args in (["status"], ["--json", "status"]):
        p = env.ctl(*args, now="2026-09-01 12:36", check=False)
        assert p.returncode == 69 and p.stdout == "", (args, p.returncode, p.stdout)
        assert env.db in p.stderr, p.stderr
