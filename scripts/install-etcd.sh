#!/usr/bin/env bash
# Installs the etcd servers the tests and the demo run against:
#   etcd 3.4 from Debian bookworm's etcd-server package (/usr/bin/etcd) and its
#   etcdctl from etcd-client (/usr/bin/etcdctl), and
#   etcd 3.5 from Debian trixie's etcd-server package, unpacked into .etcd/3.5
#   with a private apt state so the system's package sources are not changed.
# Idempotent: it skips whatever is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v /usr/bin/etcd >/dev/null 2>&1; then
  echo "installing etcd 3.4 (Debian etcd-server)"
  sudo_if_needed apt-get update -qq
  # The package ships a systemd unit; no init system runs it here, the harness starts its own members.
  DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
fi
/usr/bin/etcd --version | sed -n 1p

# etcdctl 3.4 (Debian etcd-client): the snapshot tests restore with `etcdctl snapshot restore`
# on 3.4; 3.5 ships that command as etcdutl inside its etcd-server package.
if ! command -v /usr/bin/etcdctl >/dev/null 2>&1; then
  echo "installing etcdctl 3.4 (Debian etcd-client)"
  sudo_if_needed apt-get update -qq
  DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq --no-install-recommends etcd-client >/dev/null
fi
ETCDCTL_API=3 /usr/bin/etcdctl version | sed -n 1p

dest="$root/.etcd/3.5"
if [ ! -x "$dest/usr/bin/etcd" ]; then
  echo "fetching etcd 3.5 (Debian trixie etcd-server) into .etcd/3.5"
  # Use the same mirror the machine's own apt sources name.
  mirror="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | grep -E '^[[:space:]]*(deb|URIs:)[[:space:]]' | grep -oE 'https?://[^ ]+/debian/?([[:space:]]|$)' | sed -n 1p | tr -d '[:space:]' || true)"
  mirror="${mirror%/}"
  if [ -z "$mirror" ]; then echo "no Debian mirror found in /etc/apt sources" >&2; exit 1; fi
  work="$root/.etcd/apt"
  rm -rf "$work" && mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/download"
  echo "deb $mirror trixie main" > "$work/trixie.list"
  opts=(-o "Dir::Etc::SourceList=$work/trixie.list" -o "Dir::Etc::SourceParts=/dev/null"
        -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o "APT::Sandbox::User=root")
  apt-get "${opts[@]}" update -qq
  (cd "$work/download" && apt-get "${opts[@]}" download etcd-server/trixie >/dev/null)
  mkdir -p "$dest"
  dpkg-deb -x "$work"/download/etcd-server_*.deb "$dest"
  rm -rf "$work"
fi
"$dest/usr/bin/etcd" --version | sed -n 1p
