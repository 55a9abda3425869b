#!/usr/bin/python3
"""plans.py DB SOURCE.c... - EXPLAIN QUERY PLAN of every SQL constant in the sources.

Takes each `static const char SQL_...[] = "..." "...";` of the given C files, asks SQLite
for its plan against DB (opened read-only), and prints one line per statement:

  ok    scan.c:SQL_NEED_JOIN  SEARCH r USING INDEX registrations_session (...); ...
  FULL  outbox.c:SQL_X        SCAN outbox

A statement fails when its plan reads the whole of `registrations` or `outbox` (a table
scan, or a scan of a whole index): those grow with every booking, forever. A whole scan of
`sessions` is reported as "scan" (it grows by a few rows a week) but does not fail.
Exit status 1 when any statement fails.
"""
import os
import re
import sqlite3
import sys

BIG = ("registrations", "outbox")
CONST = re.compile(r'static const char (SQL_\w+)\[\]\s*=\s*((?:"(?:[^"\\]|\\.)*"\s*)+);')
LITERAL = re.compile(r'"((?:[^"\\]|\\.)*)"')
ALIAS = re.compile(r'\b(sessions|registrations|outbox|meta)\s+(?:AS\s+)?([a-z]\w*)\b', re.I)
KEYWORDS = {"where", "set", "on", "join", "order", "group", "limit", "union", "values",
            "select", "and", "or", "as", "using", "left", "inner", "natural", "cross"}


def statements(path):
    text = open(path, encoding="utf-8").read()
    for m in CONST.finditer(text):
        sql = "".join(bytes(s, "utf-8").decode("unicode_escape") for s in LITERAL.findall(m.group(2)))
        yield "%s:%s" % (os.path.basename(path), m.group(1)), sql


def n_params(sql):
    numbered = [int(n) for n in re.findall(r"\?(\d+)", sql)]
    return max(numbered) if numbered else sql.count("?")


def verdict(sql, plan):
    aliases = {a.lower(): t.lower() for t, a in ALIAS.findall(sql) if a.lower() not in KEYWORDS}
    worst = "ok"
    for detail in plan:
        m = re.match(r"SCAN (\S+)( USING (?:COVERING )?INDEX \S+)?", detail)
        if not m or m.group(1).startswith("("):
            continue
        table = aliases.get(m.group(1).lower(), m.group(1).lower())
        if table in BIG:
            return "FULL"
        if table == "sessions":
            worst = "scan"
    return worst


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
    failed = 0
    for path in sys.argv[2:]:
        for name, sql in statements(path):
            try:
                rows = db.execute("EXPLAIN QUERY PLAN " + sql, (None,) * n_params(sql)).fetchall()
                plan = [r[3] for r in rows]
            except sqlite3.Error as e:
                plan = ["error: %s" % e]
            v = "ERROR" if plan and plan[0].startswith("error") else verdict(sql, plan)
            failed += v in ("FULL", "ERROR")
            print("%-5s %-34s %s" % (v, name, "; ".join(plan) or "(no table access)"))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
