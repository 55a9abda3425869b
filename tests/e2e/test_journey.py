"""A session's life as volunteers see it in their inboxes: booking, reminders, the cutoff,
the joining link, the follow-up; a full session; and a mail server that goes away."""
import collections

from harness import SmtpServer

JOIN_URL = "https://meet.example.org/mecc-0922"


def occasions(env, to):
    """(kind, occasion) of every message captured for one address, in arrival order."""
    return [tuple(env.kind_of(m)) for m in env.mails(to=to)]


def assert_no_repeats(env):
    seen = collections.Counter()
    for m in env.smtp.messages:
        for rcpt in m["to"]:
            seen[(rcpt.lower(), *env.kind_of(m))] += 1
    repeated = {k: n for k, n in seen.items() if n > 1}
    assert not repeated, "sent more than once: %r" % repeated


def reg_status(env, rid):
    return env.sql("SELECT status FROM registrations WHERE id = ?", rid)[0][0]


def body_text(m):
    part = m["msg"].get_body(preferencelist=("plain",))
    return part.get_content()


def attachments(m):
    return [(p.get_content_type(), p.get_filename(), p.get_payload(decode=True))
            for p in m["msg"].iter_attachments()]


def test_one_session_from_booking_to_follow_up(env):
    sid = env.add_session("MECC live session", "2026-09-22 10:30", "2026-09-22 12:00", 10,
                          "2026-08-01 09:00", "--join-url", JOIN_URL,
                          "--trainer", "trainer@example.org")
    later = env.add_session("MECC live session (October)", "2026-10-26 10:30",
                            "2026-10-26 12:00", 10, "2026-08-01 09:00")
    ann = env.register(sid, "Ann Smith", "ann@example.org", "2026-09-01 09:00")
    bob = env.register(sid, "Bob Jones", "bob@example.org", "2026-09-01 09:01")
    cat = env.register(sid, "Cat Brown", "cat@example.org", "2026-09-01 09:02")

    # admission: everyone booked, one confirmation each, dated and timed in local time
    env.scan("2026-09-01 09:05")
    for who, rid in (("ann", ann), ("bob", bob), ("cat", cat)):
        assert reg_status(env, rid) == "booked"
        assert env.kinds("%s@example.org" % who) == ["confirmation"]
    conf = env.mails(to="ann@example.org")[0]
    assert "Tuesday 22 September 2026" in str(conf["msg"]["Subject"])
    assert "Dear Ann Smith" in body_text(conf)
    assert "10:30\u201312:00 BST" in body_text(conf)
    assert "https://learn.example.org/mecc" in body_text(conf)

    # Ann does the e-learning at once; a minute before the 10-day reminder nothing goes
    env.ctl("elearning-done", "ANN@example.org", now="2026-09-02 18:00")
    env.scan("2026-09-12 10:29")
    assert len(env.smtp.messages) == 3

    # 10 days before: only those without the e-learning are reminded
    env.scan("2026-09-12 10:30")
    assert occasions(env, "ann@example.org") == [("confirmation", "")]
    assert occasions(env, "bob@example.org")[-1] == ("elearning_reminder", "10d")
    assert occasions(env, "cat@example.org")[-1] == ("elearning_reminder", "10d")
    rem = env.mails(to="cat@example.org", kind="elearning_reminder")[0]
    assert "https://learn.example.org/mecc" in body_text(rem)

    # Bob finishes in between (by registration id): no 3-day reminder for him
    env.ctl("elearning-done", bob, now="2026-09-14 20:00")

    # a minute before the cutoff a registration is still booked ...
    dan = env.register(sid, "Dan Green", "dan@example.org", "2026-09-15 10:28")
    env.scan("2026-09-15 10:29")
    assert reg_status(env, dan) == "booked"
    assert env.kinds("dan@example.org") == ["confirmation"]
    assert env.sql("SELECT status FROM sessions WHERE id = ?", sid)[0][0] == "open"

    # ... at the cutoff bookings close: a later one is late, told of the next session
    eve = env.register(sid, "Eve White", "eve@example.org", "2026-09-15 10:29")
    env.scan("2026-09-15 10:30")
    assert env.sql("SELECT status FROM sessions WHERE id = ?", sid)[0][0] == "closed"
    assert reg_status(env, eve) == "late"
    assert env.kinds("eve@example.org") == ["late"]
    assert "Monday 26 October 2026" in body_text(env.mails(to="eve@example.org")[0])
    # the trainer gets one roster, with the attendees as CSV
    assert env.kinds("trainer@example.org") == ["roster"]
    assert env.mails(to="mecc-team@example.org") == []
    csvs = [a for a in attachments(env.mails(to="trainer@example.org")[0])
            if a[0] == "text/csv"]
    assert len(csvs) == 1, attachments(env.mails(to="trainer@example.org")[0])
    roster = csvs[0][2].decode()
    for name in ("Ann Smith", "Bob Jones", "Cat Brown", "Dan Green"):
        assert name in roster, roster
    assert "Eve White" not in roster

    # 3 days before: Cat and Dan (booked before it, no e-learning), not Ann or Bob
    env.scan("2026-09-19 10:30")
    assert occasions(env, "cat@example.org")[-1] == ("elearning_reminder", "3d")
    assert occasions(env, "dan@example.org")[-1] == ("elearning_reminder", "3d")
    assert "elearning_reminder" not in env.kinds("ann@example.org")
    assert env.kinds("bob@example.org") == ["confirmation", "elearning_reminder"]

    # the joining link goes 2 days before, to every booked registration, with an .ics
    env.scan("2026-09-20 10:29")
    assert env.mails(kind="joining_link") == []
    env.scan("2026-09-20 10:30")
    for who in ("ann", "bob", "cat", "dan"):
        joins = env.mails(to="%s@example.org" % who, kind="joining_link")
        assert len(joins) == 1, who
        assert JOIN_URL in body_text(joins[0])
        ics = [a for a in attachments(joins[0]) if a[0] == "text/calendar"]
        assert len(ics) == 1 and ics[0][1].endswith(".ics"), attachments(joins[0])
        cal = ics[0][2].decode()
        assert "BEGIN:VEVENT" in cal and JOIN_URL in cal.replace("\r\n ", "")
        assert "DTSTART;TZID=Europe/London:20260922T103000" in cal, cal
    assert env.mails(to="eve@example.org", kind="joining_link") == []

    # scanning again, at the same moment and later, sends nothing new
    count = len(env.smtp.messages)
    for t in ("2026-09-20 10:30", "2026-09-20 10:31", "2026-09-21 09:00", "2026-09-22 10:00"):
        env.scan(t)
    assert len(env.smtp.messages) == count
    assert_no_repeats(env)

    # the day after, thanks and signposting to the four who were booked; then quiet
    env.scan("2026-09-23 12:00")
    for who in ("ann", "bob", "cat", "dan"):
        assert env.kinds("%s@example.org" % who)[-1] == "follow_up"
        assert "livewell.oxfordshire.gov.uk" in body_text(
            env.mails(to="%s@example.org" % who, kind="follow_up")[0])
    assert env.sql("SELECT status FROM sessions WHERE id = ?", sid)[0][0] == "done"
    count = len(env.smtp.messages)
    env.scan("2026-09-23 12:00")
    env.scan("2026-09-30 09:00")
    assert len(env.smtp.messages) == count
    assert_no_repeats(env)

    assert env.kinds("ann@example.org") == ["confirmation", "joining_link", "follow_up"]
    assert env.kinds("bob@example.org") == ["confirmation", "elearning_reminder",
                                            "joining_link", "follow_up"]
    assert occasions(env, "cat@example.org") == [
        ("confirmation", ""), ("elearning_reminder", "10d"), ("elearning_reminder", "3d"),
        ("joining_link", ""), ("follow_up", "")]
    assert env.kinds("dan@example.org") == ["confirmation", "elearning_reminder",
                                            "joining_link", "follow_up"]
    assert env.kinds("eve@example.org") == ["late"]
    # nothing was ever sent about the October session
    assert env.sql("SELECT count(*) FROM outbox WHERE session_id = ?", later)[0][0] == 0


def test_full_session_waitlists_and_bad_registrations_get_no_email(env):
    sid = env.add_session("MECC live session", "2026-09-22 10:30", "2026-09-22 12:00", 2)
    ann = env.register(sid, "Ann", "ann@example.org", "2026-09-01 09:00")
    bob = env.register(sid, "Bob", "bob@example.org", "2026-09-01 09:01")
    cat = env.register(sid, "Cat", "cat@example.org", "2026-09-01 09:02")
    # the same person again, in other letters
    dup = env.register(sid, "Ann again", "ANN@Example.ORG", "2026-09-01 09:03")
    # the website writes the table directly and does not check addresses
    env.sql("INSERT INTO registrations (session_id, name, email, registered_at)"
            " VALUES (?, 'Dee', 'dee at example.org', strftime('%s', '2026-09-01 08:04'))", sid)
    env.sql("INSERT INTO registrations (session_id, name, email, registered_at)"
            " VALUES (?, 'Two', 'a@example.org, b@example.org',"
            " strftime('%s', '2026-09-01 08:05'))", sid)
    env.scan("2026-09-01 09:10")

    assert reg_status(env, ann) == "booked" and reg_status(env, bob) == "booked"
    assert reg_status(env, cat) == "waitlisted"
    assert env.kinds("cat@example.org") == ["waitlisted"]
    assert "22 September 2026" in body_text(env.mails(to="cat@example.org")[0])
    assert reg_status(env, dup) == "invalid"
    assert env.kinds("ann@example.org") == ["confirmation"]
    rows = dict(env.sql("SELECT name, status FROM registrations WHERE name IN ('Dee', 'Two')"))
    assert rows == {"Dee": "invalid", "Two": "invalid"}, rows
    # five people, three emails: two confirmations and one waitlisted
    assert len(env.smtp.messages) == 3
    assert all(len(m["to"]) == 1 for m in env.smtp.messages)
    assert env.sql("SELECT count(*) FROM outbox")[0][0] == 3

    # the website shows "Now full"
    avail = env.sql("SELECT booked, waitlisted, seats_left, full FROM session_availability"
                    " WHERE session_id = ?", sid)
    assert avail == [(2, 1, 0, 1)], avail

    # a cancellation frees a seat: the waitlisted person is promoted, once
    env.ctl("cancel", bob, now="2026-09-02 09:00")
    env.scan("2026-09-02 09:01")
    env.scan("2026-09-02 09:02")
    assert reg_status(env, cat) == "booked"
    assert env.kinds("cat@example.org") == ["waitlisted", "promoted"]
    assert env.kinds("bob@example.org") == ["confirmation"]


def test_mail_server_down_then_back(env):
    sid = env.add_session("MECC live session", "2026-09-22 10:30", "2026-09-22 12:00", 5)
    env.register(sid, "Ann", "ann@example.org", "2026-09-01 09:00")
    env.register(sid, "Bob", "bob@example.org", "2026-09-01 09:01")
    port = env.smtp.port
    env.smtp.stop()

    p = env.scan("2026-09-01 09:10")
    assert p.returncode == 0
    rows = env.ctl_json("outbox", "list", now="2026-09-01 09:10")
    assert len(rows) == 2, rows
    for row in rows:
        assert row["status"] == "queued", row
        assert row["attempts"] == 1, row
        assert row["next_attempt_at"] > "2026-09-01T08:10:00Z", row
        assert row["last_error"], row
    text = env.ctl("outbox", "list", "--status", "queued", now="2026-09-01 09:10").stdout
    assert text.count("queued") == 2, text

    # a scan before the retry time does not hammer the server
    env.scan("2026-09-01 09:10")
    assert [r["attempts"] for r in env.ctl_json("outbox", "list")] == [1, 1]

    env.smtp = SmtpServer(port=port).start()
    env.scan("2026-09-01 10:00")
    assert env.kinds("ann@example.org") == ["confirmation"]
    assert env.kinds("bob@example.org") == ["confirmation"]
    rows = env.ctl_json("outbox", "list", now="2026-09-01 10:00")
    assert [r["status"] for r in rows] == ["sent", "sent"], rows
    assert all(r["attempts"] == 2 and r["sent_at"] == "2026-09-01T09:00:00Z" for r in rows), rows

    env.scan("2026-09-01 10:05")
    env.scan("2026-09-02 10:05")
    assert len(env.smtp.messages) == 2
    assert_no_repeats(env)


def test_cutoff_across_the_october_clock_change(env):
    # Monday 26 October 2026 is on GMT; a week before, the clocks still said BST
    sid = env.add_session("MECC live session", "2026-10-26 10:30", "2026-10-26 12:00", 5)
    show = env.ctl_json("session", "show", sid)
    assert show["starts_at"] == "2026-10-26T10:30:00Z", show
    assert show["closes_at"] == "2026-10-19T09:30:00Z", show

    early = env.register(sid, "Ann", "ann@example.org", "2026-10-19 10:28")
    env.scan("2026-10-19 10:29")
    assert reg_status(env, early) == "booked"
    late = env.register(sid, "Bob", "bob@example.org", "2026-10-19 10:29")
    env.scan("2026-10-19 10:30")
    assert reg_status(env, late) == "late"
    assert env.kinds("bob@example.org") == ["late"]
    assert env.kinds("mecc-team@example.org") == ["roster"]
    conf = env.mails(to="ann@example.org", kind="confirmation")[0]
    assert "Monday 26 October 2026" in str(conf["msg"]["Subject"])
    assert "10:30\u201312:00 GMT" in body_text(conf)
    # the joining link two calendar days before: Saturday 10:30 BST, 49 hours ahead
    env.scan("2026-10-24 10:29")
    assert env.mails(kind="joining_link") == []
    env.scan("2026-10-24 10:30")
    assert env.kinds("ann@example.org")[-1] == "joining_link"
