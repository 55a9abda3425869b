"""What ships beside the binaries, checked with the tools that will read it: the unit
(systemd-analyze verify and security), sysusers and tmpfiles (applied to a scratch root),
the journal catalog (journalctl --update-catalog) and the man pages (groff). Each is
checked as `make install` writes it out from its .in file, with the default paths."""
import atexit
import os
import re
import shutil
import subprocess
import tempfile

from harness import BUILD, TOP


def generate():
    """`make gen` into a scratch build directory: the files as `make install` installs
    them with the default PREFIX, without building anything."""
    b = tempfile.mkdtemp(prefix="meccd-gen-")
    atexit.register(shutil.rmtree, b, ignore_errors=True)
    p = subprocess.run(["make", "-s", "-C", TOP, "gen", "B=" + b], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return os.path.join(b, "gen")


GEN = generate()
UNIT = os.path.join(GEN, "systemd", "meccd.service")
CATALOG = os.path.join(GEN, "systemd", "meccd.catalog")
SYSUSERS = os.path.join(GEN, "systemd", "meccd.sysusers")
TMPFILES = os.path.join(GEN, "systemd", "meccd.tmpfiles")
MAN_PAGES = ["meccd.8", "meccctl.8", "meccd.conf.5", "meccd-database.5"]
# the fields meccd adds to its journal entries (journal.c), usable as @FIELD@ in the catalog
LOGGED_FIELDS = {"MECCD_SESSION", "MECCD_REGISTRATION", "MECCD_KIND", "MECCD_OUTBOX"}


def run(*cmd, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=60)


def unit_settings():
    out = {}
    for line in open(UNIT):
        m = re.match(r"^([A-Za-z]+)=(.*)$", line.strip())
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


def makefile_default(var):
    for line in open(os.path.join(TOP, "Makefile")):
        m = re.match(r"^%s\s*\?=\s*(\S+)" % var, line)
        if m:
            return m.group(1)
    raise AssertionError("no %s in the Makefile" % var)


def message_ids():
    ids = {}
    for line in open(os.path.join(TOP, "src", "journal.h")):
        m = re.match(r'#define\s+(MID_\w+)\s+"([0-9a-f]{32})"', line)
        if m:
            ids[m.group(2)] = m.group(1)
    assert len(ids) >= 10, "too few MID_ defines found in src/journal.h: %r" % ids
    return ids


def catalog_entries():
    entries, cur = {}, None
    for line in open(CATALOG):
        m = re.match(r"^-- ([0-9a-f]{32})\s*$", line)
        if m:
            cur = entries.setdefault(m.group(1), [])
        elif cur is not None:
            cur.append(line.rstrip("\n"))
    return entries


class Root:
    """A scratch directory used as --root= for the systemd tools."""

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="meccd-root-")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)

    def p(self, rel):
        return os.path.join(self.path, rel.lstrip("/"))

    def put(self, src, rel, mode=0o644):
        os.makedirs(os.path.dirname(self.p(rel)), exist_ok=True)
        shutil.copy(src, self.p(rel))
        os.chmod(self.p(rel), mode)


def verify_in_root(with_binary):
    """systemd-analyze verify meccd.service in a root laid out as `make install` does,
    with the host's units (targets) beside it and man pages where man(1) finds them."""
    with Root() as root:
        shutil.copytree("/lib/systemd/system", root.p("/usr/lib/systemd/system"), symlinks=True)
        root.put(UNIT, "/usr/lib/systemd/system/meccd.service")
        for tool in ("/bin/kill", "/usr/bin/env"):
            if os.path.exists(tool):
                root.put(tool, tool, 0o755)
            else:  # verify only asks that ExecReload= names an executable
                os.makedirs(os.path.dirname(root.p(tool)), exist_ok=True)
                with open(root.p(tool), "w") as f:
                    f.write("#!/bin/sh\n")
                os.chmod(root.p(tool), 0o755)
        exec_start = unit_settings()["ExecStart"][0].split()[0]
        if with_binary:
            root.put(os.path.join(BUILD, "meccd"), exec_start, 0o755)
        for page in MAN_PAGES:
            root.put(os.path.join(GEN, "man", page), "/man/man%s/%s" % (page[-1], page))
        return run("systemd-analyze", "verify", "--root=" + root.path, "meccd.service",
                   env={"MANPATH": root.p("/man")})


def test_unit_verifies_without_a_word():
    p = verify_in_root(with_binary=True)
    assert p.returncode == 0 and p.stderr == "", "verify said:\n" + p.stderr
    # the same check without the daemon in place must complain, or it proves nothing
    p = verify_in_root(with_binary=False)
    assert "is not executable" in p.stderr, "verify did not notice a missing ExecStart binary"


def test_unit_runs_what_make_install_installs():
    s = unit_settings()
    assert s["ExecStart"] == [makefile_default("PREFIX") + "/sbin/meccd"], s["ExecStart"]
    assert s["Type"] == ["notify"]
    # the new configuration is checked before the daemon is told (issue 14)
    assert s["ExecReload"] == ["/usr/bin/env -u CREDENTIALS_DIRECTORY MECCD_LOG=stderr %s/sbin/meccd --check-config"
                               % makefile_default("PREFIX"), "/bin/kill -HUP $MAINPID"], s["ExecReload"]
    assert s["User"] == ["meccd"] and s["Group"] == ["meccd"]
    # shared with the group meccd, for the booking website (meccd-database(5))
    assert s["StateDirectory"] == ["meccd"] and s["StateDirectoryMode"] == ["2770"]
    assert s["UMask"] == ["0007"]
    assert s["LoadCredential"] == ["smtp-password:/etc/meccd/smtp-password"]
    assert s["Restart"] == ["on-failure"]
    assert "WatchdogSec" in s


def test_unit_exposure_at_most_1_5():
    p = run("systemd-analyze", "security", "--offline=yes", "--no-pager", UNIT)
    m = re.search(r"Overall exposure level for meccd\.service: ([0-9.]+)", p.stdout)
    assert m, "no exposure line:\n" + p.stdout + p.stderr
    assert float(m.group(1)) <= 1.5, "exposure %s:\n%s" % (m.group(1), p.stdout)
    assert p.stderr == "", p.stderr


def test_catalog_has_an_entry_per_message_id():
    ids = message_ids()
    entries = catalog_entries()
    missing = sorted(ids[i] for i in ids if i not in entries)
    assert not missing, "no catalog entry for " + ", ".join(missing)
    unknown = sorted(set(entries) - set(ids))
    assert not unknown, "catalog entries for ids journal.h does not define: %s" % unknown
    for mid, lines in entries.items():
        text = "\n".join(lines)
        assert re.search(r"^Subject: \S", text, re.M), "%s has no Subject" % ids[mid]
        assert re.search(r"^Defined-By: meccd$", text, re.M), "%s has no Defined-By" % ids[mid]
        assert re.search(r"^Support: \S", text, re.M), "%s has no Support" % ids[mid]
        body = text.split("\n\n", 1)[1] if "\n\n" in text else ""
        assert len(body.split()) >= 15, "%s explains too little" % ids[mid]
        for var in re.findall(r"@(\w+)@", body):
            assert var in LOGGED_FIELDS, "%s uses @%s@, a field meccd does not log" % (ids[mid], var)


def test_catalog_compiles_with_journalctl():
    ids = message_ids()
    with Root() as root:
        root.put(CATALOG, "/usr/lib/systemd/catalog/meccd.catalog")
        p = run("journalctl", "--root=" + root.path, "--update-catalog")
        assert p.returncode == 0 and p.stderr == "", p.stderr
        assert os.path.getsize(root.p("/var/lib/systemd/catalog/database")) > 0
        p = run("journalctl", "--root=" + root.path, "--list-catalog")
        listed = {line.split()[0] for line in p.stdout.splitlines() if line.strip()}
        assert listed == set(ids), "listed %s" % sorted(listed)
        # a broken catalog must be caught by the same command
        with open(root.p("/usr/lib/systemd/catalog/broken.catalog"), "w") as f:
            f.write("Subject: no id before me\n")
        p = run("journalctl", "--root=" + root.path, "--update-catalog")
        assert p.returncode != 0, "journalctl accepted a broken catalog"


def test_sysusers_and_tmpfiles_make_the_layout():
    with Root() as root:
        os.makedirs(root.p("/etc"))
        p = run("systemd-sysusers", "--root=" + root.path, SYSUSERS)
        assert p.returncode == 0, p.stderr
        users = {l.split(":")[0]: l.strip().split(":") for l in open(root.p("/etc/passwd"))}
        groups = {l.split(":")[0]: l.strip().split(":") for l in open(root.p("/etc/group"))}
        assert "meccd" in users and "meccd" in groups
        uid, gid = int(users["meccd"][2]), int(groups["meccd"][2])
        assert 0 < uid < 1000, "meccd is not a system user: uid %d" % uid
        assert users["meccd"][5] == "/var/lib/meccd"
        assert users["meccd"][6].endswith("nologin")

        # what `make install` leaves: config 0640 root:root, a password file someone made 0644
        os.makedirs(root.p("/etc/meccd"))
        root.put(os.path.join(GEN, "etc", "meccd.conf"), "/etc/meccd/meccd.conf", 0o640)
        with open(root.p("/etc/meccd/smtp-password"), "w") as f:
            f.write("secret\n")
        os.chmod(root.p("/etc/meccd/smtp-password"), 0o644)
        p = run("systemd-tmpfiles", "--root=" + root.path, "--create", TMPFILES)
        assert p.returncode == 0 and p.stderr == "", p.stderr

        def owner_mode(rel):
            st = os.stat(root.p(rel))
            return st.st_uid, st.st_gid, st.st_mode & 0o7777

        assert owner_mode("/var/lib/meccd") == (uid, gid, 0o2770)
        assert owner_mode("/etc/meccd") == (0, 0, 0o755)
        assert owner_mode("/etc/meccd/meccd.conf") == (0, gid, 0o640), "meccd could not read its config"
        assert owner_mode("/etc/meccd/smtp-password") == (0, 0, 0o600)


def test_man_pages_are_warning_free():
    for page in MAN_PAGES:
        path = os.path.join(GEN, "man", page)
        assert os.path.exists(path), "missing man page " + page
        p = run("groff", "-man", "-ww", "-z", path)
        assert p.returncode == 0 and p.stderr == "", "%s:\n%s" % (page, p.stderr)
