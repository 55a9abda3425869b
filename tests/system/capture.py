"""capture.py - the system test's SMTP relay, run inside the container as a transient unit.

Requires AUTH (over plain text: the test relay is on loopback) with one login and
password, so a message that arrives proves meccd had the password. Each accepted
message is stored as DIR/NNN.eml with DIR/NNN.json beside it (envelope and login);
every AUTH attempt is appended to DIR/auth.log; DIR/ready appears once it listens.

  capture.py PORT DIR LOGIN PASSWORD_FILE
"""
import json
import os
import signal
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Relay:
    def __init__(self, directory, login, password_file):
        self.dir = directory
        self.login = login.encode()
        self.password_file = password_file
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        """aiosmtpd authenticator: one account."""
        is_lp = isinstance(auth_data, LoginPassword)
        # read at each login: a test changes the account's password mid-run
        with open(self.password_file) as f:
            password = f.read().strip().encode()
        ok = is_lp and auth_data.login == self.login and auth_data.password == password
        login = auth_data.login.decode(errors="replace") if is_lp else ""
        with open(os.path.join(self.dir, "auth.log"), "a") as f:
            f.write("%s %s %s\n" % (mechanism, login, "ok" if ok else "refused"))
        return AuthResult(success=ok, auth_data=auth_data if ok else None)

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            base = os.path.join(self.dir, "%03d" % self.count)
        login = None
        if isinstance(session.auth_data, LoginPassword):
            login = session.auth_data.login.decode(errors="replace")
        with open(base + ".json", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                       "login": login}, f)
        # the .eml appears whole or not at all: the test polls for it
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 Message accepted"


def main():
    port, directory, login, password_file = sys.argv[1:5]
    os.makedirs(directory, exist_ok=True)
    relay = Relay(directory, login, password_file)
    controller = Controller(relay, hostname="127.0.0.1", port=int(port),
                            authenticator=relay, auth_required=True,
                            auth_require_tls=False)
    controller.start()
    open(os.path.join(directory, "ready"), "w").close()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    done.wait()
    controller.stop()


if __name__ == "__main__":
    main()
