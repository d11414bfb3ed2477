#!/usr/bin/env bash
# Installs every build and test dependency of aas-bundle on Debian 12 (idempotent).
# Debian's docker-registry package ships a service that listens on all addresses: it is
# installed with service start-up blocked, and the tests only run their own instances
# bound to 127.0.0.1.
set -euo pipefail

packages=(
  build-essential meson ninja-build pkg-config cmake clang clang-format libclang-rt-14-dev
  libcurl4-openssl-dev libssl-dev libarchive-dev libzstd-dev libyaml-cpp-dev
  nlohmann-json3-dev doctest-dev libcli11-dev libfmt-dev libre2-dev
  docker-registry skopeo umoci containerd podman buildah debootstrap apache2-utils openssl
  python3 python3-pytest python3-jwt python3-cryptography curl jq zstd
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
else
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # Block service start-up while installing (docker-registry would listen on :5000).
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    created_policy=1
  fi
  trap '[ $created_policy -eq 1 ] && $sudo rm -f "$policy"' EXIT
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Whatever the packaging did, the system registry service must not run.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi
pkill -x docker-registry -U 0 -f '/etc/docker/registry/config.yml' 2>/dev/null || true
echo "setup: done"
