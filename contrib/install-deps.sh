#!/bin/sh
# install-deps.sh build|test|bench|deb - install the Debian packages meccd needs, if missing.
# A no-op when everything is present; needs root (apt-get) otherwise.
set -eu
build="gcc make pkg-config libcurl4-openssl-dev libconfuse-dev libsqlite3-dev libsystemd-dev"
run="python3-aiosmtpd sqlite3 ca-certificates"
test="$run libcmocka-dev valgrind postfix python3-icalendar openssl clang libclang-rt-14-dev groff-base man-db systemd spamassassin debootstrap dovecot-imapd dovecot-pop3d"
bench="$test hyperfine msmtp time strace"
# make deb: Debian's packaging tools and lintian, beside the build dependencies
deb="dpkg-dev debhelper lintian"
case "${1:-build}" in
build) want="$build $run" ;;
test) want="$build $test" ;;
bench) want="$build $bench" ;;
deb) want="$build $deb" ;;
*) echo "usage: $0 build|test|bench|deb" >&2; exit 64 ;;
esac
missing=""
for p in $want; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
        echo "install-deps: missing packages:$missing (run as root, or install them)" >&2
        exit 69
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
# smtp-sink comes with postfix; the tests never want the mail service itself running
if echo "$missing" | grep -q postfix; then
        (service postfix stop || postfix stop) >/dev/null 2>&1 || true
fi
