"""Courses: several programmes in one back office, each session looked up session, course,
global; a course the config does not know holds its session back."""
import os

from harness import TOP

TTT = '''
course "ttt" {
  title = "MECC Train the Trainer"
  templates = "%s"
  elearning_url = "https://learn.example.org/ttt"
  signpost_url = "https://signpost.example.org/"
  booking_cutoff = "14d"
  roster_to = {"ttt-team@example.org"}
}
''' % os.path.join(TOP, "etc", "templates", "ttt")


def body_text(m):
    return m["msg"].get_body(preferencelist=("plain",)).get_content()


def test_a_course_has_its_own_settings_and_wording(env):
    env.write_conf(TTT)
    ttt = int(env.ctl("session", "add", "--course", "ttt", "--start", "2026-09-22 10:30",
                      "--end", "2026-09-22 16:00", "--capacity", "8", now="2026-08-01 09:00").stdout)
    plain = env.add_session("MECC live session", "2026-09-22 10:30", "2026-09-22 12:00", 10)
    other = env.add_session("MECC live session (October)", "2026-10-26 10:30", "2026-10-26 12:00", 10)
    ttt2 = int(env.ctl("session", "add", "--course", "ttt", "--title", "TTT (October)", "--start",
                       "2026-10-27 10:30", "--end", "2026-10-27 16:00", "--capacity", "8",
                       now="2026-08-01 09:00").stdout)
    s = env.ctl_json("session", "show", ttt)
    assert s["course"] == "ttt" and s["title"] == "MECC Train the Trainer"
    assert s["closes_at"] == "2026-09-08T09:30:00Z"      # the course's 14 days
    assert [x["id"] for x in env.ctl_json("session", "list", "--course", "ttt")] == [ttt, ttt2]

    env.register(ttt, "Ann Smith", "ann@example.org", "2026-09-01 09:00")
    env.register(plain, "Bob Jones", "bob@example.org", "2026-09-01 09:00")
    env.scan("2026-09-01 09:05")
    # 2026-09-10: past the course's cutoff, not the global one
    env.register(ttt, "Cat Brown", "cat@example.org", "2026-09-10 09:00")
    env.scan("2026-09-10 09:05")
    conf = env.mails(to="ann@example.org", kind="confirmation")[0]
    assert "Train the Trainer" in str(conf["msg"]["Subject"])
    assert "https://learn.example.org/ttt" in body_text(conf)
    bob = env.mails(to="bob@example.org", kind="confirmation")[0]
    assert "https://learn.example.org/mecc" in body_text(bob)
    assert "ttt" not in body_text(bob)
    late = env.mails(to="cat@example.org", kind="late")[0]
    text = body_text(late)
    # the next dates are the course's own
    assert "TTT (October)" in text and "MECC live session (October)" not in text
    # a kind the course does not change keeps the global wording, with the course's links
    assert "https://signpost.example.org/" in text
    # the roster of the course goes to its own team
    assert env.mails(to="ttt-team@example.org", kind="roster")
    assert not env.mails(to="mecc-team@example.org", kind="roster")


def test_an_unknown_course_holds_its_session_back(env):
    sid = env.add_session("MECC live session", "2026-09-22 10:30", "2026-09-22 12:00", 10)
    env.sql("UPDATE sessions SET course = 'dwp' WHERE id = ?", sid)
    rid = env.register(sid, "Ann Smith", "ann@example.org", "2026-09-01 09:00")
    env.scan("2026-09-01 09:05")
    assert env.sql("SELECT status FROM registrations WHERE id = ?", rid)[0][0] == "new"
    assert env.mails(to="ann@example.org") == []
    p = env.ctl("status", now="2026-09-01 09:06", check=False)
    assert p.returncode == 1
    assert 'session %d: course "dwp" is not configured' % sid in p.stdout
    p = env.ctl("session", "edit", str(sid), "--course", "nope", now="2026-09-01 09:06", check=False)
    assert p.returncode == 65 and 'course "nope" is not configured' in p.stderr

    env.write_conf('course "dwp" {\n  elearning_url = "https://learn.example.org/dwp"\n}\n')
    env.scan("2026-09-01 09:10")
    assert env.sql("SELECT status FROM registrations WHERE id = ?", rid)[0][0] == "booked"
    assert "https://learn.example.org/dwp" in body_text(env.mails(to="ann@example.org")[0])


def test_check_config_checks_every_courses_templates(env):
    d = os.path.join(env.dir, "bad")
    os.mkdir(d)
    with open(os.path.join(d, "confirmation.txt"), "w") as f:
        f.write("Subject: Hello {{nmae}}\n\nDear {{name}}\n")
    env.write_conf('course "x" {\n  templates = "%s"\n}\n' % d)
    p = env.run("meccd", "--check-config", check=False)
    assert p.returncode == 78, p
    assert "confirmation.txt" in p.stderr and "nmae" in p.stderr


def test_upcoming_follows_each_courses_own_moments(env):
    """The dry run asks the same questions as the scans: a course's 14-day cutoff puts its
    roster on 8 September, where the global 7 days would have said the 15th."""
    env.write_conf(TTT)
    ttt = int(env.ctl("session", "add", "--course", "ttt", "--start", "2026-09-22 10:30",
                      "--end", "2026-09-22 16:00", "--capacity", "8", "--trainer", "t@example.org",
                      now="2026-08-01 09:00").stdout)
    env.register(ttt, "Ann Smith", "ann@example.org", "2026-08-01 09:00")
    rows = env.ctl_json("upcoming", "--until", "2026-09-20 00:00", now="2026-08-01 09:30")
    roster = [r for r in rows if r["kind"] == "roster"]
    assert len(roster) == 1 and roster[0]["at"].startswith("2026-09-08"), roster
