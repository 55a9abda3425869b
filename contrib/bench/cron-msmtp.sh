#!/bin/sh
# cron-msmtp.sh - the script an admin would otherwise write and run from cron: find the
# joining links that are due, send each with msmtp, and record each as sent, so that the
# next run does not send it again. It is the baseline of `make bench`, not part of meccd.
#
# Usage: cron-msmtp.sh DATABASE SMTP_HOST SMTP_PORT [FROM]
#   NOW=<unix seconds> replaces the clock; MAX=<n> stops after n messages.
# It reads and writes meccd's schema: booked registrations of sessions starting within two
# days, and an outbox row (status 'sent') per email sent. Plain SMTP, no AUTH, no TLS.
set -eu
[ $# -ge 3 ] || { echo "usage: $0 DATABASE SMTP_HOST SMTP_PORT [FROM]" >&2; exit 64; }
db=$1 host=$2 port=$3 from=${4:-mecc@example.org}
now=${NOW:-$(date +%s)}
max=${MAX:-1000000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

sqlq() { printf %s "$1" | sed "s/'/''/g"; }

sqlite3 -batch -separator '|' "$db" "
        SELECT r.id, r.session_id, r.name, r.email, s.title, s.starts_at, s.ends_at,
               ifnull(s.join_url, '')
        FROM registrations r JOIN sessions s ON s.id = r.session_id
        WHERE r.status = 'booked' AND s.status IN ('open', 'closed')
          AND s.starts_at > $now AND s.starts_at <= $now + 2 * 86400
          AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.registration_id = r.id
                          AND o.kind = 'joining_link')
        ORDER BY r.id LIMIT $max" >"$tmp/due"

n=0
while IFS='|' read -r rid sid name email title start end url; do
        mid="<$sid.$rid.joining_link.cron@${from#*@}>"
        day=$(date -d "@$start" '+%A %-d %B %Y')
        hours="$(date -d "@$start" +%H:%M)-$(date -d "@$end" '+%H:%M %Z')"
        {
                printf 'From: MECC Training <%s>\r\nTo: %s <%s>\r\n' "$from" "$name" "$email"
                printf 'Subject: Your joining link for %s on %s\r\n' "$title" "$day"
                printf 'Date: %s\r\nMessage-ID: %s\r\nMIME-Version: 1.0\r\n' "$(date -R)" "$mid"
                printf 'Content-Type: multipart/mixed; boundary="b%s"\r\n\r\n' "$rid"
                printf -- '--b%s\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n' "$rid"
                printf 'Dear %s,\r\n\r\nThank you for booking a place on %s.\r\n\r\n' "$name" "$title"
                printf 'The session is on %s, %s.\r\n\r\n' "$day" "$hours"
                printf 'Join here: %s\r\n\r\nPlease join a few minutes early. A calendar\r\n' "$url"
                printf 'invitation is attached.\r\n\r\nOxfordshire MECC Training\r\n\r\n'
                printf -- '--b%s\r\nContent-Type: text/calendar; charset=UTF-8; method=PUBLISH\r\n' "$rid"
                printf 'Content-Disposition: attachment; filename="invite.ics"\r\n\r\n'
                printf 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//cron//EN\r\nMETHOD:PUBLISH\r\n'
                printf 'BEGIN:VEVENT\r\nUID:session-%s@%s\r\nDTSTAMP:%s\r\n' "$sid" "${from#*@}" \
                        "$(date -u -d "@$now" +%Y%m%dT%H%M%SZ)"
                printf 'DTSTART:%s\r\nDTEND:%s\r\n' "$(date -u -d "@$start" +%Y%m%dT%H%M%SZ)" \
                        "$(date -u -d "@$end" +%Y%m%dT%H%M%SZ)"
                printf 'SUMMARY:%s\r\nURL:%s\r\nLOCATION:%s\r\n' "$title" "$url" "$url"
                printf 'END:VEVENT\r\nEND:VCALENDAR\r\n--b%s--\r\n' "$rid"
        } >"$tmp/msg"
        if msmtp -C /dev/null --host="$host" --port="$port" --auth=off --tls=off \
                --from="$from" -- "$email" <"$tmp/msg"; then
                sqlite3 -batch "$db" "PRAGMA busy_timeout = 5000;
                        INSERT INTO outbox(session_id, registration_id, kind, recipient, status,
                                           attempts, created_at, next_attempt_at, sent_at, message_id)
                        VALUES ($sid, $rid, 'joining_link', '$(sqlq "$email")', 'sent', 1,
                                $now, $now, $(date +%s), '$(sqlq "$mid")')" >/dev/null
                n=$((n + 1))
        else
                echo "cron-msmtp: registration $rid: msmtp failed; next run tries again" >&2
        fi
done <"$tmp/due"
echo "$n sent"
