#!/usr/bin/env bash
# The tested default base image, built from Debian packages (no image registry needed):
#   mmdebstrap --variant=minbase bookworm + python3, python3-venv, ca-certificates,
# imported with `podman import` as localhost/helpdesk-qa-base:bookworm.
# The root file system tarball is cached in $HELPDESK_QA_CACHE (default
# ~/.cache/helpdesk-qa), keyed by suite, packages and mirror; a cached tarball is
# imported in seconds, a cold build takes ~2-3 minutes.
# Usage: deploy/base/build-base.sh [--print-tag]
#   DEBIAN_MIRROR  mirror URL (default: the bookworm URI configured in /etc/apt)
set -euo pipefail
SUITE=${SUITE:-bookworm}
PACKAGES=${PACKAGES:-python3,python3-venv,ca-certificates}
CACHE=${HELPDESK_QA_CACHE:-$HOME/.cache/helpdesk-qa}
IMAGE=${BASE_IMAGE_NAME:-localhost/helpdesk-qa-base}

configured_mirror() {
  # deb822 sources first (Debian 12), then the one-line format.
  local uri
  uri=$(awk '/^URIs:/ {u=$2} /^Suites:/ && $0 ~ /(^| )'"$SUITE"'( |$)/ && u {print u; exit}' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '$1=="deb" && $3=="'"$SUITE"'" {print $2; exit}' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
  echo "${uri:-http://deb.debian.org/debian}"
}
MIRROR=${DEBIAN_MIRROR:-$(configured_mirror)}
KEY=$(printf '%s\n' "$SUITE" "$PACKAGES" "$MIRROR" | sha256sum | cut -c1-12)
TAG="$SUITE-$KEY"
if [ "${1:-}" = "--print-tag" ]; then echo "$IMAGE:$TAG"; exit 0; fi

if podman image exists "$IMAGE:$TAG"; then
  echo "base: $IMAGE:$TAG exists"
else
  TARBALL="$CACHE/base-$TAG.tar"
  if [ ! -s "$TARBALL" ]; then
    command -v mmdebstrap >/dev/null || { echo "error: mmdebstrap not found: apt-get install -y mmdebstrap" >&2; exit 1; }
    mkdir -p "$CACHE"
    echo "base: mmdebstrap $SUITE from $MIRROR (cold: ~2-3 min)"
    # Docs, man pages and locales are not needed in a server image.
    mmdebstrap --variant=minbase --include="$PACKAGES" \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      --aptopt='APT::Install-Recommends "false"' \
      --format=tar "$SUITE" "$TARBALL.tmp" "$MIRROR"
    mv "$TARBALL.tmp" "$TARBALL"
  fi
  podman import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' "$TARBALL" "$IMAGE:$TAG" >/dev/null
  echo "base: imported $TARBALL as $IMAGE:$TAG"
fi
podman tag "$IMAGE:$TAG" "$IMAGE:$SUITE"
