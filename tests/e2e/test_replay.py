"""The Oxfordshire pilot, replayed hour by hour against the real binaries and a real SMTP
server, with every email of eleven weeks checked against a table built from the rules.

Five sessions: the pilot pattern (10:30-12:00 on Tue 22, Wed 23 and Thu 24 September 2026
and a follow-on two weeks later, 6 October) and an autumn session on Tue 27 October, in the
week after the clocks go back (Sun 25 October). Day 1 fills and keeps a waiting list (a
cancellation and a raised capacity promote from it, the rest are not placed at the cutoff),
day 2 is cancelled, day 3 is moved to the afternoon after its people were emailed, and the
follow-on gets a new joining link after the links went out. Twenty-five registrations
arrive over time: early, late, duplicate, with a bad address, cancelling, completing the
e-learning by id, by address, by CSV import or never (require_elearning = true), and the
mail server is down for four hours on the morning the day-1 joining links are due.

`meccd --once --now T` runs at every whole hour (UTC) from 1 September to 16 November,
about 1,830 runs, each followed by a look at what the capture server received during it.
Admin actions and registrations happen between scans, at their own --now. The expected
table says, for each email, the moment the rule makes it due; an email is expected in the
first scan at or after that moment while the server is up. `meccctl upcoming` is run at the
start of every quiet stretch (no admin action, registration or outage before the next
event) and must list exactly what the scans of that stretch then send.

After the replay, shorter tests show what it cannot by itself: each kind of queued email
that stops being true while the relay is down, and the last e-learning reminder giving way
to the joining link.
"""
import collections
import csv
import datetime
import io
import os
import re
from zoneinfo import ZoneInfo

from harness import SmtpServer, with_env

LONDON = ZoneInfo("Europe/London")
UTC = datetime.timezone.utc
HOUR = datetime.timedelta(hours=1)
FIRST_SCAN = datetime.datetime(2026, 9, 1, 8, 0, tzinfo=UTC)    # 09:00 BST
LAST_SCAN = datetime.datetime(2026, 11, 16, 13, 0, tzinfo=UTC)  # 13:00 GMT
FEEDBACK = "https://forms.example.org/mecc-feedback"
CANCEL = "https://hub.example.org/cancel?t={{token}}"
SIGNPOST = "https://livewell.oxfordshire.gov.uk/"
TEAM = "mecc-team@example.org"
KIM = "trainer.kim@example.org"
LEE = "trainer.lee@example.org"


# ---- time: local wall clock in the configured zone, calendar days --------------------------

def local(s):
    """'2026-09-22 10:30' in Europe/London, as an aware datetime."""
    return datetime.datetime.strptime(s, "%Y-%m-%d %H:%M").replace(tzinfo=LONDON)


def shift_days(t, days):
    """Whole days are calendar days: the same wall-clock time, days later (or earlier)."""
    naive = t.astimezone(LONDON).replace(tzinfo=None) + datetime.timedelta(days=days)
    return naive.replace(tzinfo=LONDON)


def zulu(t):
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def iso(t):
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def scan_times():
    t = FIRST_SCAN
    while t <= LAST_SCAN:
        yield t
        t += HOUR


# ---- the sessions and the people ------------------------------------------------------------

class Session:
    def __init__(self, key, title, start, end, capacity, trainer=None, join=None):
        self.key, self.title, self.capacity = key, title, capacity
        self.start, self.end = local(start), local(end)
        self.trainer, self.join = trainer, join
        self.id = None

    def before(self, days):
        return shift_days(self.start, -days)

    def after_end(self, days):
        return shift_days(self.end, days)

    @property
    def cutoff(self):
        return self.before(7)


SESSIONS = [
    Session("S1", "MECC pilot: day 1", "2026-09-22 10:30", "2026-09-22 12:00", 4, KIM,
            "https://meet.example.org/mecc-day1"),
    Session("S2", "MECC pilot: day 2", "2026-09-23 10:30", "2026-09-23 12:00", 2, None,
            "https://meet.example.org/mecc-day2"),
    Session("S3", "MECC pilot: day 3", "2026-09-24 10:30", "2026-09-24 12:00", 6, LEE,
            "https://meet.example.org/mecc-day3"),
    Session("S4", "MECC pilot: follow-on", "2026-10-06 10:30", "2026-10-06 12:00", 6, KIM,
            "https://meet.example.org/mecc-follow-on"),
    Session("S5", "MECC autumn session", "2026-10-27 10:30", "2026-10-27 12:00", 6, None,
            "https://meet.example.org/mecc-autumn"),
]
S = {s.key: s for s in SESSIONS}
S3_MOVED = ("2026-09-24 13:30", "2026-09-24 15:00")
S4_NEW_LINK = "https://meet.example.org/mecc-follow-on-v2"

# key: (session, name, address, registered at)
PEOPLE = {
    "amara": ("S1", "Amara Okafor", "amara.okafor@example.org", "2026-09-02 09:40"),
    "iris": ("S2", "Iris Novak", "iris.novak@example.org", "2026-09-02 14:00"),
    "ben": ("S1", "Ben Hughes", "ben.hughes@example.org", "2026-09-03 11:15"),
    "leo": ("S3", "Leo Martin", "leo.martin@example.org", "2026-09-03 13:00"),
    "jack": ("S2", "Jack Reid", "jack.reid@example.org", "2026-09-04 10:30"),
    "chloe": ("S1", "Chloe Patel", "chloe.patel@example.org", "2026-09-04 16:20"),
    "dan": ("S1", "Dan Murphy", "dan.murphy@example.org", "2026-09-05 08:05"),
    "wendy": ("S2", "Wendy Clarke", "wendy.clarke@example.org", "2026-09-06 10:00"),
    "ed": ("S1", "Ed Walsh", "ed.walsh@example.org", "2026-09-06 19:30"),
    "farah": ("S1", "Farah Khan", "farah.khan@example.org", "2026-09-07 12:00"),
    "george": ("S1", "George Brown", "george.brown@example.org", "2026-09-08 09:10"),
    "maya": ("S3", "Maya Singh", "maya.singh@example.org", "2026-09-09 17:00"),
    "maya2": ("S3", "Maya Singh", "maya.SINGH@example.org", "2026-09-10 08:00"),
    "kate": ("S2", "Kate Lin", "kate.lin@example.org", "2026-09-11 09:05"),
    "olivia": ("S3", "Olivia Grant", "olivia.grant at example.org", "2026-09-12 10:00"),
    "noah": ("S3", "Noah Evans", "noah.evans@example.org", "2026-09-15 12:00"),
    "george5": ("S5", "George Brown", "george.brown@example.org", "2026-09-16 09:00"),
    "hana": ("S1", "Hana Kowalski", "hana.kowalski@example.org", "2026-09-16 13:45"),
    "hana4": ("S4", "Hana Kowalski", "hana.kowalski@example.org", "2026-09-16 18:00"),
    "priya": ("S4", "Priya Shah", "priya.shah@example.org", "2026-09-20 11:00"),
    "ravi": ("S4", "Ravi Gupta", "ravi.gupta@example.org", "2026-09-22 09:00"),
    "quinn": ("S4", "Quinn Adams", "quinn.adams@example.org", "2026-09-27 15:00"),
    "sam": ("S5", "Sam Taylor", "sam.taylor@example.org", "2026-10-01 10:00"),
    "tara": ("S5", "Tara Byrne", "tara.byrne@example.org", "2026-10-12 14:00"),
    "uma": ("S5", "Uma Reddy", "uma.reddy@example.org", "2026-10-21 09:00"),
}

OUTAGE = (local("2026-09-20 08:30"), local("2026-09-20 12:30"))


def server_up(t):
    return not (OUTAGE[0] <= t < OUTAGE[1])


def delivery_scan(moment):
    """The first scan at or after `moment` during which the server is up."""
    t = FIRST_SCAN
    if moment > t:
        t = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        if t < moment:
            t += HOUR
    while not server_up(t):
        t += HOUR
    return t


# ---- the expected emails, from the rules ------------------------------------------------------

def expected_table():
    """(moment, kind, occasion, who) for every email the rules call for. `who` is a
    person key, or ("roster", session key, address)."""
    out = []

    def e(kind, who, at, occasion=""):
        out.append((at, kind, occasion, who))

    def reg(who):
        return local(PEOPLE[who][3])

    s1, s2, s3, s4, s5 = (S[k] for k in ("S1", "S2", "S3", "S4", "S5"))
    s3_start, s3_end = local(S3_MOVED[0]), local(S3_MOVED[1])
    s3_before = lambda d: shift_days(s3_start, -d)  # noqa: E731

    # --- S1: four places, then five; a waiting list of three
    for who in ("amara", "ben", "chloe", "dan"):
        e("confirmation", who, reg(who))
    for who in ("ed", "farah", "george"):
        e("waitlisted", who, reg(who))
    e("promoted", "ed", local("2026-09-11 10:10"))       # Chloe cancels
    e("promoted", "farah", local("2026-09-13 15:20"))    # capacity 4 -> 5
    # 10 days before: booked by then, no e-learning (Amara did hers on 3 Sep; Farah was
    # booked after the moment)
    for who in ("ben", "dan", "ed"):
        e("elearning_reminder", who, s1.before(10), "10d")
    e("not_placed", "george", s1.cutoff)
    e("roster", ("roster", "S1", KIM), s1.cutoff)
    e("late", "hana", reg("hana"))
    e("elearning_reminder", "dan", s1.before(3), "3d")   # Ben, Ed, Farah done by then
    # 2 days before, in the outage: links for those with the e-learning, a last reminder
    # for Dan; Ben cancels in the outage, so his queued link is dropped
    for who in ("amara", "ed", "farah"):
        e("joining_link", who, s1.before(2))
    e("elearning_reminder", "dan", s1.before(2), "link-waiting")
    for who in ("amara", "dan", "ed", "farah"):
        e("follow_up", who, s1.after_end(1))

    # --- S2: two places and one waiting; cancelled before anything else was due
    for who in ("iris", "jack"):
        e("confirmation", who, reg(who))
    e("waitlisted", "wendy", reg("wendy"))
    for who in ("iris", "jack", "wendy"):
        e("session_cancelled", who, local("2026-09-10 15:05"))
    e("late", "kate", reg("kate"))

    # --- S3: moved to 13:30-15:00 on 18 Sep, after everyone booked had been emailed
    for who in ("leo", "maya", "noah"):
        e("confirmation", who, reg(who))
    e("elearning_reminder", "maya", s3.before(10), "10d")  # Leo done; Noah not yet booked
    e("roster", ("roster", "S3", LEE), s3.cutoff)
    for who in ("leo", "maya", "noah"):
        e("session_changed", who, local("2026-09-18 14:10"), "1")
    e("roster", ("roster", "S3", LEE), local("2026-09-18 14:10"))  # the trainer's list is new too
    for who in ("maya", "noah"):
        e("elearning_reminder", who, s3_before(3), "3d")
    for who in ("leo", "maya"):
        e("joining_link", who, s3_before(2))
    e("elearning_reminder", "noah", s3_before(2), "link-waiting")
    e("joining_link", "noah", local("2026-09-22 19:20"))  # his e-learning is recorded
    for who in ("leo", "maya", "noah"):
        e("follow_up", who, shift_days(s3_end, 1))

    # --- S4: the follow-on; its joining link changes after the links went out
    for who in ("hana4", "priya", "ravi", "quinn"):
        e("confirmation", who, reg(who))
    for who in ("hana4", "priya"):
        e("elearning_reminder", who, s4.before(10), "10d")
    e("roster", ("roster", "S4", KIM), s4.cutoff)
    for who in ("hana4", "quinn"):
        e("elearning_reminder", who, s4.before(3), "3d")
    for who in ("priya", "ravi", "quinn"):
        e("joining_link", who, s4.before(2))
    e("elearning_reminder", "hana4", s4.before(2), "link-waiting")
    for who in ("hana4", "priya", "ravi", "quinn"):
        e("session_changed", who, local("2026-10-05 08:10"), "1")
    e("roster", ("roster", "S4", KIM), local("2026-10-05 08:10"))
    for who in ("hana4", "priya", "quinn"):               # Ravi cancelled
        e("follow_up", who, s4.after_end(1))

    # --- S5: after the clocks go back; bookings for it close on 20 October
    for who in ("george5", "sam", "tara"):
        e("confirmation", who, reg(who))
    for who in ("george5", "tara"):
        e("elearning_reminder", who, s5.before(10), "10d")
        e("elearning_reminder", who, s5.before(3), "3d")
    e("roster", ("roster", "S5", TEAM), s5.cutoff)
    e("late", "uma", reg("uma"))
    for who in ("sam", "tara"):
        e("joining_link", who, s5.before(2))
    e("elearning_reminder", "george5", s5.before(2), "link-waiting")
    for who in ("george5", "sam", "tara"):
        e("follow_up", who, s5.after_end(1))
    return out


# ---- driving the replay -------------------------------------------------------------------------

class Replay:
    def __init__(self, env):
        self.env = env
        self.ids = {}            # person key -> registration id
        self.seen = 0            # messages of the current server already recorded
        self.sent = []           # (scan time, kind, occasion, session id, reg id, rcpt, msg)

    # admin and website actions
    def ctl(self, when, *args):
        return self.env.ctl(*args, now=when)

    def register(self, who):
        sk, name, addr, when = PEOPLE[who]
        if "@" not in addr:
            # the website writes the table itself and does not check addresses
            self.env.sql("INSERT INTO registrations(session_id, name, email, registered_at)"
                         " VALUES (?, ?, ?, ?)", S[sk].id, name, addr,
                         int(local(when).timestamp()))
            self.ids[who] = self.env.sql("SELECT max(id) FROM registrations")[0][0]
        else:
            self.ids[who] = self.env.register(S[sk].id, name, addr, now=when)

    def import_elearning(self, when, rows, name):
        path = os.path.join(self.env.dir, name)
        with open(path, "w", newline="", encoding="utf-8-sig") as f:
            w = csv.writer(f, lineterminator="\r\n")
            w.writerow(["email", "completed_at"])
            w.writerows(rows)
        return self.env.ctl("import", "elearning", path, now=when)

    def smtp_stop(self):
        self.env.smtp.stop()

    def smtp_start(self):
        self.env.smtp = SmtpServer(port=self.env.port).start()
        self.seen = 0

    # recording
    def record(self, t):
        msgs = self.env.smtp.messages
        for m in msgs[self.seen:]:
            row = self.env.sql("SELECT kind, occasion, session_id, registration_id, recipient"
                               " FROM outbox WHERE message_id = ?",
                               str(m["msg"]["Message-ID"]).strip())
            assert len(row) == 1, "a message not in the outbox: %s" % m["msg"]["Message-ID"]
            kind, occ, sid, rid, rcpt = row[0]
            assert m["to"] == [rcpt], (m["to"], rcpt)
            self.sent.append((t, kind, occ, sid, rid, rcpt, m))
        self.seen = len(msgs)


def events(r):
    """Everything that happens between scans, in time order: (time, label, action)."""
    ev = []

    def at(when, label, fn):
        ev.append((local(when), label, fn))

    for who, (_, _, _, when) in PEOPLE.items():
        at(when, "register " + who, lambda who=who: r.register(who))
    at("2026-09-03 14:00", "Amara's e-learning (by id)",
       lambda: r.ctl("2026-09-03 14:00", "elearning-done", r.ids["amara"]))
    at("2026-09-05 10:00", "Leo's e-learning (by address)",
       lambda: r.ctl("2026-09-05 10:00", "elearning-done", "leo.martin@example.org"))
    at("2026-09-10 15:05", "day 2 cancelled",
       lambda: r.ctl("2026-09-10 15:05", "session", "cancel", S["S2"].id))
    at("2026-09-11 10:10", "Chloe cancels",
       lambda: r.ctl("2026-09-11 10:10", "cancel", r.ids["chloe"]))
    at("2026-09-13 15:20", "day 1 gets a fifth place",
       lambda: r.ctl("2026-09-13 15:20", "session", "edit", S["S1"].id, "--capacity", "5"))
    at("2026-09-13 20:05", "e-learning import (Ed, and someone unknown)",
       lambda: r.import_elearning("2026-09-13 20:05", [["ED.Walsh@example.org", "2026-09-13 19:30"],
                                                       ["nobody@example.org", "2026-09-13 19:45"]],
                                  "elearning-0913.csv"))
    at("2026-09-14 09:00", "Ben's e-learning",
       lambda: r.ctl("2026-09-14 09:00", "elearning-done", r.ids["ben"]))
    at("2026-09-18 14:10", "day 3 moved to the afternoon",
       lambda: r.ctl("2026-09-18 14:10", "session", "edit", S["S3"].id,
                     "--start", S3_MOVED[0], "--end", S3_MOVED[1]))
    at("2026-09-19 08:00", "Farah's e-learning (address in capitals)",
       lambda: r.ctl("2026-09-19 08:00", "elearning-done", "FARAH.KHAN@EXAMPLE.ORG"))
    at("2026-09-20 08:30", "mail server down", r.smtp_stop)
    at("2026-09-20 11:40", "Ben cancels", lambda: r.ctl("2026-09-20 11:40", "cancel", r.ids["ben"]))
    at("2026-09-20 12:30", "mail server back", r.smtp_start)
    at("2026-09-21 15:00", "Maya's e-learning",
       lambda: r.ctl("2026-09-21 15:00", "elearning-done", r.ids["maya"]))
    at("2026-09-22 19:20", "Noah's e-learning",
       lambda: r.ctl("2026-09-22 19:20", "elearning-done", "noah.evans@example.org"))
    at("2026-09-23 12:10", "Ravi's e-learning",
       lambda: r.ctl("2026-09-23 12:10", "elearning-done", r.ids["ravi"]))
    at("2026-09-27 09:05", "e-learning import (Priya)",
       lambda: r.import_elearning("2026-09-27 09:05", [["Priya.Shah@Example.org", "2026-09-26 18:00"]],
                                  "elearning-0927.csv"))
    at("2026-10-02 09:00", "Sam's e-learning",
       lambda: r.ctl("2026-10-02 09:00", "elearning-done", r.ids["sam"]))
    at("2026-10-03 18:00", "Quinn's e-learning",
       lambda: r.ctl("2026-10-03 18:00", "elearning-done", r.ids["quinn"]))
    at("2026-10-05 08:10", "follow-on gets a new joining link",
       lambda: r.ctl("2026-10-05 08:10", "session", "edit", S["S4"].id, "--join-url", S4_NEW_LINK))
    at("2026-10-05 10:10", "Ravi cancels", lambda: r.ctl("2026-10-05 10:10", "cancel", r.ids["ravi"]))
    at("2026-10-24 20:00", "Tara's e-learning",
       lambda: r.ctl("2026-10-24 20:00", "elearning-done", "tara.byrne@example.org"))
    ev.sort(key=lambda e: e[0])
    return ev


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


@with_env(require_elearning=True, feedback_url=FEEDBACK, cancel_url=CANCEL, retention="20d",
          signpost_url=SIGNPOST)
def test_pilot_replay(env):
    r = Replay(env)
    for s in SESSIONS:
        extra = ["--join-url", s.join] + (["--trainer", s.trainer] if s.trainer else [])
        s.id = env.add_session(s.title, s.start.strftime("%Y-%m-%d %H:%M"),
                               s.end.strftime("%Y-%m-%d %H:%M"), s.capacity, "2026-09-01 09:00",
                               *extra)
    pending = events(r)
    boundaries = [t for t, _, _ in pending]
    scans = list(scan_times())
    # quiet stretches: from the first scan after an event to the last scan before the next
    stretches = {}
    for i, t in enumerate(scans):
        if i == 0 or any(scans[i - 1] < b <= t for b in boundaries):
            nxt = min([b for b in boundaries if b > t] + [LAST_SCAN + HOUR])
            last = (nxt - datetime.timedelta(seconds=1)).astimezone(UTC).replace(minute=0, second=0)
            if server_up(t):
                stretches[t] = last
    predictions = {}
    for t in scans:
        while pending and pending[0][0] <= t:
            pending.pop(0)[2]()
        if t in stretches:
            # predicted now, compared once the stretch has been replayed
            predictions[t] = (stretches[t], env.ctl_json("upcoming", "--until", zulu(stretches[t]),
                                                         now=zulu(t)))
        env.scan(zulu(t))
        if server_up(t):
            r.record(t)
        # every admitted registration has its token and its cancel link in the email
        for st, kind, occ, sid, rid, rcpt, m in r.sent:
            if st == t and kind == "confirmation":
                token = env.sql("SELECT token FROM registrations WHERE id = ?", rid)[0][0]
                assert re.fullmatch(r"[A-Za-z0-9_-]{22}", token or ""), token
                assert "https://hub.example.org/cancel?t=" + token in body(m)

    # ---- the complete set of emails, each at its time, each once ----
    keys = {v: k for k, v in r.ids.items()}
    addr = {k: v[2] for k, v in PEOPLE.items()}
    sid_key = {s.id: s.key for s in SESSIONS}
    expected = collections.Counter()
    for moment, kind, occ, who in expected_table():
        if isinstance(who, tuple):
            _, sk, rcpt = who
            expected[(zulu(delivery_scan(moment)), kind, occ, sk, None, rcpt)] += 1
        else:
            expected[(zulu(delivery_scan(moment)), kind, occ, PEOPLE[who][0], who, addr[who])] += 1
    actual = collections.Counter()
    for st, kind, occ, sid, rid, rcpt, m in r.sent:
        who = keys.get(rid) if rid else None
        actual[(zulu(st), kind, "" if kind == "roster" else occ, sid_key[sid], who, rcpt)] += 1
    missing, extra = expected - actual, actual - expected
    assert not missing and not extra, "missing:\n  %s\nunexpected:\n  %s" % (
        "\n  ".join(map(str, sorted(missing))), "\n  ".join(map(str, sorted(extra))))
    # never twice: one email per registration (or roster) per occasion
    once = collections.Counter((sid, rid, kind, occ, rcpt) for _, kind, occ, sid, rid, rcpt, _ in r.sent)
    assert max(once.values()) == 1, [k for k, n in once.items() if n > 1]

    # ---- the dry run agreed with what was sent, stretch by stretch ----
    checked = 0
    for start, (until, items) in predictions.items():
        predicted = collections.Counter()
        for it in items:
            at = datetime.datetime.strptime(it["at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            assert start <= at <= until, (zulu(start), it)
            predicted[(zulu(delivery_scan(at)), it["kind"], it["registration_id"],
                       it["session_id"])] += 1
        sent = collections.Counter()
        for st, kind, occ, sid, rid, rcpt, m in r.sent:
            if start <= st <= until:
                sent[(zulu(st), kind, rid, sid)] += 1
        assert predicted == sent, "upcoming at %s until %s:\n  predicted only: %s\n  sent only: %s" % (
            zulu(start), zulu(until), sorted(predicted - sent), sorted(sent - predicted))
        checked += 1
    assert checked >= 30, checked

    # ---- what the emails say ----
    def mail(who, kind, occ=None):
        found = [m for _, k, o, _, rid, _, m in r.sent
                 if rid == r.ids[who] and k == kind and (occ is None or o == occ)]
        assert len(found) == 1, (who, kind, occ, len(found))
        return found[0]

    # late and not_placed list the next open sessions, with places left, or say there are none
    text = body(mail("hana", "late"))
    assert "MECC pilot: day 3: Thursday 24 September 2026, 10:30\u201312:00 BST (3 places left)" in text, text
    assert "MECC pilot: follow-on: Tuesday 6 October 2026, 10:30\u201312:00 BST (6 places left)" in text, text
    assert "MECC autumn session: Tuesday 27 October 2026, 10:30\u201312:00 GMT (5 places left)" in text, text
    assert "MECC pilot: day 2" not in text and "- MECC pilot: day 1" not in text, text
    text = body(mail("kate", "late"))
    assert "MECC pilot: day 1: Tuesday 22 September 2026, 10:30\u201312:00 BST (full, waiting list open)" in text
    assert "MECC pilot: day 2" not in text.split("coming up:")[1], text
    text = body(mail("george", "not_placed"))
    assert "MECC pilot: day 3: Thursday 24 September 2026, 10:30\u201312:00 BST (4 places left)" in text, text
    text = body(mail("uma", "late"))
    assert "There are no other sessions open for booking" in text, text
    assert "MECC" not in text.split("coming up:")[1].split("To book")[0], text

    # the rosters: every booked attendee, their e-learning, the same list as CSV
    rosters = {sid_key[sid]: (st, rcpt, m) for st, k, _, sid, _, rcpt, m in r.sent if k == "roster"}
    assert sorted(rosters) == ["S1", "S3", "S4", "S5"]  # day 2 was cancelled before its cutoff
    _, _, m = rosters["S1"]
    rows = list(csv.DictReader(io.StringIO(attachment(m, "text/csv"))))
    assert sorted(x["name"] for x in rows) == ["Amara Okafor", "Ben Hughes", "Dan Murphy",
                                               "Ed Walsh", "Farah Khan"], rows
    done = {x["name"]: bool(x["elearning_completed_at"]) for x in rows}
    assert done == {"Amara Okafor": True, "Ben Hughes": True, "Dan Murphy": False,
                    "Ed Walsh": True, "Farah Khan": False}, done
    assert {x["email"] for x in rows} >= {"amara.okafor@example.org", "farah.khan@example.org"}
    text = body(m)
    assert "Dan Murphy <dan.murphy@example.org>: e-learning not completed yet" in text, text
    assert "Ed Walsh <ed.walsh@example.org>: e-learning completed 2026-09-13" in text, text
    assert "George Brown" not in text and "Chloe Patel" not in text
    rows = list(csv.DictReader(io.StringIO(attachment(rosters["S5"][2], "text/csv"))))
    assert sorted(x["name"] for x in rows) == ["George Brown", "Sam Taylor", "Tara Byrne"]

    # the day-2 cancellation: METHOD:CANCEL for booked and waiting alike
    uid = {}
    for who in ("iris", "jack", "wendy"):
        cal = attachment(mail(who, "session_cancelled"), "text/calendar")
        assert "METHOD:CANCEL" in cal and "STATUS:CANCELLED" in cal, cal
        uid[who] = ics_field(cal, "UID")
    assert len(set(uid.values())) == 1

    # day 3 moved: the new time, in the email and in a calendar update of the same event
    m = mail("maya", "session_changed")
    assert "13:30\u201315:00 BST" in body(m), body(m)
    changed = attachment(m, "text/calendar")
    assert "DTSTART;TZID=Europe/London:20260924T133000" in changed, changed
    joined = attachment(mail("maya", "joining_link"), "text/calendar")
    assert ics_field(joined, "UID") == ics_field(changed, "UID")
    assert int(ics_field(changed, "SEQUENCE")) >= 1
    # the follow-on's new link: same UID, higher SEQUENCE than the invitation it replaces
    first = attachment(mail("priya", "joining_link"), "text/calendar")
    update = attachment(mail("priya", "session_changed"), "text/calendar")
    assert ics_field(first, "UID") == ics_field(update, "UID")
    assert int(ics_field(update, "SEQUENCE")) > int(ics_field(first, "SEQUENCE"))
    assert S4_NEW_LINK in body(mail("priya", "session_changed"))
    assert S4_NEW_LINK in update.replace("\r\n ", "")
    # ... but Hana has not done the e-learning: the link stays back, in the text and the .ics
    m = mail("hana4", "session_changed")
    for link in (S4_NEW_LINK, S["S4"].join):
        assert link not in body(m) and link not in m["raw"].decode("ascii", "replace"), body(m)
    # the joining link never went to anyone without the e-learning
    for st, kind, _, sid, rid, _, m in r.sent:
        if kind == "joining_link":
            done_at = env.sql("SELECT elearning_done_at FROM registrations WHERE id = ?", rid)[0][0]
            assert done_at is not None and done_at <= int(st.timestamp()), keys[rid]
    # the last reminder says why the link has not come
    text = body(mail("dan", "elearning_reminder", "link-waiting"))
    assert "Your joining link is ready and waiting" in text, text
    assert "in 2 days" in text, text
    assert "in 10 days" in body(mail("dan", "elearning_reminder", "10d"))
    # the follow-up: thanks, signposting, feedback
    text = body(mail("tara", "follow_up"))
    assert SIGNPOST in text and FEEDBACK in text, text

    # Ben's link was queued in the outage and dropped when he cancelled, never sent
    st = env.sql("SELECT status, last_error FROM outbox WHERE registration_id = ?"
                 " AND kind = 'joining_link'", r.ids["ben"])
    assert st and st[0][0] == "expired", st

    # ---- forgotten: 20 days after each session, names, addresses, bodies gone ----
    for s in SESSIONS:
        end = local(S3_MOVED[1]) if s.key == "S3" else s.end
        gone = shift_days(end, 20)
        late_mail = [x for x in r.sent if sid_key[x[3]] == s.key and x[0] >= gone]
        assert not late_mail, late_mail
    left = env.sql("SELECT count(*) FROM registrations WHERE name != '' OR email != ''"
                   " OR token IS NOT NULL")[0][0]
    assert left == 0, env.sql("SELECT id, session_id, name, email FROM registrations"
                              " WHERE name != '' OR email != ''")
    assert env.sql("SELECT count(*) FROM outbox WHERE recipient != '' OR body IS NOT NULL")[0][0] == 0
    # counts and statuses remain
    statuses = dict(env.sql("SELECT id, status FROM registrations"))
    want = {"amara": "booked", "ben": "cancelled", "chloe": "cancelled", "dan": "booked",
            "ed": "booked", "farah": "booked", "george": "late", "hana": "late",
            "iris": "booked", "jack": "booked", "wendy": "waitlisted", "kate": "late",
            "leo": "booked", "maya": "booked", "maya2": "invalid", "olivia": "invalid",
            "noah": "booked", "george5": "booked", "hana4": "booked", "priya": "booked",
            "ravi": "cancelled", "quinn": "booked", "sam": "booked", "tara": "booked",
            "uma": "late"}
    assert {k: statuses[v] for k, v in r.ids.items()} == want
    sessions = dict(env.sql("SELECT id, status FROM sessions"))
    assert [sessions[s.id] for s in SESSIONS] == ["done", "cancelled", "done", "done", "done"]
    assert env.sql("SELECT count(*) FROM outbox WHERE status = 'sent'")[0][0] == len(r.sent)

    per_kind = collections.Counter(k for _, k, _, _, _, _, _ in r.sent)
    print("# %d scans, %d emails, %d dry runs compared" % (len(scans), len(r.sent), checked))
    for kind in sorted(per_kind):
        print("# %s: %d" % (kind, per_kind[kind]))


# ---- rules the replay cannot show by itself ------------------------------------------------------

def outbox_row(env, rid, kind):
    rows = env.sql("SELECT status, last_error FROM outbox WHERE registration_id = ? AND kind = ?",
                   rid, kind)
    assert len(rows) == 1, (rid, kind, rows)
    return rows[0]


def relay_down(env):
    env.smtp.stop()
    return env.smtp


def relay_up(env, old):
    """A new server on the same port, keeping what the old one received."""
    env.smtp = SmtpServer(port=old.port).start()
    env.smtp.capture.messages[:0] = old.messages


@with_env(retention="2d")
def test_queued_emails_that_are_no_longer_true_are_dropped(env):
    """Each email waits in the queue while the relay is down; meanwhile what it says stops
    being true. When the relay is back it is dropped as expired, never sent."""
    x = env.add_session("Morning", "2026-09-22 10:30", "2026-09-22 12:00", 1)
    y = env.add_session("Afternoon", "2026-09-22 14:00", "2026-09-22 15:30", 5)

    # a cancelled registration: its confirmation is not sent
    ann = env.register(y, "Ann", "ann@example.org", "2026-09-01 09:00")
    old = relay_down(env)
    env.scan("2026-09-01 09:05")
    env.ctl("cancel", ann, now="2026-09-01 09:10")
    relay_up(env, old)
    env.scan("2026-09-01 09:15")
    assert env.mails(to="ann@example.org") == []
    status, why = outbox_row(env, ann, "confirmation")
    assert status == "expired" and "cancelled" in why, why

    bob = env.register(y, "Bob", "bob@example.org", "2026-09-01 09:20")
    cat = env.register(y, "Cat", "cat@example.org", "2026-09-01 09:21")
    dan = env.register(x, "Dan", "dan@example.org", "2026-09-01 09:22")
    eve = env.register(x, "Eve", "eve@example.org", "2026-09-01 09:23")
    env.scan("2026-09-01 09:30")
    assert len(env.smtp.messages) == 4

    # a reminder once the e-learning is done
    old = relay_down(env)
    env.scan("2026-09-12 14:00")
    env.ctl("elearning-done", "CAT@example.org", now="2026-09-12 15:00")
    relay_up(env, old)
    env.scan("2026-09-12 16:00")
    assert env.kinds("bob@example.org")[-1] == "elearning_reminder"
    assert env.kinds("dan@example.org")[-1] == "elearning_reminder"
    assert env.kinds("cat@example.org") == ["confirmation"]
    status, why = outbox_row(env, cat, "elearning_reminder")
    assert status == "expired" and "e-learning" in why, why

    # a promotion just before the cutoff, held back by the relay until after it: Eve is
    # booked and on the roster, so the news that she has a place still goes
    env.ctl("cancel", dan, now="2026-09-15 10:00")
    old = relay_down(env)
    env.scan("2026-09-15 10:05")
    relay_up(env, old)
    env.scan("2026-09-15 10:45")
    assert env.kinds("eve@example.org") == ["waitlisted", "promoted"]
    status, why = outbox_row(env, eve, "promoted")
    assert status == "sent", (status, why)
    assert statuses_of(env)[eve] == "booked"

    # a joining link, or a reminder to do the e-learning first, once the session started
    old = relay_down(env)
    env.scan("2026-09-20 14:00")
    relay_up(env, old)
    env.scan("2026-09-22 14:30")
    assert env.mails(kind="joining_link") == []
    for rid in (bob, cat, eve):
        status, why = outbox_row(env, rid, "joining_link")
        assert status == "expired" and "started" in why, (rid, why)
    rows = env.sql("SELECT status, last_error FROM outbox WHERE registration_id = ?"
                   " AND occasion = '3d'", bob)
    assert rows == [("expired", "the session has already started")], rows

    # and nothing at all once names and addresses are erased: the follow-ups queued in an
    # outage that lasts past the retention are dropped, not sent to an erased address
    old = relay_down(env)
    env.scan("2026-09-23 16:00")
    assert len(env.sql("SELECT id FROM outbox WHERE kind = 'follow_up' AND status = 'queued'")) == 3
    relay_up(env, old)
    env.scan("2026-09-24 16:00")
    assert env.mails(kind="follow_up") == []
    assert env.sql("SELECT DISTINCT status FROM outbox WHERE kind = 'follow_up'") == [("expired",)]
    assert env.sql("SELECT count(*) FROM registrations WHERE email != ''") == [(0,)]
    assert env.sql("SELECT count(*) FROM outbox WHERE status = 'queued'") == [(0,)]
    env.scan("2026-09-30 16:00")
    assert env.mails(kind="follow_up") == []

    # everyone's inbox, in full
    assert env.kinds("ann@example.org") == []
    assert env.kinds("bob@example.org") == ["confirmation", "elearning_reminder"]
    assert env.kinds("cat@example.org") == ["confirmation"]
    assert env.kinds("dan@example.org") == ["confirmation", "elearning_reminder"]
    assert env.kinds("eve@example.org") == ["waitlisted", "promoted"]
    assert env.kinds("mecc-team@example.org") == ["roster", "roster"]


def statuses_of(env):
    return dict(env.sql("SELECT id, status FROM registrations"))


@with_env(require_elearning=True)
def test_last_reminder_gives_way_to_the_link(env):
    """require_elearning: the last reminder says the link is waiting; if the e-learning is
    recorded before it goes out, it is dropped and the link goes instead."""
    sid = env.add_session("S", "2026-09-22 10:30", "2026-09-22 12:00", 5, "2026-08-01 09:00",
                          "--join-url", "https://meet.example.org/s")
    ann = env.register(sid, "Ann", "ann@example.org", "2026-09-01 09:00")
    bob = env.register(sid, "Bob", "bob@example.org", "2026-09-01 09:01")
    cat = env.register(sid, "Cat", "cat@example.org", "2026-09-01 09:02")
    env.ctl("elearning-done", cat, now="2026-09-02 09:00")
    env.scan("2026-09-01 09:05")
    env.scan("2026-09-12 10:30")
    env.scan("2026-09-19 10:30")
    old = relay_down(env)
    env.scan("2026-09-20 10:30")
    queued = env.sql("SELECT registration_id, kind, occasion FROM outbox WHERE status = 'queued'"
                     " ORDER BY registration_id")
    assert queued == [(ann, "elearning_reminder", "link-waiting"),
                      (bob, "elearning_reminder", "link-waiting"),
                      (cat, "joining_link", "")], queued
    # Ann finishes before the relay is back
    env.ctl("elearning-done", "ann@example.org", now="2026-09-20 11:00")
    relay_up(env, old)
    env.scan("2026-09-20 11:30")
    assert env.kinds("ann@example.org") == ["confirmation", "elearning_reminder",
                                            "elearning_reminder", "joining_link"]
    rows = env.sql("SELECT occasion, status FROM outbox WHERE registration_id = ?"
                   " AND kind = 'elearning_reminder' ORDER BY id", ann)
    assert rows == [("10d", "sent"), ("3d", "sent"), ("link-waiting", "expired")], rows
    m = env.mails(to="bob@example.org", kind="elearning_reminder")[-1]
    assert env.kind_of(m) == ("elearning_reminder", "link-waiting")
    text = body(m)
    assert "Your joining link is ready and waiting" in text and "in 2 days" in text, text
    assert "https://meet.example.org/s" not in m["raw"].decode("ascii", "replace")
    assert env.kinds("cat@example.org") == ["confirmation", "joining_link"]
    # Bob never does it: no link, not even after the start; one last reminder only
    env.scan("2026-09-21 10:30")
    env.scan("2026-09-22 10:00")
    env.scan("2026-09-22 11:00")
    assert "joining_link" not in env.kinds("bob@example.org")
    assert env.kinds("bob@example.org").count("elearning_reminder") == 3
