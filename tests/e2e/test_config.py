"""What an admin sees from a bad meccd.conf and from mistyped commands: exit codes that
scripts and systemd can act on, and messages that say where the mistake is."""
import os
import re
import shutil

from harness import TOP

EX_USAGE, EX_DATAERR, EX_NOINPUT, EX_CONFIG = 64, 65, 66, 78


def line_of(path, text):
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if text in line:
                return n
    raise AssertionError("%r not in %s" % (text, path))


def check_rejected(env, option, line_text):
    """meccd (every mode) and meccctl refuse the file, naming it, the line and the option."""
    where = "%s:%d:" % (env.conf, line_of(env.conf, line_text))
    runs = [env.run("meccd", "--check-config", check=False),
            env.run("meccd", "--once", check=False),
            env.run("meccd", check=False, timeout=10),
            env.ctl("status", check=False)]
    for p in runs:
        assert p.returncode == EX_CONFIG, (p.args, p.returncode, p.stderr)
        assert where in p.stderr, (where, p.stderr)
        assert option in p.stderr, (option, p.stderr)
    # nothing was started: no database was created from a rejected file
    assert not os.path.exists(env.db)


def test_bad_duration_exits_78_naming_file_and_line(env):
    env.write_conf('# a comment, as in the shipped file\nbooking_cutoff = "7x"  # a week\n')
    check_rejected(env, "booking_cutoff", 'booking_cutoff = "7x"')


def test_bad_smtp_option_names_its_line(env):
    env.smtp_settings["tls"] = "maybe"
    env.write_conf()
    check_rejected(env, "smtp.tls", 'tls = "maybe"')


def test_unknown_timezone_and_unknown_option(env):
    env.settings["timezone"] = "Europe/Oxford"
    env.write_conf()
    check_rejected(env, "timezone", "Europe/Oxford")
    env.settings["timezone"] = "Europe/London"
    env.write_conf('reminder_days = 3\n')
    check_rejected(env, "reminder_days", "reminder_days")


def test_missing_config_file(env):
    os.unlink(env.conf)
    p = env.run("meccd", "--check-config", check=False)
    assert p.returncode == EX_CONFIG, p
    assert env.conf in p.stderr, p.stderr


def test_check_config_accepts_a_good_file(env):
    p = env.run("meccd", "--check-config")
    assert p.returncode == 0
    assert env.conf in p.stdout
    assert not os.path.exists(env.db)
    # the shipped example file is good as it stands, its templates too
    shipped = os.path.join(TOP, "etc", "meccd.conf.in")
    with open(shipped) as f:
        text = f.read().replace("@SYSCONFDIR@", "/etc").replace("@LOCALSTATEDIR@", "/var")
    assert not re.search(r"@[A-Z]+@", text), "an unknown @...@ in " + shipped
    text = text.replace('templates = "/etc/meccd/templates"',
                        'templates = "%s"' % os.path.join(TOP, "etc", "templates"))
    with open(env.conf, "w") as f:
        f.write(text)
    p = env.run("meccd", "--check-config", check=False)
    assert p.returncode == 0, p.stderr


def test_unknown_placeholder_is_a_config_error(env):
    tdir = os.path.join(env.dir, "templates")
    shutil.copytree(os.path.join(TOP, "etc", "templates"), tdir)
    env.settings["templates"] = tdir
    env.write_conf()
    with open(os.path.join(tdir, "waitlisted.html"), "a") as f:
        f.write("<p>See you soon, {{ nmae }}</p>\n")
    p = env.run("meccd", "--check-config", check=False)
    assert p.returncode == EX_CONFIG, p
    assert "waitlisted.html" in p.stderr and "{{nmae}}" in p.stderr, p.stderr
    shutil.copy(os.path.join(TOP, "etc", "templates", "waitlisted.html"), tdir)
    assert env.run("meccd", "--check-config", check=False).returncode == 0

    sid = env.add_session("MECC live session", "2026-09-22 10:30", "2026-09-22 12:00", 2)
    rid = env.register(sid, "Ann", "ann@example.org", "2026-09-01 09:00")
    with open(os.path.join(tdir, "confirmation.txt"), "a") as f:
        f.write("See you soon, {{nmae}}\n")
    for p in (env.run("meccd", "--check-config", check=False),
              env.run("meccd", "--once", now="2026-09-01 09:05", check=False),
              env.ctl("preview", "confirmation", rid, check=False)):
        assert p.returncode == EX_CONFIG, (p.args, p.returncode, p.stderr)
        assert "confirmation.txt" in p.stderr and "{{nmae}}" in p.stderr, p.stderr
        assert "line %d" % line_of(os.path.join(tdir, "confirmation.txt"), "nmae") in p.stderr, \
            p.stderr
    assert env.smtp.messages == []
    assert env.sql("SELECT status FROM registrations WHERE id = ?", rid) == [("new",)]


def test_meccd_usage_errors(env):
    for args in (["--once", "--now", "next tuesday"], ["--frobnicate"], ["extra-argument"]):
        p = env.run("meccd", *args, check=False)
        assert p.returncode == EX_USAGE, (args, p.returncode, p.stderr)
        assert p.stderr, args
    p = env.run("meccd", "--version")
    assert p.stdout.startswith("meccd ")


def test_meccctl_exit_codes(env):
    sid = env.add_session("MECC live session", "2026-09-22 10:30", "2026-09-22 12:00", 2)
    usage = [
        [],
        ["frobnicate"],
        ["session"],
        ["session", "add", "--title", "No times"],
        ["session", "show"],
        ["session", "show", "first"],
        ["register", sid],
        ["register", "--name", "Ann", "--email", "ann@example.org"],
        ["cancel"],
        ["elearning-done"],
        ["outbox", "list", "--status"],
        ["--now", "tomorrow", "status"],
        ["status", "extra"],
    ]
    for args in usage:
        p = env.ctl(*args, check=False)
        assert p.returncode == EX_USAGE, (args, p.returncode, p.stdout, p.stderr)
        assert p.stderr.strip(), args

    bad_data = [
        (["register", sid, "--name", "Ann", "--email", "ann.example.org"], "ann.example.org"),
        (["register", sid, "--name", "Ann", "--email", "ann@example.org, bob@example.org"],
         "not a valid email address"),
        (["register", "999", "--name", "Ann", "--email", "ann@example.org"], "999"),
        (["session", "show", "999"], "999"),
        (["cancel", "999"], "999"),
        (["elearning-done", "nobody@example.org"], "nobody@example.org"),
        (["session", "add", "--title", "T", "--start", "2026-09-31 10:00",
          "--end", "2026-10-01 12:00", "--capacity", "5"], "2026-09-31"),
        (["session", "add", "--title", "T", "--start", "2026-10-01 12:00",
          "--end", "2026-10-01 10:00", "--capacity", "5"], "end"),
        (["session", "add", "--title", "T", "--start", "2026-10-01 10:00",
          "--end", "2026-10-01 12:00", "--capacity", "-1"], "capacity"),
    ]
    for args, reason in bad_data:
        p = env.ctl(*args, check=False)
        assert p.returncode == EX_DATAERR, (args, p.returncode, p.stdout, p.stderr)
        assert reason in p.stderr, (args, p.stderr)
        assert p.stdout == "", (args, p.stdout)
    # nothing above reached the database
    assert env.sql("SELECT count(*) FROM registrations")[0][0] == 0
    assert env.sql("SELECT count(*) FROM sessions")[0][0] == 1

    p = env.ctl("import", "registrations", os.path.join(env.dir, "missing.csv"), check=False)
    assert p.returncode == EX_NOINPUT, (p.returncode, p.stderr)


# ---- what passed the check but misbehaved -------------------------------------------------

def test_what_cannot_work_is_refused_at_the_check(env):
    """Each of these passed `--check-config` once and then misbehaved in production."""
    cases = [
        ("timezone", 'timezone = "Europe"\n', 'timezone = "Europe"'),       # a directory
        ("roster_to", 'roster_to = {""}\n', 'roster_to = {""}'),
        ("roster_to", 'roster_to = {}\n', 'roster_to = {}'),
        ("cancel_url", 'cancel_url = "https://hub.example/c?t={{token}}&x={{bogus}}"\n', "bogus"),
        ("cancel_url", 'cancel_url = "https://hub.example/c?t={{token}}&n={{name}}"\n', "{{name}}"),
    ]
    for option, line, text in cases:
        env.write_conf(line)
        check_rejected(env, option, text)
    env.smtp_settings["connections"] = 1000000
    env.write_conf()
    check_rejected(env, "smtp.connections", "connections = 1000000")
    env.smtp_settings["connections"] = 2
    env.smtp_settings["ca_file"] = "/nonexistent/ca.pem"
    env.write_conf()
    check_rejected(env, "smtp.ca_file", "/nonexistent/ca.pem")
    del env.smtp_settings["ca_file"]
    env.smtp_settings["url"] = "smtp://meccd:secret@127.0.0.1:%d" % env.port
    env.write_conf()
    check_rejected(env, "smtp.url", "secret@")


def test_an_unterminated_comment_or_a_nul_does_not_end_the_file_quietly(env):
    env.write_conf('/* a note\nscan_interval = "often"\n')
    p = env.run("meccd", "--check-config", check=False)
    assert p.returncode == EX_CONFIG, p.stderr
    assert "/*" in p.stderr and "never closed" in p.stderr, p.stderr
    with open(env.conf, "ab") as f:
        f.write(b"\n# fine\x00scan_interval = 0\n")
    p = env.run("meccd", "--check-config", check=False)
    assert p.returncode == EX_CONFIG and "NUL" in p.stderr, p.stderr


def test_templates_must_be_regular_files(env):
    """A directory, a FIFO or a device where a template should be is refused at once (a
    FIFO would hang the check, /dev/zero would never end)."""
    tdir = os.path.join(env.dir, "templates")
    shutil.copytree(os.path.join(TOP, "etc", "templates"), tdir)
    env.settings["templates"] = tdir
    env.write_conf()
    html = os.path.join(tdir, "follow_up.html")
    for make in (lambda: os.mkdir(html), lambda: os.mkfifo(html), lambda: os.symlink("/dev/zero", html)):
        os.unlink(html) if not os.path.isdir(html) or os.path.islink(html) else os.rmdir(html)
        make()
        p = env.run("meccd", "--check-config", check=False, timeout=10)
        assert p.returncode == EX_CONFIG, (p.returncode, p.stderr)
        assert "follow_up.html" in p.stderr and "not a regular file" in p.stderr, p.stderr
