#!/bin/sh
# demo.sh - the whole journey on the real daemon: a SQLite database and a local SMTP capture
# under ./demo, the Oxfordshire pilot pattern of sessions, volunteers registering, and
# `meccd --once --now ...` at the dates that matter. Run by `make demo`.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir=$top/demo
py=/usr/bin/python3
rm -rf "$dir"
mkdir -p "$dir/mail/tmp" "$dir/mail/new" "$dir/mail/cur"

port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
$py -m aiosmtpd -n -l "127.0.0.1:$port" -c aiosmtpd.handlers.Mailbox "$dir/mail" >"$dir/smtp.log" 2>&1 &
smtp_pid=$!
trap 'kill $smtp_pid 2>/dev/null || true' EXIT INT TERM
$py - "$port" <<'PYEOF'
import socket, sys, time
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close(); break
    except OSError:
        time.sleep(0.1)
PYEOF

cat >"$dir/meccd.conf" <<CONF
# The demo's configuration: everything else is the shipped default.
database = "$dir/meccd.db"
templates = "$top/etc/templates"
organisation = "Oxfordshire MECC Training"
elearning_url = "https://learning.example.org/mecc"
cancel_url = "https://hub.example.org/cancel?t={{token}}"
feedback_url = "https://hub.example.org/feedback"
roster_to = {"mecc-team@example.org"}
smtp {
  url = "smtp://127.0.0.1:$port"
  tls = "none"                      # a local capture server; real relays use STARTTLS
  from = "Oxfordshire MECC Training <mecc@example.org>"
}
CONF

ctl() { "$top/meccctl" -c "$dir/meccd.conf" "$@"; }
# One scan; its journal lines are shown, with the "email N sent" lines summed per kind.
scan() {
        echo
        echo "== $1: $2"
        MECCD_LOG=stderr "$top/meccd" -c "$dir/meccd.conf" --once --now "$1" 2>&1 | awk '
                / email [0-9]+ sent$/ { sent[$2]++; next }
                { sub(/^meccd: /, ""); print "   " $0 }
                END { for (k in sent) printf "   sent: %d %s\n", sent[k], k }'
}

# The attendance report the trainer downloads from Teams after the 22 Sept session: UTF-16
# with a byte-order mark, tab-separated, a summary above the participants. Tom did not make
# it; a colleague of the trainer looked in as a guest.
attendance_22() {
        printf '1. Summary\r\nMeeting title\tMECC Live Online Training\r\nAttended participants\t3\r\nStart time\t9/22/26, 10:27:12 AM\r\nEnd time\t9/22/26, 12:02:40 PM\r\nMeeting duration\t1h 35m 28s\r\n\r\n2. Participants\r\nName\tFirst Join\tLast Leave\tIn-Meeting Duration\tEmail\tParticipant ID (UPN)\tRole\r\nMECC Trainer\t9/22/26, 10:27:12 AM\t9/22/26, 12:02:40 PM\t1h 35m 28s\ttrainer@example.org\ttrainer@example.org\tOrganizer\r\nSiân Ó Briain\t9/22/26, 10:29:40 AM\t9/22/26, 12:00:05 PM\t1h 30m 25s\tsian@example.org\tsian@example.org\tAttendee\r\nVisiting colleague (Guest)\t9/22/26, 10:45:00 AM\t9/22/26, 11:15:00 AM\t30m\t\t\tAttendee\r\n\r\n3. In-Meeting Activities\r\n' |
                { printf '\377\376'; iconv -f UTF-8 -t UTF-16LE; } >"$dir/attendance-0922.csv"
        echo
        echo "== meccctl attendance import $s1 attendance-0922.csv (as Teams wrote it)"
        ctl --now "2026-09-23 09:00" attendance import "$s1" "$dir/attendance-0922.csv" | sed 's/^/   /'
        ctl --now "2026-09-23 09:00" attendance show "$s1" | sed 's/^/   /'
}

echo "== Sessions (the pilot pattern: live online, 10:30-12:00, 12 places)"
now="2026-08-24 09:00"
s1=$(ctl --now "$now" session add --title "MECC Live Online Training" --start "2026-09-22 10:30" --end "2026-09-22 12:00" --capacity 12 --join-url "https://meet.example.org/mecc-0922" --trainer "trainer@example.org")
s2=$(ctl --now "$now" session add --title "MECC Live Online Training" --start "2026-09-23 10:30" --end "2026-09-23 12:00" --capacity 12 --join-url "https://meet.example.org/mecc-0923")
s3=$(ctl --now "$now" session add --title "MECC Live Online Training" --start "2026-09-24 10:30" --end "2026-09-24 12:00" --capacity 12 --join-url "https://meet.example.org/mecc-0924")
s4=$(ctl --now "$now" session add --title "MECC Live Online Training" --start "2026-10-06 10:30" --end "2026-10-06 12:00" --capacity 12 --join-url "https://meet.example.org/mecc-1006")

# session 3 fills up with a library team booking as a group
i=1
while [ $i -le 12 ]; do
        ctl --now "2026-08-25 10:00" register "$s3" --name "Library colleague $i" --email "library$i@example.org" >/dev/null
        i=$((i + 1))
done
reg() { ctl --now "$1" register "$2" --name "$3" --email "$4" >/dev/null; }
reg "2026-09-01 09:12" "$s1" "Siân Ó Briain" "sian@example.org"
reg "2026-09-01 10:40" "$s1" "Tom Whitaker" "tom.whitaker@example.org"
reg "2026-09-02 14:05" "$s2" "Priya Shah" "priya@example.org"
reg "2026-09-03 08:30" "$s3" "Jobcentre adviser Dan" "dan@example.org"
reg "2026-09-03 08:31" "$s2" "Priya Shah (again)" "PRIYA@example.org"
ctl --now "2026-09-03 09:00" session list

scan "2026-09-03 09:00" "registrations are admitted: confirmations, one waiting list, one duplicate"
ctl --now "2026-09-05 12:00" elearning-done priya@example.org
echo "   (Priya completes the e-learning on 5 September)"
for day in 12 13 14 15 16 17 18 19 20 21 22 23 24 25; do
        case $day in
        12) what="10 days before 22 Sept: e-learning reminders to those who have not done it" ;;
        15) what="bookings for 22 Sept closed at 10:30: the trainer gets the roster; Lucy registered too late" ;;
        17) what="bookings for 24 Sept close: the waiting list is told there was no place" ;;
        19) what="3 days before 22 Sept: the last e-learning reminder" ;;
        20) what="2 days before 22 Sept: joining links, with a calendar invitation" ;;
        23) what="the trainer's Teams attendance report is recorded for 22 Sept" ;;
        24) what="the day after the first session: thanks to those who came, \"sorry we missed you\" to those who did not" ;;
        *) what="the daily scan" ;;
        esac
        t="2026-09-$day 10:30"
        if [ "$day" = 15 ]; then
                t="2026-09-15 11:00"
                reg "$t" "$s1" "Late Lucy" "lucy@example.org"
        fi
        if [ "$day" = 23 ]; then
                attendance_22
        fi
        scan "$t" "$what"
done

echo
echo "== What each volunteer received (stored in $dir/mail/new)"
$py - "$dir/mail" <<'PYEOF'
import email, email.policy, mailbox, sys
from collections import defaultdict
box = mailbox.Maildir(sys.argv[1], factory=None, create=False)
got = defaultdict(list)
for key in box.iterkeys():
    raw = box.get_bytes(key)
    m = email.message_from_bytes(raw, policy=email.policy.default)
    att = [p.get_filename() for p in m.iter_attachments() if p.get_filename()]
    got[str(m["To"])].append((str(m["Date"]), str(m["Subject"]), att, key))
def order(item):
    return email.utils.parsedate_to_datetime(item[0])
for to in sorted(got, key=lambda t: (t.startswith("Library"), t)):
    if to.startswith("Library colleague") and not to.startswith("Library colleague 1 "):
        continue
    print("\n  " + to)
    for d, subject, att, key in sorted(got[to], key=order):
        extra = "  [+ " + ", ".join(att) + "]" if att else ""
        print("    %s  %s%s" % (email.utils.parsedate_to_datetime(d).strftime("%d %b %H:%M"), subject, extra))
n = sum(len(v) for v in got.values())
print("\n  (the other eleven library colleagues received the same as colleague 1)")
print("\n%d emails in all. Read any of them with:  less %s/new/<file>" % (n, sys.argv[1]))
PYEOF
echo
echo "== The \"missed\" email Tom received (text part)"
$py - "$dir/mail" <<'PYEOF'
import email, email.policy, mailbox, sys
box = mailbox.Maildir(sys.argv[1], factory=None, create=False)
for key in box.iterkeys():
    m = email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
    if "tom.whitaker" in str(m["To"]) and "missed you" in str(m["Subject"]):
        print("   Subject: " + str(m["Subject"]))
        for line in m.get_body(preferencelist=("plain",)).get_content().splitlines():
            print("   " + line)
PYEOF

echo
echo "== meccctl report: the pilot's figures"
ctl --now "2026-09-25 12:00" report

echo
echo "The outbox as the admin sees it:  ./meccctl -c demo/meccd.conf outbox list"
echo "The state of things:              ./meccctl -c demo/meccd.conf status"
