"""Attendance as the trainer's meeting platform exports it, and the follow-up that fits:
thanks to those who came, "sorry we missed you" with the next dates to those who did not."""
import json
import os

from harness import with_env

TEAMS = (
    "1. Summary\r\n"
    "Meeting title\tMECC live online training\r\n"
    "Attended participants\t5\r\n"
    "Start time\t9/22/26, 10:28:41 AM\r\n"
    "End time\t9/22/26, 12:01:10 PM\r\n"
    "Meeting duration\t1h 32m 29s\r\n"
    "\r\n"
    "2. Participants\r\n"
    "Name\tFirst Join\tLast Leave\tIn-Meeting Duration\tEmail\tParticipant ID (UPN)\tRole\r\n"
    "Tess Trainer\t9/22/26, 10:28:41 AM\t9/22/26, 12:01:10 PM\t1h 32m 29s\ttrainer@example.org\ttrainer@example.org\tOrganizer\r\n"
    "Ann Smith\t9/22/26, 10:29:01 AM\t9/22/26, 12:00:58 PM\t1h 31m 57s\tANN@example.org\tann@example.org\tAttendee\r\n"
    "Bob Jones\t9/22/26, 10:35:12 AM\t9/22/26, 10:52:40 AM\t17m 28s\tbob@example.org\tbob@example.org\tAttendee\r\n"
    "Cat Brown\t9/22/26, 10:31:00 AM\t9/22/26, 11:45:00 AM\t1h 14m\t\t\tAttendee\r\n"
    "Sam Lee\t9/22/26, 10:31:00 AM\t9/22/26, 11:45:00 AM\t1h 14m\t\t\tAttendee\r\n"
    "Guest Visitor (Guest)\t9/22/26, 10:30:00 AM\t9/22/26, 12:00:00 PM\t1h 30m\t\t\tAttendee\r\n"
    "\r\n"
    "3. In-Meeting Activities\r\n"
    "Name\tJoin Time\tLeave Time\tDuration\tEmail\tRole\r\n"
)

ZOOM = (
    "Name (Original Name),User Email,Join Time,Leave Time,Duration (Minutes),Guest,Recording Consent,In Waiting Room\r\n"
    "Ann Smith,ann@example.org,09/22/2026 10:29:01 AM,09/22/2026 11:00:00 AM,30,No,,No\r\n"
    "Ann Smith,ann@example.org,09/22/2026 11:02:00 AM,09/22/2026 12:00:00 PM,58,No,,No\r\n"
    "Bob Jones,bob@example.org,09/22/2026 10:35:12 AM,09/22/2026 10:52:40 AM,18,No,,No\r\n"
)


def write(env, name, data, encoding="utf-8"):
    path = os.path.join(env.dir, name)
    with open(path, "wb") as f:
        f.write(data.encode(encoding))
    return path


def setup(env):
    sid = env.add_session("MECC live session", "2026-09-22 10:30", "2026-09-22 12:00", 10,
                          "2026-08-01 09:00", "--join-url", "https://meet.example.org/x",
                          "--trainer", "trainer@example.org")
    later = env.add_session("MECC live session (October)", "2026-10-26 10:30",
                            "2026-10-26 12:00", 10, "2026-08-01 09:00")
    regs = {}
    for i, (name, addr) in enumerate((("Ann Smith", "ann@example.org"), ("Bob Jones", "bob@example.org"),
                                      ("Cat Brown", "cat@example.org"), ("Sam Lee", "sam1@example.org"),
                                      ("Sam Lee", "sam2@example.org"), ("Dee Green", "dee@example.org"))):
        regs[addr] = env.register(sid, name, addr, "2026-09-01 09:%02d" % i)
    env.scan("2026-09-01 10:00")
    return sid, later, regs


def attendance(env, sid):
    return {r["email"]: (r["attended"], r["attended_minutes"])
            for r in env.ctl_json("attendance", "show", sid, now="2026-09-22 12:30")}


def body_text(m):
    return m["msg"].get_body(preferencelist=("plain",)).get_content()


def test_teams_report_and_the_follow_up_that_fits(env):
    sid, later, regs = setup(env)
    path = write(env, "attendance.csv", "\ufeff" + TEAMS, "utf-16-le")
    out = env.ctl("attendance", "import", sid, path, now="2026-09-22 12:30").stdout
    assert "Microsoft Teams" in out
    assert "2 attended, 4 absent" in out
    # the organiser, the guest and a name two bookings share are listed, not errors
    assert "Tess Trainer <trainer@example.org>" in out
    assert "Guest Visitor (Guest) (no address)" in out
    assert "Sam Lee (no address), 74 min: the name of more than one booking" in out
    a = attendance(env, sid)
    assert a["ann@example.org"] == (True, 91)
    assert a["bob@example.org"] == (False, 17)    # 17 of 90 minutes: under half
    assert a["cat@example.org"] == (True, 74)     # by her name, the only Cat Brown
    assert a["sam1@example.org"] == (False, 0)
    assert a["dee@example.org"] == (False, 0)

    env.scan("2026-09-23 12:30")
    assert env.kinds("ann@example.org")[-1] == "follow_up"
    assert env.kinds("cat@example.org")[-1] == "follow_up"
    missed = env.mails(to="bob@example.org", kind="missed")
    assert len(missed) == 1 and "follow_up" not in env.kinds("bob@example.org")
    text = body_text(missed[0])
    assert "sorry not to see you" in text
    assert "MECC live session (October)" in text     # the next open session
    assert "https://learn.example.org/mecc" in text
    assert env.kinds("dee@example.org")[-1] == "missed"


def test_zoom_joins_add_up_and_import_replaces(env):
    sid, later, regs = setup(env)
    env.ctl("attendance", "mark", sid, "--attended", "dee@example.org", now="2026-09-22 12:30")
    assert attendance(env, sid)["dee@example.org"] == (True, None)
    path = write(env, "participants.csv", ZOOM)
    out = env.ctl("attendance", "import", sid, path, now="2026-09-22 12:30").stdout
    assert "Zoom" in out
    a = attendance(env, sid)
    assert a["ann@example.org"] == (True, 88)
    assert a["bob@example.org"] == (False, 18)
    assert a["dee@example.org"] == (False, 0)   # the import replaced the mark

    # a plain list: no minutes means they came
    path = write(env, "came.csv", "email\nbob@example.org\n")
    env.ctl("attendance", "import", sid, path, now="2026-09-22 12:30")
    a = attendance(env, sid)
    assert a["bob@example.org"] == (True, None) and a["ann@example.org"] == (False, 0)


def test_a_file_that_is_no_attendance_list_changes_nothing(env):
    sid, later, regs = setup(env)
    env.ctl("attendance", "mark", sid, "--absent", str(regs["ann@example.org"]), now="2026-09-22 12:30")
    path = write(env, "roster.csv", "name,email,status\nAnn,ann@example.org,booked\n")
    p = env.ctl("attendance", "import", sid, path, now="2026-09-22 12:30", check=False)
    assert p.returncode == 65, p
    assert "roster.csv" in p.stderr and "not a Teams attendance report" in p.stderr
    assert attendance(env, sid)["ann@example.org"] == (False, None)
    # before the session, nobody can have come
    p = env.ctl("attendance", "import", sid, path, now="2026-09-20 12:30", check=False)
    assert p.returncode == 65 and "not started" in p.stderr


def test_without_attendance_everyone_gets_the_follow_up(env):
    sid, later, regs = setup(env)
    env.scan("2026-09-23 12:30")
    for addr in regs:
        assert "follow_up" in env.kinds(addr) and "missed" not in env.kinds(addr)
    assert "attendance_request" not in env.kinds("trainer@example.org")


@with_env(attendance_required=True)
def test_attendance_required_waits_and_asks_the_trainer(env):
    sid, later, regs = setup(env)
    env.scan("2026-09-22 12:05")
    req = env.mails(to="trainer@example.org", kind="attendance_request")
    assert len(req) == 1
    assert "Ann Smith <ann@example.org>" in body_text(req[0])
    env.scan("2026-09-24 12:00")
    assert "follow_up" not in env.kinds("ann@example.org")
    env.ctl("attendance", "mark", sid, "--attended", "ann@example.org", "bob@example.org",
            now="2026-09-24 13:00")
    env.ctl("attendance", "mark", sid, "--absent", "cat@example.org", now="2026-09-24 13:00")
    env.scan("2026-09-24 13:05")
    assert env.kinds("ann@example.org")[-1] == "follow_up"
    assert env.kinds("cat@example.org")[-1] == "missed"
    # nobody said for Dee: she hears nothing rather than the wrong thing
    assert env.kinds("dee@example.org") == ["confirmation", "elearning_reminder", "elearning_reminder",
                                            "joining_link"][:len(env.kinds("dee@example.org"))]
    assert "follow_up" not in env.kinds("dee@example.org")
    assert len(env.mails(to="trainer@example.org", kind="attendance_request")) == 1


def report(env, *args, now="2026-09-23 12:30"):
    return env.ctl_json("report", *args, now=now)


def test_report_counts_and_survives_erasure(env):
    sid, later, regs = setup(env)
    env.ctl("register", sid, "--name", "Eve Org", "--email", "eve@example.org",
            "--organisation", "DWP Oxford", now="2026-09-01 11:00")
    env.scan("2026-09-01 11:05")
    env.ctl("cancel", str(regs["sam2@example.org"]), now="2026-09-02 09:00")
    env.register(sid, "Late Larry", "larry@example.org", "2026-09-20 09:00")   # after the cutoff
    env.sql("INSERT INTO registrations(session_id, name, email, registered_at) VALUES (?, ?, ?, ?)",
            sid, "Bad Address", "not-an-address", 1788339600)
    env.scan("2026-09-21 09:00")
    env.ctl("elearning-done", "ann@example.org", now="2026-09-10 09:00")
    path = write(env, "attendance.csv", "\ufeff" + TEAMS, "utf-16-le")
    env.ctl("attendance", "import", sid, path, now="2026-09-22 12:30")
    env.scan("2026-09-23 12:30")

    before = report(env, "--until", "2026-10-01 00:00")
    assert [r["session_id"] for r in before] == [sid, None]
    row = [r for r in before if r["session_id"] == sid][0]
    assert row["registrations"] == 9
    assert row["booked"] == 6 and row["cancelled"] == 1 and row["late"] == 1 and row["invalid"] == 1
    assert row["elearning_done"] == 1
    # Sam Lee is one booking now (the other cancelled): his row is his
    assert row["attended"] == 3 and row["absent"] == 3 and row["attendance_unknown"] == 0
    assert row["emails_sent"] > 0 and row["emails_failed"] == 0
    total = before[-1]
    assert total["session_id"] is None and total["title"] == "total"
    assert total["registrations"] == 9

    by_org = report(env, "--by", "organisation", "--until", "2026-10-01 00:00")
    orgs = {(r["session_id"], r["organisation"]): r for r in by_org}
    assert orgs[(sid, "DWP Oxford")]["booked"] == 1
    assert orgs[(None, "DWP Oxford")]["registrations"] == 1
    assert orgs[(None, "")]["registrations"] == 8

    csv_out = env.ctl("report", "--csv", now="2026-09-23 12:30").stdout
    assert csv_out.splitlines()[0].startswith("session_id,title,course,starts_at,capacity,registrations")

    # retention passes: names, addresses and bodies go; the figures stay
    env.scan("2027-04-01 09:00")
    assert env.sql("SELECT count(*) FROM registrations WHERE session_id = ? AND email != ''", sid)[0][0] == 0
    after = report(env, "--until", "2026-10-01 00:00", now="2027-04-01 10:00")
    assert after == before, (before, after)
    assert report(env, "--by", "organisation", "--until", "2026-10-01 00:00", now="2027-04-01 10:00") == by_org
