"""Every shipped kind, as meccd sends it, scored by SpamAssassin's local rules: an email a
volunteer waits for must not land in their junk folder."""
import os
import re
import shutil
import subprocess
import sys

if shutil.which("spamassassin") is None:
    print("1..1\nok 1 # SKIP spamassassin not installed", flush=True)
    sys.exit(0)

from harness import with_env  # noqa: E402
from test_messages import KINDS, NAME, SETTINGS, TITLE, drive_every_kind  # noqa: E402

LIMIT = 2.0
STATUS = re.compile(r"^X-Spam-Status: (?:Yes|No), score=(-?[0-9.]+)\s.*?"
                    r"tests=((?:[A-Z0-9_]+,\s*)*[A-Z0-9_]+|none)", re.M | re.S)


def score(env, raw):
    """(score, rules hit) of one message: local rules only, no Bayes (its verdict would
    depend on what it learnt before), nothing written to the real home directory."""
    cmd = ["spamassassin", "-L", "-t", "--cf", "use_bayes 0", "--cf", "bayes_auto_learn 0"]
    e = dict(os.environ, HOME=env.dir)
    p = subprocess.run(cmd, input=raw, capture_output=True, timeout=120, env=e)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    head = p.stdout.partition(b"\r\n\r\n")[0].partition(b"\n\n")[0]
    head = head.decode("utf-8", "replace").replace("\r\n", "\n")
    m = STATUS.search(head + "\n")
    assert m, head
    rules = re.sub(r"\s+", "", m.group(2))
    return float(m.group(1)), rules


@with_env(**SETTINGS)
def test_every_kind_scores_low(env):
    sent = drive_every_kind(env, TITLE, NAME)
    first = {}
    for s in sent:
        first.setdefault(s.kind, s)
    assert set(first) == set(KINDS)
    # the scorer itself works: SpamAssassin's standard test string is spam whatever else
    gtube = first["confirmation"].m["raw"].replace(
        b"Dear ", b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n", 1)
    assert score(env, gtube)[0] >= 100, "SpamAssassin does not score"
    high = []
    for kind in KINDS:
        points, rules = score(env, first[kind].m["raw"])
        print("# %-18s %5.1f  %s" % (kind, points, rules or "-"), flush=True)
        if points >= LIMIT:
            high.append((kind, points, rules))
    assert not high, "scored %.1f or more: %r" % (LIMIT, high)


@with_env(**SETTINGS)
def test_unreachable_scores_low(env):
    """The coordinators' email about a refused address: plain wording, not junk either."""
    sid = env.add_session(TITLE, "2026-09-22 10:30", "2026-09-22 12:00", 5, "2026-08-01 09:00")
    env.register(sid, NAME, "sian@exmaple.org", "2026-08-01 08:00")
    env.smtp.capture.replies["sian@exmaple.org"] = "550 5.1.1 <sian@exmaple.org>: Recipient address rejected"
    env.scan("2026-08-01 09:00")
    env.scan("2026-08-01 09:10")
    (m, *_) = env.mails(kind="unreachable")
    points, rules = score(env, m["raw"])
    print("# %-18s %5.1f  %s" % ("unreachable", points, rules or "-"), flush=True)
    assert points < LIMIT, (points, rules)
