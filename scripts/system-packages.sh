#!/usr/bin/env bash
# Debian packages the template's tests run for real: podman/buildah (build and run the serving
# image), PostgreSQL (the shared MLflow server), wrk (the serving benchmark), npm (the devcontainer CLI of
# tests/test_devcontainer_build.py, which needs Node.js 20 or later: Debian 12's own nodejs is 18, so
# install a newer one, e.g. NodeSource's, where that test must run; one already on PATH is kept).
set -euo pipefail
packages=(podman buildah debootstrap runc slirp4netns uidmap fuse-overlayfs iptables postgresql wrk git make)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "--> apt-get install ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
