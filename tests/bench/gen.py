#!/usr/bin/python3
"""gen.py - fill a meccd database (schema already created by `meccctl init`) for the benchmarks.

  gen.py DB history SESSIONS REGISTRATIONS NOW
      A lived-in database: sessions spread over two years around NOW (18 months before,
      6 months after), REGISTRATIONS spread evenly over them (90% booked, 5% cancelled,
      3% late, 2% invalid), and the outbox history of everything already sent:
      confirmations, late notices, joining links, follow-ups and rosters. Sessions more
      than 180 days old are erased as meccd would have erased them. Message bodies are
      not stored (they would only make the file bigger; no scan query reads them).

  gen.py DB due SESSIONS PER_SESSION NOW
      SESSIONS closed sessions starting one day after NOW with PER_SESSION booked
      registrations each (e-learning done, confirmation sent): one scan at NOW queues a
      joining link with its .ics for every one of them.

Everything is one transaction of INSERT ... SELECT over recursive CTEs; the indexes are
dropped first and built again at the end, which is several times faster than keeping
them up to date row by row.
"""
import sqlite3
import sys

DAY = 86400


def indexes(db):
    return db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        " AND tbl_name IN ('sessions', 'registrations', 'outbox')").fetchall()


def history(db, n_sessions, n_regs, now, instance):
    per = max(n_regs // n_sessions, 1)
    t0 = (now - 547 * DAY) // DAY * DAY
    p = {"n": n_sessions, "r": n_regs, "per": per, "t0": t0, "now": now,
         "keep": 180 * DAY, "inst": instance}
    db.execute("""
        WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < :n),
        t(i, st) AS (SELECT i, :t0 + ((i - 1) * 730 / :n) * 86400 + 34200 + ((i - 1) % 8) * 3600 FROM k)
        INSERT INTO sessions(id, title, starts_at, ends_at, capacity, join_url, elearning_url,
                             trainer_email, status, followed_up, reminded_at, cancel_notified, erased_at)
        SELECT i, 'MECC Live Online Training', st, st + 5400, :per + 10,
               'https://meet.example.org/mecc-' || i, NULL,
               CASE WHEN i % 2 THEN 'trainer' || (i % 40) || '@example.org' END,
               CASE WHEN i % 97 = 0 THEN 'cancelled' WHEN st + 5400 <= :now THEN 'done' ELSE 'open' END,
               CASE WHEN st + 5400 <= :now THEN 1 ELSE 0 END,
               CASE WHEN st + 5400 <= :now THEN st - 3 * 86400 ELSE 0 END,
               CASE WHEN i % 97 = 0 THEN 1 ELSE 0 END,
               CASE WHEN st + 5400 + :keep <= :now THEN st + 5400 + :keep END
        FROM t""", p)
    db.execute("""
        WITH RECURSIVE k(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM k WHERE j < :r),
        t(j, sid, reg, st) AS (
          SELECT j, (j - 1) / :per + 1,
                 min(s.starts_at - 86400 * (10 + j % 20), :now - 3600 - j % 1000), s.erased_at
          FROM k JOIN sessions s ON s.id = (j - 1) / :per + 1)
        INSERT INTO registrations(id, session_id, name, email, registered_at, status,
                                  elearning_done_at, token, booked_at)
        SELECT j, sid,
               CASE WHEN st IS NULL THEN 'Volunteer ' || j ELSE '' END,
               CASE WHEN st IS NOT NULL THEN ''
                    WHEN j % 100 >= 98 THEN 'not an address ' || j
                    ELSE 'volunteer' || j || '@example.org' END,
               reg,
               CASE WHEN j % 100 < 90 THEN 'booked' WHEN j % 100 < 95 THEN 'cancelled'
                    WHEN j % 100 < 98 THEN 'late' ELSE 'invalid' END,
               CASE WHEN j % 100 < 90 AND j % 5 != 0 THEN min(reg + 86400, :now - 60) END,
               CASE WHEN st IS NULL AND j % 100 < 98 THEN printf('bench%017d', j) END,
               CASE WHEN j % 100 < 95 THEN reg END
        FROM t""", p)
    mid = "'<' || r.session_id || '.' || r.id || '.%s.' || :inst || '@example.org>'"
    # kind, which registrations, when it was sent
    emails = [
        ("confirmation", "r.status IN ('booked', 'cancelled')", "r.registered_at + 5"),
        ("late", "r.status = 'late'", "r.registered_at + 5"),
        ("joining_link", "r.status = 'booked' AND s.status != 'cancelled'"
                         " AND s.starts_at - 2 * 86400 <= :now", "s.starts_at - 2 * 86400 + 5"),
        ("follow_up", "r.status = 'booked' AND s.status = 'done'"
                      " AND s.ends_at + 86400 <= :now", "s.ends_at + 86400 + 5"),
    ]
    for kind, where, at in emails:
        db.execute(f"""
            INSERT INTO outbox(session_id, registration_id, kind, occasion, recipient, status,
                               attempts, created_at, first_attempt_at, next_attempt_at, sent_at,
                               message_id)
            SELECT r.session_id, r.id, '{kind}', '', r.email, 'sent', 1, {at}, {at}, {at}, {at},
                   {mid % kind}
            FROM registrations r JOIN sessions s ON s.id = r.session_id
            WHERE {where} AND {at} <= :now
            ORDER BY r.id""", p)
    db.execute("""
        INSERT INTO outbox(session_id, registration_id, kind, occasion, recipient, status,
                           attempts, created_at, first_attempt_at, next_attempt_at, sent_at,
                           message_id)
        SELECT s.id, NULL, 'roster', ifnull(s.trainer_email, 'mecc-team@example.org'),
               CASE WHEN s.erased_at IS NULL THEN ifnull(s.trainer_email, 'mecc-team@example.org')
                    ELSE '' END,
               'sent', 1, s.starts_at - 7 * 86400, s.starts_at - 7 * 86400, s.starts_at - 7 * 86400,
               s.starts_at - 7 * 86400, '<' || s.id || '.0.roster.' || :inst || '@example.org>'
        FROM sessions s WHERE s.status = 'done'""", p)


def due(db, n_sessions, per, now, instance):
    st = now + DAY
    p = {"n": n_sessions, "per": per, "st": st, "now": now, "inst": instance}
    db.execute("""
        WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < :n)
        INSERT INTO sessions(id, title, starts_at, ends_at, capacity, join_url, trainer_email, status)
        SELECT i, 'MECC Live Online Training', :st + (i % 8) * 1800, :st + (i % 8) * 1800 + 5400,
               :per, 'https://meet.example.org/mecc-' || i, 'trainer@example.org', 'closed'
        FROM k""", p)
    db.execute("""
        WITH RECURSIVE k(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM k WHERE j < :n * :per)
        INSERT INTO registrations(id, session_id, name, email, registered_at, status,
                                  elearning_done_at, token, booked_at)
        SELECT j, (j - 1) / :per + 1, 'Volunteer Número ' || j, 'volunteer' || j || '@example.org',
               :now - 20 * 86400 + j % 1000, 'booked', :now - 10 * 86400,
               printf('bench%017d', j), :now - 20 * 86400 + j % 1000
        FROM k""", p)
    db.execute("""
        INSERT INTO outbox(session_id, registration_id, kind, occasion, recipient, status,
                           attempts, created_at, first_attempt_at, next_attempt_at, sent_at,
                           message_id)
        SELECT session_id, id, 'confirmation', '', email, 'sent', 1, booked_at, booked_at,
               booked_at, booked_at + 5,
               '<' || session_id || '.' || id || '.confirmation.' || :inst || '@example.org>'
        FROM registrations ORDER BY id""", p)


def main():
    if len(sys.argv) != 6 or sys.argv[2] not in ("history", "due"):
        sys.exit(__doc__)
    path, mode = sys.argv[1], sys.argv[2]
    a, b, now = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -262144")
    row = db.execute("SELECT value FROM meta WHERE key = 'instance'").fetchone()
    instance = row[0] if row else "0"
    db.execute("BEGIN")
    saved = indexes(db)
    for name, _ in saved:
        db.execute(f'DROP INDEX "{name}"')
    (history if mode == "history" else due)(db, a, b, now, instance)
    for _, sql in saved:
        db.execute(sql)
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


if __name__ == "__main__":
    main()
