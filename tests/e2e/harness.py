"""End-to-end harness: real meccd/meccctl binaries, a real SQLite file, a real SMTP
server on loopback (aiosmtpd, in this process). Run as: harness.py test_file.py
Every function named test_* in the file is run with a fresh Env and reported in TAP."""
import email
import email.policy
import importlib.util
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("MECCD_BUILD", os.path.join(TOP, "build"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Capture:
    """aiosmtpd handler keeping every accepted message; replies can be scripted per
    recipient: capture.replies["x@example.org"] = "550 5.1.1 no such user"."""

    def __init__(self):
        self.messages = []
        self.replies = {}
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.replies.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                                  "raw": envelope.content, "msg": msg})
        return "250 Message accepted"


class SmtpServer:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.capture = Capture()
        self.controller = None

    def start(self):
        self.controller = Controller(self.capture, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self):
        if self.controller:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self):
        with self.capture.lock:
            return list(self.capture.messages)


def conf_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "{" + ", ".join(conf_value(x) for x in v) + "}"
    return json.dumps(v)


class Env:
    def __init__(self, smtp=True, **overrides):
        self.dir = tempfile.mkdtemp(prefix="meccd-e2e-")
        self.db = os.path.join(self.dir, "meccd.db")
        self.conf = os.path.join(self.dir, "meccd.conf")
        self.smtp = SmtpServer().start() if smtp else None
        self.port = self.smtp.port if smtp else free_port()
        self.settings = {
            "timezone": "Europe/London",
            "database": self.db,
            "templates": os.path.join(TOP, "etc", "templates"),
            "scan_interval": 60,
            "organisation": "Oxfordshire MECC Training",
            "elearning_url": "https://learn.example.org/mecc",
            "roster_to": ["mecc-team@example.org"],
        }
        self.smtp_settings = {
            "url": "smtp://127.0.0.1:%d" % self.port,
            "tls": "none",
            "from": "MECC Training <mecc@example.org>",
            "timeout": 5,
        }
        self.smtp_settings.update(overrides.pop("smtp_settings", {}))
        self.reminders = overrides.pop("reminders", None)
        self.settings.update(overrides)
        self.write_conf()

    def write_conf(self, extra=""):
        lines = ["%s = %s" % (k, conf_value(v)) for k, v in self.settings.items()]
        if self.reminders:
            lines.append("reminders {")
            lines += ["  %s = %s" % (k, conf_value(v)) for k, v in self.reminders.items()]
            lines.append("}")
        lines.append("smtp {")
        lines += ["  %s = %s" % (k, conf_value(v)) for k, v in self.smtp_settings.items()]
        lines.append("}")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n" + extra)

    def close(self):
        if self.smtp:
            self.smtp.stop()
        if os.environ.get("KEEP") is None:
            shutil.rmtree(self.dir, ignore_errors=True)

    def run(self, binary, *args, now=None, check=True, env=None, timeout=60):
        cmd = [os.path.join(BUILD, binary), "-c", self.conf]
        if now:
            cmd += ["--now", now]
        cmd += [str(a) for a in args]
        e = dict(os.environ)
        e.pop("NOTIFY_SOCKET", None)
        if env:
            e.update(env)
        p = subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("%s exited %d\nstdout: %s\nstderr: %s"
                                 % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
        return p

    def ctl(self, *args, **kw):
        return self.run("meccctl", *args, **kw)

    def give_to_nobody(self):
        """The state directory and the database as an unprivileged service user's (nobody),
        the configuration readable by it: for runs under setpriv."""
        os.chmod(self.conf, 0o644)
        for name in os.listdir(self.dir):
            if name.startswith("meccd.db"):
                os.chown(os.path.join(self.dir, name), 65534, 65534)
        os.chown(self.dir, 65534, 65534)

    def ctl_json(self, *args, **kw):
        return json.loads(self.ctl("--json", *args, **kw).stdout)

    def scan(self, now, **kw):
        return self.run("meccd", "--once", now=now, **kw)

    def sql(self, query, *params):
        con = sqlite3.connect(self.db, timeout=10)
        try:
            cur = con.execute(query, params)
            rows = cur.fetchall()
            con.commit()
            return rows
        finally:
            con.close()

    def add_session(self, title, start, end, capacity, now="2026-08-01 09:00", *extra):
        return int(self.ctl("session", "add", "--title", title, "--start", start,
                            "--end", end, "--capacity", capacity, *extra, now=now).stdout)

    def register(self, sid, name, addr, now):
        return int(self.ctl("register", sid, "--name", name, "--email", addr, now=now).stdout)

    def kind_of(self, m):
        """The outbox kind and occasion of a captured message, by its Message-ID."""
        rows = self.sql("SELECT kind, occasion FROM outbox WHERE message_id = ?",
                        str(m["msg"]["Message-ID"]).strip())
        return rows[0] if rows else (None, None)

    def mails(self, to=None, kind=None):
        """Captured messages, optionally for one recipient and one kind."""
        out = []
        for m in self.smtp.messages:
            if to and to.lower() not in [r.lower() for r in m["to"]]:
                continue
            if kind and self.kind_of(m)[0] != kind:
                continue
            out.append(m)
        return out

    def kinds(self, to):
        return [self.kind_of(m)[0] for m in self.mails(to=to)]


class Skip(Exception):
    """Raise to report a test as skipped, with the reason."""


def built_with_asan():
    """True when the binaries under test carry AddressSanitizer (valgrind cannot run them)."""
    with open(os.path.join(BUILD, "meccd"), "rb") as f:
        return b"__asan_init" in f.read()


def main():
    path = sys.argv[1]
    spec = importlib.util.spec_from_file_location("t", path)
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    spec.loader.exec_module(mod)
    tests = [(n, f) for n, f in vars(mod).items() if n.startswith("test_") and callable(f)]
    tests.sort(key=lambda t: t[1].__code__.co_firstlineno)
    print("1..%d" % len(tests))
    failed = 0
    for i, (name, fn) in enumerate(tests, 1):
        t0 = time.monotonic()
        env = None
        try:
            argc = fn.__code__.co_argcount
            if argc:
                env = Env(**getattr(fn, "env_args", {}))
                fn(env)
            else:
                fn()
            print("ok %d - %s (%.1fs)" % (i, name, time.monotonic() - t0), flush=True)
        except Exception as e:
            # the test file imports this module again as "harness": match Skip by name
            if type(e).__name__ == "Skip":
                print("ok %d - %s # SKIP %s" % (i, name, e), flush=True)
                continue
            failed += 1
            print("not ok %d - %s" % (i, name), flush=True)
            for line in traceback.format_exc().splitlines():
                print("#  " + line, flush=True)
        finally:
            if env:
                env.close()
    sys.exit(1 if failed else 0)


def with_env(**kw):
    """Decorator: build the test's Env with these settings."""
    def deco(fn):
        fn.env_args = kw
        return fn
    return deco


if __name__ == "__main__":
    main()
