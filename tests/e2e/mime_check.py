#!/usr/bin/python3
"""mime_check.py - check one raw message the way a mail client would read it.

    mime_check.py [--subject S] [--to-name N] [--allow-header H ...] [FILE]   (stdin without FILE)

Parses with Python's email package (policy.default) and checks: no parser defects, CRLF
line ends only, no line over 998 octets (header lines and text parts at most 78 / 76),
exactly one To address, only the headers meccd writes (each once), the decoded Subject and
To display name when given. Prints a JSON report on stdout: headers, parts, attachments and,
for a .ics attachment, what a calendar reads from it (UID, SEQUENCE, METHOD, DTSTART,
DTEND). Exit 0 when there are no errors, 1 otherwise.

As a module: check_message(raw_bytes, subject=None, to_name=None) -> dict (errors in
report["errors"])."""
import argparse
import email
import email.policy
import json
import re
import sys
from email.header import decode_header, make_header

# What message_build() writes: nothing else may appear, and each at most once.
REQUIRED = ("Date", "From", "To", "Subject", "Message-ID", "MIME-Version",
            "Content-Type", "Auto-Submitted")
OPTIONAL = ("Reply-To", "Content-Transfer-Encoding")


def _raw_lines(raw):
    """Lines without their CRLF; errors for bare CR/LF."""
    errors = []
    lines = raw.split(b"\r\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif raw:
        errors.append("message does not end with CRLF")
    for i, line in enumerate(lines, 1):
        if b"\r" in line or b"\n" in line:
            errors.append("line %d has a bare CR or LF" % i)
    return lines, errors


def _check_lines(raw):
    lines, errors = _raw_lines(raw)
    in_header = True
    for i, line in enumerate(lines, 1):
        if len(line) > 998:
            errors.append("line %d is %d octets (limit 998)" % (i, len(line)))
        if in_header:
            if line == b"":
                in_header = False
            elif len(line) > 78:
                errors.append("header line %d is %d octets (limit 78)" % (i, len(line)))
            elif not line[:1].isspace() and b":" not in line:
                errors.append("header line %d is neither a field nor a continuation" % i)
        if b"\x00" in line:
            errors.append("line %d holds a NUL" % i)
        if any(c >= 0x80 for c in line):
            errors.append("line %d holds 8-bit data" % i)
    return errors


def rfc2047_display_name(raw_value):
    """The display name of a one-mailbox header as RFC 2047 6.2 reads it: whitespace between
    adjacent encoded-words is dropped. (Python 3.11's address parser keeps a space there, so
    its display_name differs for names split across several encoded-words.)"""
    value = re.sub(r"\r?\n(?=[ \t])", "", raw_value).strip()
    lt = value.rfind("<")
    if lt < 0:
        return ""
    phrase = value[:lt].strip()
    if len(phrase) >= 2 and phrase[0] == '"' and phrase[-1] == '"':
        return re.sub(r"\\(.)", r"\1", phrase[1:-1])
    return str(make_header(decode_header(phrase)))


def _header_defects(msg, where):
    errors = []
    for name, value in msg.items():
        for d in getattr(value, "defects", ()):
            errors.append("%s header %s: %s" % (where, name, d.__class__.__name__))
    for d in msg.defects:
        errors.append("%s: %s" % (where, d.__class__.__name__))
    return errors


def _check_headers(msg, allow):
    errors = []
    names = [k for k in msg.keys()]
    known = {h.lower() for h in REQUIRED + OPTIONAL + tuple(allow)}
    for n in names:
        if n.lower() not in known:
            errors.append("unexpected header %r" % n)
    for n in set(x.lower() for x in names):
        if sum(1 for x in names if x.lower() == n) > 1:
            errors.append("header %r appears more than once" % n)
    for n in REQUIRED:
        if msg.get(n) is None:
            errors.append("missing header %r" % n)
    return errors


def _ics_report(data):
    import icalendar

    cal = icalendar.Calendar.from_ical(data)
    out = {"method": str(cal.get("METHOD")) if cal.get("METHOD") else None,
           "timezones": [str(tz.get("TZID")) for tz in cal.walk("VTIMEZONE")]}
    events = cal.walk("VEVENT")
    if len(events) != 1:
        raise ValueError("calendar has %d VEVENTs" % len(events))
    ev = events[0]
    out["uid"] = str(ev.get("UID"))
    out["sequence"] = int(ev.get("SEQUENCE", 0))
    out["status"] = str(ev.get("STATUS")) if ev.get("STATUS") else None
    out["summary"] = str(ev.get("SUMMARY")) if ev.get("SUMMARY") is not None else None
    for key in ("DTSTART", "DTEND"):
        prop = ev.get(key)
        if prop is None:
            out[key.lower()] = None
            continue
        dt = prop.dt
        if getattr(dt, "tzinfo", None) is None:
            raise ValueError("%s has no zone" % key)
        out[key.lower()] = dt.isoformat()
        out[key.lower() + "_tzid"] = prop.params.get("TZID")
    out["alarms"] = len(ev.walk("VALARM"))
    return out


def _parts(msg):
    parts, attachments, errors = [], [], []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        disposition = part.get_content_disposition()
        cte = part.get("Content-Transfer-Encoding", "7bit").lower()
        payload = part.get_payload(decode=True) or b""
        info = {"content_type": ctype, "charset": part.get_content_charset(),
                "transfer_encoding": cte, "disposition": disposition,
                "filename": part.get_filename(), "size": len(payload)}
        errors += _header_defects(part, "part " + ctype)
        if disposition == "attachment":
            if cte != "base64":
                errors.append("attachment %r is not base64" % info["filename"])
            attachments.append(info)
            if (info["filename"] or "").endswith(".ics") or ctype == "text/calendar":
                try:
                    info["ics"] = _ics_report(payload)
                except Exception as e:  # a calendar that cannot be read is the finding
                    errors.append("ics attachment: %s: %s" % (e.__class__.__name__, e))
        else:
            if ctype.startswith("text/"):
                if cte != "quoted-printable":
                    errors.append("%s part is %s, not quoted-printable" % (ctype, cte))
                if (info["charset"] or "").lower() != "utf-8":
                    errors.append("%s part charset is %r" % (ctype, info["charset"]))
                try:
                    info["text"] = payload.decode("utf-8").replace("\r\n", "\n")
                except UnicodeDecodeError:
                    errors.append("%s part is not valid UTF-8" % ctype)
            parts.append(info)
        raw_body = part.get_payload(decode=False)
        if isinstance(raw_body, str):
            for line in raw_body.splitlines():
                if len(line) > 76:
                    errors.append("%s body line of %d characters (limit 76)" % (ctype, len(line)))
                    break
    return parts, attachments, errors


def check_message(raw, subject=None, to_name=None, allow=()):
    """The report for one raw message; report["errors"] is empty when it is good."""
    errors = _check_lines(raw)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    errors += _header_defects(msg, "message")
    errors += _check_headers(msg, allow)
    report = {"headers": {k: str(v) for k, v in msg.items()}}

    to = msg.get("To")
    addresses = list(to.addresses) if to is not None else []
    if len(addresses) != 1:
        errors.append("To holds %d addresses" % len(addresses))
    else:
        raw_to = [v for k, v in msg.raw_items() if k.lower() == "to"][0]
        name = rfc2047_display_name(raw_to)
        report["to"] = {"name": name, "name_python": addresses[0].display_name,
                        "addr": addresses[0].addr_spec}
        if to_name is not None and name != to_name:
            errors.append("To display name %r, expected %r" % (name, to_name))
    frm = msg.get("From")
    if frm is not None and len(frm.addresses) == 1:
        report["from"] = {"name": frm.addresses[0].display_name, "addr": frm.addresses[0].addr_spec}
    else:
        errors.append("From is not one mailbox")
    report["subject"] = str(msg.get("Subject", ""))
    if subject is not None and report["subject"] != subject:
        errors.append("Subject %r, expected %r" % (report["subject"], subject))
    if str(msg.get("MIME-Version", "")) != "1.0":
        errors.append("MIME-Version is not 1.0")

    report["parts"], report["attachments"], part_errors = _parts(msg)
    errors += part_errors
    ics = [a["ics"] for a in report["attachments"] if "ics" in a]
    if ics:
        report["ics"] = ics[0]
    report["errors"] = errors
    return report


def main(argv=None):
    ap = argparse.ArgumentParser(description="check one raw RFC 5322/MIME message")
    ap.add_argument("file", nargs="?", help="message file (default: stdin)")
    ap.add_argument("--subject", help="expected decoded Subject")
    ap.add_argument("--to-name", help="expected decoded To display name")
    ap.add_argument("--allow-header", action="append", default=[],
                    help="a header name besides those meccd writes (repeatable)")
    args = ap.parse_args(argv)
    if args.file:
        with open(args.file, "rb") as f:
            raw = f.read()
    else:
        raw = sys.stdin.buffer.read()
    report = check_message(raw, subject=args.subject, to_name=args.to_name,
                           allow=args.allow_header)
    json.dump(report, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")
    for e in report["errors"]:
        print("mime_check: " + e, file=sys.stderr)
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
