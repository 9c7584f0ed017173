#!/usr/bin/env bash
# Install an Amparo node as a systemd service on Debian/Ubuntu (run as root from the source tree).
# What it does is written out step by step in docs/deploy-systemd.md.
set -euo pipefail
SRC="$(cd "$(dirname "$0")/../.." && pwd)"
NAME="${1:?usage: install.sh \"Organization name\" [public-host:port]}"
ADVERTISE="${2:-}"

apt-get install -y python3 python3-venv
id amparo >/dev/null 2>&1 || useradd --system --home-dir /var/lib/amparo --shell /usr/sbin/nologin amparo
install -d -m 0755 /opt/amparo
python3 -m venv /opt/amparo/venv
/opt/amparo/venv/bin/pip install -q "$SRC"
install -d -m 0700 -o amparo -g amparo /var/lib/amparo
install -d -m 0700 /etc/amparo
if [ ! -f /etc/amparo/passphrase ]; then
  umask 077
  head -c 32 /dev/urandom | base64 > /etc/amparo/passphrase
  echo "A random passphrase was written to /etc/amparo/passphrase: keep a copy OFF this machine." >&2
fi
if [ ! -f /var/lib/amparo/identity.key ]; then
  args=(--name "$NAME" --listen 0.0.0.0:7170)
  [ -n "$ADVERTISE" ] && args+=(--advertise "$ADVERTISE")
  AMPARO_PASSPHRASE_FILE=/etc/amparo/passphrase runuser -u amparo -- \
    /opt/amparo/venv/bin/amparo --home /var/lib/amparo init "${args[@]}"
fi
install -m 0644 "$SRC/deploy/systemd/amparo.service" /etc/systemd/system/amparo.service
systemctl daemon-reload
systemctl enable --now amparo
systemctl --no-pager status amparo
