#!/bin/sh
# contrib/install-deps.sh - install every build and test dependency of outpolicy
# on Debian 12 with apt-get. Idempotent and non-interactive; run as root.
set -eu

PKGS="build-essential autoconf autoconf-archive automake libtool pkg-config
 libmilter-dev libopendkim-dev libspf2-dev libconfig-dev libssl-dev
 libunbound-dev libevent-dev libpsl-dev publicsuffix check
 postfix sasl2-bin libsasl2-modules swaks libnet-ssleay-perl unbound openssl xxd
 miltertest opendkim-tools python3-milter python3-aiosmtpd python3-dnspython python3-cryptography rsyslog valgrind python3-dkim python3-nacl python3-authres python3-yaml
 clang libclang-rt-14-dev procps iproute2"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing:$missing; run this script as root" >&2
    exit 1
fi
# Postfix must not configure or start a system instance: tests run private ones.
echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
# Debian's unbound package starts a system resolver; the tests run their own.
if command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now unbound >/dev/null 2>&1 || true
fi
if [ -f /run/unbound.pid ]; then
    kill "$(cat /run/unbound.pid)" 2>/dev/null || true
fi
echo "install-deps: installed:$missing"
