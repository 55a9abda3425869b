"""SPEC 14, bounces back from the mail system: a real IMAP and POP3 server (Debian's dovecot,
run privately on loopback with TLS from a test CA) holds bounces shaped as Postfix and
Microsoft Exchange write them, a delay notice, an out-of-office reply and unrelated mail;
`meccd --once` looks at the mailbox before its scan. A permanent failure of an email meccd
sent marks the registration unreachable; nothing else changes anything; every message stays
in the mailbox, flagged seen, and a second look changes nothing. The journal names nobody."""
import os

from sinks import Dovecot, Pki

T0 = "2026-08-01 09:00"
LOG = {"MECCD_LOG": "stderr"}


def postfix(addr, mid, headers_only=False):
    returned = ("Content-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\n"
                if headers_only else
                "Content-Description: Undelivered Message\r\nContent-Type: message/rfc822\r\n")
    return (
        "Return-Path: <>\r\n"
        "Date: Sat, 1 Aug 2026 09:01:02 +0100 (BST)\r\n"
        "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "To: bounces@example.org\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status;\r\n"
        "\tboundary=\"4Qx1yZ2abc.1785571262/mx.example.org\"\r\n"
        "Message-Id: <20260801080102.4Qx1yZ2abc@mx.example.org>\r\n"
        "\r\n"
        "This is a MIME-encapsulated message.\r\n"
        "\r\n"
        "--4Qx1yZ2abc.1785571262/mx.example.org\r\n"
        "Content-Description: Notification\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "This is the mail system at host mx.example.org.\r\n"
        "\r\n"
        "<%(a)s>: host mx.example.net[192.0.2.7] said: 550 5.1.1 <%(a)s>:\r\n"
        "    Recipient address rejected: User unknown (in reply to RCPT TO command)\r\n"
        "\r\n"
        "--4Qx1yZ2abc.1785571262/mx.example.org\r\n"
        "Content-Description: Delivery report\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n"
        "X-Postfix-Queue-ID: 4Qx1yZ2abc\r\n"
        "X-Postfix-Sender: rfc822; mecc@example.org\r\n"
        "Arrival-Date: Sat,  1 Aug 2026 09:01:01 +0100 (BST)\r\n"
        "\r\n"
        "Final-Recipient: rfc822; %(a)s\r\n"
        "Original-Recipient: rfc822;%(a)s\r\n"
        "Action: failed\r\n"
        "Status: 5.1.1\r\n"
        "Remote-MTA: dns; mx.example.net\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <%(a)s>: Recipient address rejected: User\r\n"
        "    unknown\r\n"
        "\r\n"
        "--4Qx1yZ2abc.1785571262/mx.example.org\r\n"
        "%(returned)s"
        "\r\n"
        "From: MECC Training <mecc@example.org>\r\n"
        "To: %(a)s\r\n"
        "%(mid)s"
        "Subject: Your place\r\n"
        "\r\n"
        "--4Qx1yZ2abc.1785571262/mx.example.org--\r\n") % {
            "a": addr, "returned": returned, "mid": "Message-ID: %s\r\n" % mid if mid else ""}


def exchange(addr, mid):
    return (
        "From: Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@contoso.com>\r\n"
        "To: <bounces@example.org>\r\n"
        "Date: Sat, 1 Aug 2026 08:05:00 +0000\r\n"
        "Content-Type: multipart/report; report-type=\"delivery-status\";\r\n"
        "\tboundary=\"b2d9a0f2-7c1e-4b8e-9d1f-0e8b7c6a5d4e\"\r\n"
        "X-MS-Exchange-Message-Is-Ndr:\r\n"
        "Message-ID: <a1b2c3d4-e5f6@AM0PR01MB1234.eurprd01.prod.exchangelabs.com>\r\n"
        "In-Reply-To: %(mid)s\r\n"
        "Subject: Undeliverable: Your place\r\n"
        "MIME-Version: 1.0\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "\r\n"
        "--b2d9a0f2-7c1e-4b8e-9d1f-0e8b7c6a5d4e\r\n"
        "Content-Type: multipart/alternative; differences=Content-Type;\r\n"
        "\tboundary=\"7f3e8d2c-1a0b-4c5d-8e9f-a1b2c3d4e5f6\"\r\n"
        "\r\n"
        "--7f3e8d2c-1a0b-4c5d-8e9f-a1b2c3d4e5f6\r\n"
        "Content-Type: text/plain; charset=\"us-ascii\"\r\n"
        "\r\n"
        "Your message to %(a)s couldn't be delivered.\r\n"
        "--7f3e8d2c-1a0b-4c5d-8e9f-a1b2c3d4e5f6\r\n"
        "Content-Type: text/html; charset=\"us-ascii\"\r\n"
        "\r\n"
        "<html><body>Your message couldn't be delivered.</body></html>\r\n"
        "--7f3e8d2c-1a0b-4c5d-8e9f-a1b2c3d4e5f6--\r\n"
        "\r\n"
        "--b2d9a0f2-7c1e-4b8e-9d1f-0e8b7c6a5d4e\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.exchangelabs.com\r\n"
        "Received-From-MTA: dns;relay.example.org\r\n"
        "Arrival-Date: Sat, 1 Aug 2026 08:04:58 +0000\r\n"
        "\r\n"
        "Final-Recipient: rfc822;%(a)s\r\n"
        "Action: failed\r\n"
        "Status: 5.1.10\r\n"
        "Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup\r\n"
        "\r\n"
        "--b2d9a0f2-7c1e-4b8e-9d1f-0e8b7c6a5d4e\r\n"
        "Content-Type: text/rfc822-headers\r\n"
        "\r\n"
        "From: MECC Training <mecc@example.org>\r\n"
        "To: %(a)s\r\n"
        "Message-ID: %(mid)s\r\n"
        "\r\n"
        "--b2d9a0f2-7c1e-4b8e-9d1f-0e8b7c6a5d4e--\r\n") % {"a": addr, "mid": mid}


def delayed(addr, mid):
    return (postfix(addr, mid).replace("Action: failed", "Action: delayed")
            .replace("Status: 5.1.1", "Status: 4.4.1")
            .replace("Subject: Undelivered Mail Returned to Sender", "Subject: Delayed Mail (still being retried)"))


def out_of_office(addr, mid):
    return ("From: <%s>\r\nTo: bounces@example.org\r\nSubject: Automatic reply: Your place\r\n"
            "Auto-Submitted: auto-replied\r\nIn-Reply-To: %s\r\nContent-Type: text/plain\r\n\r\n"
            "I am away until Monday.\r\nAction: failed\r\nStatus: 5.1.1\r\n" % (addr, mid))


UNRELATED = ("From: someone@example.com\r\nTo: bounces@example.org\r\nSubject: hello\r\n"
             "Content-Type: text/plain\r\n\r\nFinal-Recipient: rfc822; x@example.net\r\n")


def mids(env):
    return {a: m for a, m in env.sql(
        "SELECT recipient, message_id FROM outbox WHERE kind = 'confirmation' AND status = 'sent'")}


def unreachable(env):
    return {a: (reason, at) for a, reason, at in env.sql(
        "SELECT email, unreachable_reason, unreachable_at FROM registrations WHERE unreachable_at IS NOT NULL")}


def use_mailbox(env, dovecot, pki, url):
    pw = os.path.join(env.dir, "bounce-password")
    with open(pw, "w") as f:
        f.write(Dovecot.PASSWORD + "\n")
    os.chmod(pw, 0o600)
    env.write_conf('bounces {\n  url = "%s"\n  username = "%s"\n  password_file = "%s"\n'
                   '  ca_file = "%s"\n}\n' % (url, Dovecot.USER, pw, pki.ca))


NAMES = ["ann@exmaple.org", "bob@contoso.com", "cy@example.net", "dee@example.net", "eve@exmaple.org",
         "fay@example.org"]


def book_and_send(env):
    sid = env.add_session("S", "2026-09-22 10:30", "2026-09-22 12:00", 10, T0)
    regs = {a: env.register(sid, a.split("@")[0].title(), a, T0) for a in NAMES}
    env.scan(T0)
    m = mids(env)
    assert sorted(m) == sorted(NAMES), m
    return regs, m


def test_imaps_bounces(env):
    regs, m = book_and_send(env)
    pki = Pki()
    dovecot = Dovecot(pki)
    try:
        dovecot.deliver("1.postfix", postfix("ann@exmaple.org", m["ann@exmaple.org"]))
        dovecot.deliver("2.exchange", exchange("bob@contoso.com", m["bob@contoso.com"]))
        dovecot.deliver("3.delayed", delayed("cy@example.net", m["cy@example.net"]))
        dovecot.deliver("4.ooo", out_of_office("dee@example.net", m["dee@example.net"]))
        # no Message-ID to go by: the address, among emails sent within give_up_after
        dovecot.deliver("5.postfix-no-id", postfix("eve@exmaple.org", None))
        dovecot.deliver("6.unrelated", UNRELATED)
        # a bounce of an email meccd never sent, to an address it never wrote to
        dovecot.deliver("7.stranger", postfix("zed@example.com", "<nothing.of.ours@example.org>"))
        use_mailbox(env, dovecot, pki, "imaps://127.0.0.1:%d/INBOX" % dovecot.imaps_port)
        p = env.scan("2026-08-01 09:10", env=LOG)
        u = unreachable(env)
        assert sorted(u) == ["ann@exmaple.org", "bob@contoso.com", "eve@exmaple.org"], (u, p.stderr)
        assert u["ann@exmaple.org"][0] == ("5.1.1 smtp; 550 5.1.1 <ann@exmaple.org>: Recipient address "
                                           "rejected: User unknown"), u
        assert u["bob@contoso.com"][0].startswith("5.1.10 smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound"), u
        # the journal names nobody: the diagnostic is logged with its address taken out
        for a in NAMES:
            assert a not in p.stderr and a.split("@")[0].title() not in p.stderr, p.stderr
        assert "registration %d is unreachable: bounced, 5.1.1 smtp; 550 5.1.1 <[address]>" % regs["ann@exmaple.org"] \
            in p.stderr, p.stderr
        # every message is still there, and seen
        assert dovecot.messages() == {n: "S" for n in ["1.postfix", "2.exchange", "3.delayed", "4.ooo",
                                                        "5.postfix-no-id", "6.unrelated", "7.stranger"]}, \
            dovecot.messages()
        # an unreachable registration keeps its place
        assert env.sql("SELECT count(*) FROM registrations WHERE status = 'booked'") == [(6,)]

        # a second look changes nothing; a new delay notice for fay changes nothing either
        dovecot.deliver("8.delayed", delayed("fay@example.org", m["fay@example.org"]))
        p = env.scan("2026-08-01 09:20", env=LOG)
        assert unreachable(env) == u
        assert dovecot.messages()["8.delayed"] == "S"
        assert len(dovecot.messages()) == 8
    finally:
        dovecot.stop()
        pki.close()


def test_pop3s_bounces(env):
    regs, m = book_and_send(env)
    pki = Pki()
    dovecot = Dovecot(pki)
    try:
        if not dovecot.pop3:
            from harness import Skip
            raise Skip("dovecot-pop3d is not installed")
        dovecot.deliver("1.exchange", exchange("bob@contoso.com", m["bob@contoso.com"]))
        dovecot.deliver("2.ooo", out_of_office("dee@example.net", m["dee@example.net"]))
        use_mailbox(env, dovecot, pki, "pop3s://127.0.0.1:%d" % dovecot.pop3s_port)
        env.scan("2026-08-01 09:10", env=LOG)
        u = unreachable(env)
        assert sorted(u) == ["bob@contoso.com"], u
        assert env.sql("SELECT count(*) FROM bounce_seen") == [(2,)]
        # POP3 deletes nothing; the next look reads only what is new
        dovecot.deliver("3.postfix", postfix("ann@exmaple.org", m["ann@exmaple.org"]))
        env.scan("2026-08-01 09:20", env=LOG)
        assert sorted(unreachable(env)) == ["ann@exmaple.org", "bob@contoso.com"]
        assert env.sql("SELECT count(*) FROM bounce_seen") == [(3,)]
        assert len(dovecot.messages()) == 3
    finally:
        dovecot.stop()
        pki.close()


def test_mailbox_refusals(env):
    """A wrong CA, a readable password file: said in the journal; the scan still sends."""
    pki = Pki()
    dovecot = Dovecot(pki)
    try:
        sid = env.add_session("S", "2026-09-22 10:30", "2026-09-22 12:00", 10, T0)
        env.register(sid, "Ann", "ann@example.org", T0)
        use_mailbox(env, dovecot, pki, "imaps://127.0.0.1:%d/INBOX" % dovecot.imaps_port)
        os.chmod(os.path.join(env.dir, "bounce-password"), 0o644)
        p = env.scan(T0, env=LOG)
        assert "has mode 0644" in p.stderr, p.stderr
        assert env.mails(to="ann@example.org"), "the scan went on"
        os.chmod(os.path.join(env.dir, "bounce-password"), 0o600)
        env.write_conf('bounces {\n  url = "imaps://127.0.0.1:%d/INBOX"\n  username = "bounces"\n'
                       '  password_file = "%s"\n}\n' % (dovecot.imaps_port, os.path.join(env.dir, "bounce-password")))
        p = env.scan("2026-08-01 09:05", env=LOG)
        assert "bounce mailbox: UID SEARCH UNSEEN:" in p.stderr and "certificate" in p.stderr.lower(), p.stderr
        # a password in the URL is refused by the config check
        env.write_conf('bounces {\n  url = "imaps://bounces:pw@127.0.0.1/INBOX"\n}\n')
        p = env.scan("2026-08-01 09:06", check=False)
        assert p.returncode == 78 and "must not hold a user or password" in p.stderr, p.stderr
    finally:
        dovecot.stop()
        pki.close()


def test_daemon_looks_every_interval_without_blocking(env):
    """The daemon looks on a thread: a mailbox server that accepts and never answers does
    not stop the watchdog pings or the stop; a real one is read every interval."""
    import datetime
    import signal
    import socket
    import subprocess
    import time
    from test_daemon import Notify, local, start_daemon, wait_until

    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(5)
    env.settings["scan_interval"] = 1
    env.write_conf('bounces {\n  url = "imaps://127.0.0.1:%d/INBOX"\n  username = "bounces"\n'
                   '  interval = 1\n}\n' % hang.getsockname()[1])
    soon = datetime.datetime.now() + datetime.timedelta(days=30)
    sid = env.add_session("S", local(soon), local(soon + datetime.timedelta(hours=1)), 5, None)
    env.register(sid, "Ann", "ann@exmaple.org", None)
    notify = Notify(os.path.join(env.dir, "notify"))
    errlog = os.path.join(env.dir, "stderr")
    proc = start_daemon(env, notify, errlog, WATCHDOG_USEC="1000000")
    pki = dovecot = None
    try:
        notify.wait_for("READY=1", proc)
        t0 = time.monotonic()
        pings = 0
        while time.monotonic() - t0 < 3:
            lines = notify.read(0.5)
            pings += bool(lines and "WATCHDOG=1" in lines)
        assert pings >= 4, "the event loop stalled: %d pings in 3 s\n%s" % (pings, open(errlog).read())
        assert wait_until(lambda: env.kinds("ann@exmaple.org") == ["confirmation"]), open(errlog).read()
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0 and time.monotonic() - t0 < 5, open(errlog).read()

        # a real mailbox, read by the daemon within its interval
        pki = Pki()
        dovecot = Dovecot(pki)
        (mid,) = mids(env).values()
        use_mailbox(env, dovecot, pki, "imaps://127.0.0.1:%d/INBOX" % dovecot.imaps_port)
        with open(env.conf) as f:
            conf = f.read().replace("bounces {\n", "bounces {\n  interval = 1\n")
        with open(env.conf, "w") as f:
            f.write(conf)
        proc = start_daemon(env, notify, errlog)
        notify.wait_for("READY=1", proc)
        dovecot.deliver("1.postfix", postfix("ann@exmaple.org", mid))
        assert wait_until(lambda: unreachable(env)), open(errlog).read()
        assert wait_until(lambda: dovecot.messages() == {"1.postfix": "S"}), dovecot.messages()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        log = open(errlog).read()
        assert "exmaple" not in log and "Ann" not in log, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        hang.close()
        notify.close()
        if dovecot:
            dovecot.stop()
        if pki:
            pki.close()
