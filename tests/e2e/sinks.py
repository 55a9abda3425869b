"""Test SMTP servers beyond the harness's capture: Postfix's smtp-sink with fault injection,
aiosmtpd with STARTTLS, AUTH or implicit TLS, a fast Message-ID counter, and a private CA
made with openssl. Every server here is stopped by its stop() (use try/finally)."""
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import contextlib
import logging
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from harness import Capture, free_port

# aiosmtpd logs a warning about its own use of a deprecated attribute at every login
logging.getLogger("mail.log").addFilter(
    lambda rec: "login_data is deprecated" not in str(rec.msg))


@contextlib.contextmanager
def quiet_server_log():
    """For a test whose client is meant to hang up mid-handshake: no tracebacks."""
    log = logging.getLogger("mail.log")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)

MID_RE = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]*>)", re.I | re.M)


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nothing listens on 127.0.0.1:%d after %ds" % (port, timeout))


class SmtpSink:
    """smtp-sink on loopback. faults are its options, e.g. ("-r", "RCPT") or
    ("-W", "DATA:30"). Every transaction that reaches the end of data is appended to a dump
    file, so message_ids() tells what the sink saw (accepted or not)."""

    def __init__(self, *faults, port=None):
        self.port = port or free_port()
        self.faults = list(faults)
        self.dir = tempfile.mkdtemp(prefix="meccd-sink-")
        os.chmod(self.dir, 0o777)
        self.dump = os.path.join(self.dir, "dump")
        self.proc = None

    def start(self):
        cmd = [shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        cmd += ["-D", self.dump] + self.faults + ["127.0.0.1:%d" % self.port, "64"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_port(self.port)
        except AssertionError:
            self.stop()
            raise
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc and self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def message_ids(self):
        try:
            with open(self.dump, "rb") as f:
                return [m.decode() for m in MID_RE.findall(f.read())]
        except FileNotFoundError:
            return []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Counter:
    """aiosmtpd handler that only records each message's Message-ID: fast enough for
    thousands of messages."""

    def __init__(self):
        self.ids = []
        self.mails = 0
        self.lock = threading.Lock()

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self.lock:
            self.mails += 1
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        m = MID_RE.search(envelope.content.split(b"\r\n\r\n", 1)[0])
        with self.lock:
            self.ids.append(m.group(1).decode() if m else None)
        return "250 Message accepted"


class Recorder(Capture):
    """The harness's Capture, also counting MAIL FROM commands and AUTH logins seen."""

    def __init__(self):
        super().__init__()
        self.mail_commands = 0
        self.logins = []

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self.lock:
            self.mail_commands += 1
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"


class Server:
    """aiosmtpd on loopback around a handler, with optional STARTTLS (tls_context),
    implicit TLS (ssl_context) and AUTH (users: {login: password})."""

    def __init__(self, handler=None, port=None, users=None, **smtp_kw):
        self.port = port or free_port()
        self.handler = handler or Recorder()
        self.users = users
        self.smtp_kw = smtp_kw
        self.controller = None

    def _auth(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and
              self.users.get(auth_data.login.decode()) == auth_data.password.decode())
        if hasattr(self.handler, "logins"):
            self.handler.logins.append((mechanism, auth_data.login.decode(), ok))
        # handled=False: aiosmtpd sends the 535 itself
        return AuthResult(success=ok, handled=False)

    def start(self):
        kw = dict(self.smtp_kw)
        if self.users is not None:
            kw["authenticator"] = self._auth
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kw)
        self.controller.start()
        return self

    def stop(self):
        if self.controller:
            self.controller.stop()
            self.controller = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def openssl(*args, cwd):
    p = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True,
                       timeout=60)
    if p.returncode:
        raise AssertionError("openssl %s: %s" % (" ".join(args), p.stderr))


class Pki:
    """A private CA and a server certificate for 127.0.0.1 and localhost, in a temp dir."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="meccd-pki-")
        d = self.dir
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        openssl("req", "-x509", *ec, "-days", "2", "-keyout", "ca.key", "-out", "ca.pem",
                "-subj", "/CN=meccd test CA",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
        openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr",
                "-subj", "/CN=localhost", cwd=d)
        with open(os.path.join(d, "ext.cnf"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                    "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-out", "server.pem", "-extfile", "ext.cnf",
                cwd=d)
        self.ca = os.path.join(d, "ca.pem")
        self.cert = os.path.join(d, "server.pem")
        self.key = os.path.join(d, "server.key")

    def context(self):
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class Dovecot:
    """Debian's dovecot (IMAPS, and POP3S when dovecot-pop3d is there) run privately on
    loopback: its own config, state and log in a temp dir, TLS from a test CA, one
    passwd-file user whose Maildir belongs to nobody (dovecot refuses uid 0 as a mail
    user, and its login processes refuse root). deliver() drops a message into the Maildir
    as a delivery agent would; flags() reads what a client set."""

    USER, PASSWORD = "bounces", "s3cret-bounce"

    def __init__(self, pki):
        if not shutil.which("dovecot") and not os.path.exists("/usr/sbin/dovecot"):
            raise RuntimeError("dovecot is not installed (contrib/install-deps.sh test)")
        self.dir = tempfile.mkdtemp(prefix="meccd-dovecot-")
        os.chmod(self.dir, 0o755)
        self.pki = pki
        self.imaps_port, self.pop3s_port = free_port(), free_port()
        self.maildir = os.path.join(self.dir, "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(self.maildir, sub))
        import pwd
        nobody = pwd.getpwnam("nobody")
        for root, dirs, _ in os.walk(self.maildir):
            os.chown(root, nobody.pw_uid, nobody.pw_gid)
        self.uid, self.gid = nobody.pw_uid, nobody.pw_gid
        with open(os.path.join(self.dir, "passwd"), "w") as f:
            f.write("%s:{PLAIN}%s:%d:%d::%s\n" % (self.USER, self.PASSWORD, self.uid, self.gid, self.dir))
        protocols = "imap pop3" if os.path.exists("/usr/lib/dovecot/pop3") else "imap"
        self.pop3 = "pop3" in protocols
        conf = """
instance_name = meccd-test-%(port)d
base_dir = %(d)s/run
state_dir = %(d)s/state
log_path = %(d)s/dovecot.log
protocols = %(protocols)s
listen = 127.0.0.1
ssl = required
ssl_cert = <%(cert)s
ssl_key = <%(key)s
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
mail_location = maildir:%(d)s/Maildir
first_valid_uid = 1
passdb {
  driver = passwd-file
  args = %(d)s/passwd
}
userdb {
  driver = passwd-file
  args = %(d)s/passwd
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = %(port)d
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    port = 0
  }
  inet_listener pop3s {
    port = %(pop3s)d
    ssl = yes
  }
}
service anvil {
  chroot =
}
service stats {
  chroot =
}
""" % {"d": self.dir, "cert": pki.cert, "key": pki.key, "port": self.imaps_port,
       "pop3s": self.pop3s_port, "protocols": protocols}
        self.conf = os.path.join(self.dir, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.imaps_port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("dovecot did not start: %s %s" % (
                        self.proc.stderr.read().decode(errors="replace") if self.proc.poll() is not None else "",
                        self.log()))
                time.sleep(0.1)

    def log(self):
        try:
            with open(os.path.join(self.dir, "dovecot.log")) as f:
                return f.read()
        except OSError:
            return ""

    def deliver(self, name, data):
        """Drop a message (bytes or str) into new/, as a delivery agent does."""
        if isinstance(data, str):
            data = data.encode()
        tmp = os.path.join(self.maildir, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(data)
        os.chown(tmp, self.uid, self.gid)
        os.rename(tmp, os.path.join(self.maildir, "new", name))

    def messages(self):
        """{name: flags} of every message in the Maildir, read or not ("S" in flags: seen)."""
        out = {}
        for sub in ("new", "cur"):
            for f in os.listdir(os.path.join(self.maildir, sub)):
                base, _, info = f.partition(":2,")
                out[base] = info if sub == "cur" else ""
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
