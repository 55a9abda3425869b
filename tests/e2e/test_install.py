"""`make install` as packagers and admins run it, into a scratch DESTDIR, without root:
PREFIX=/usr gives a unit that runs the binary it installed (systemd-analyze verify says
nothing), no file keeps an @...@ placeholder, an edited template is never overwritten
(the new one goes beside it as NAME.dist), and `make uninstall` leaves only the admin's
files."""
import os
import re
import shutil
import subprocess
import tempfile

from harness import TOP, Skip


class Dest:
    """A DESTDIR and a build directory of its own for the generated files, so the test
    neither touches the tree's build/ nor compiles: `-o all` takes the binaries as they
    are (`make check` has just built them)."""

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="meccd-destdir-")
        self.b = tempfile.mkdtemp(prefix="meccd-b-")

    def __enter__(self):
        for binary in ("meccd", "meccctl"):
            if not os.path.exists(os.path.join(TOP, binary)):
                raise Skip("no ./%s: run make first" % binary)
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)
        shutil.rmtree(self.b, ignore_errors=True)

    def p(self, rel):
        return os.path.join(self.path, rel.lstrip("/"))

    def make(self, target, *args):
        p = subprocess.run(["make", "-s", "-C", TOP, "-o", "all", target, "DESTDIR=" + self.path,
                            "B=" + self.b] + list(args), capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, "make %s failed:\n%s%s" % (target, p.stdout, p.stderr)
        return p.stdout

    def files(self):
        out = []
        for d, _, names in os.walk(self.path):
            out += [os.path.relpath(os.path.join(d, n), self.path) for n in names]
        return sorted(out)


def unit_lines(path, key):
    return [l.split("=", 1)[1].strip() for l in open(path) if l.startswith(key + "=")]


def verify(dest, unit):
    """systemd-analyze verify in DESTDIR as a root, with the host's targets beside the unit
    and the man pages where man(1) looks: stderr must be empty."""
    shutil.copytree("/lib/systemd/system", dest.p("/usr/lib/systemd/system"), symlinks=True,
                    dirs_exist_ok=True, ignore=shutil.ignore_patterns("meccd.service"))
    for tool in ("/bin/kill", "/usr/bin/env"):
        os.makedirs(os.path.dirname(dest.p(tool)), exist_ok=True)
        shutil.copy(tool, dest.p(tool))
    return subprocess.run(["systemd-analyze", "verify", "--root=" + dest.path, unit],
                          capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, MANPATH=dest.p("/usr/share/man")))


def test_prefix_usr_unit_runs_the_installed_binary():
    with Dest() as d:
        d.make("install", "PREFIX=/usr")
        unit = d.p("/usr/lib/systemd/system/meccd.service")
        assert unit_lines(unit, "ExecStart") == ["/usr/sbin/meccd"]
        reload = unit_lines(unit, "ExecReload")
        assert reload[0].endswith(" /usr/sbin/meccd --check-config"), reload
        assert os.access(d.p("/usr/sbin/meccd"), os.X_OK)
        assert not os.path.exists(d.p("/usr/local")), "PREFIX=/usr installed into /usr/local"
        for rel in ("usr/share/man/man5/meccd-database.5", "usr/share/man/man8/meccd.8",
                    "usr/lib/sysusers.d/meccd.conf", "usr/lib/tmpfiles.d/meccd.conf",
                    "usr/lib/systemd/catalog/meccd.catalog", "etc/meccd/meccd.conf",
                    "usr/share/bash-completion/completions/meccctl"):
            assert os.path.exists(d.p(rel)), "not installed: " + rel
        p = verify(d, "meccd.service")
        assert p.returncode == 0 and p.stderr == "", "verify said:\n" + p.stderr


def test_no_placeholder_left_and_paths_follow_the_variables():
    with Dest() as d:
        d.make("install", "PREFIX=/opt/mecc", "SYSCONFDIR=/opt/mecc/etc", "LOCALSTATEDIR=/srv")
        for rel in d.files():
            if rel.startswith("opt/mecc/sbin/"):
                continue
            text = open(d.p(rel), encoding="utf-8").read()
            left = set(re.findall(r"@[A-Z_]+@", text)) - {"@MECCD_SESSION@", "@MECCD_REGISTRATION@",
                                                          "@MECCD_KIND@", "@MECCD_OUTBOX@"}
            assert not left, "%s keeps %s" % (rel, left)
        unit = open(d.p("/usr/lib/systemd/system/meccd.service")).read()
        assert "ExecStart=/opt/mecc/sbin/meccd\n" in unit
        assert "LoadCredential=smtp-password:/opt/mecc/etc/meccd/smtp-password\n" in unit
        tmpfiles = open(d.p("/usr/lib/tmpfiles.d/meccd.conf")).read()
        assert re.search(r"^d /srv/lib/meccd +2770 meccd meccd", tmpfiles, re.M), tmpfiles
        conf = open(d.p("/opt/mecc/etc/meccd/meccd.conf")).read()
        assert 'database = "/srv/lib/meccd/meccd.db"' in conf
        assert 'templates = "/opt/mecc/etc/meccd/templates"' in conf
        page = open(d.p("/opt/mecc/share/man/man8/meccd.8")).read()
        assert "/opt/mecc/etc/meccd/meccd.conf" in page and "/etc/meccd/" not in page.replace("/opt/mecc/etc/meccd/", "")


def test_edited_template_kept_new_one_beside_it():
    with Dest() as d:
        out = d.make("install")
        assert "differs" not in out, out
        tpl = d.p("/etc/meccd/templates/confirmation.txt")
        conf = d.p("/etc/meccd/meccd.conf")
        with open(tpl, "a") as f:
            f.write("See you there, from the Banbury team.\n")
        with open(conf, "a") as f:
            f.write('organisation = "Banbury MECC"\n')
        mine = open(tpl).read()

        out = d.make("install")
        assert open(tpl).read() == mine, "make install overwrote an edited template"
        assert open(conf).read().endswith('organisation = "Banbury MECC"\n'), "config overwritten"
        shipped = open(os.path.join(TOP, "etc", "templates", "confirmation.txt")).read()
        assert open(tpl + ".dist").read() == shipped
        assert tpl + ".dist" in out and "differs" in out, out
        dists = [f for f in d.files() if f.endswith(".dist")]
        assert dists == ["etc/meccd/templates/confirmation.txt.dist"], dists

        # merged by hand: the .dist goes away at the next install, quietly
        shutil.copy(tpl + ".dist", tpl)
        out = d.make("install")
        assert "differs" not in out, out
        assert not os.path.exists(tpl + ".dist")


def test_uninstall_leaves_only_the_admins_files():
    with Dest() as d:
        d.make("install", "PREFIX=/usr")
        out = d.make("uninstall", "PREFIX=/usr")
        assert "left" in out, out
        left = [f for f in d.files() if not f.startswith("etc/meccd/")]
        assert left == [], "left behind: %s" % left
