#!/usr/bin/env bash
# Build the images that deploy/compose.yaml and deploy/k8s/ use, with podman:
#   localhost/helpdesk-qa-base:bookworm   Debian minbase + python3 (deploy/base/build-base.sh)
#   localhost/helpdesk-qa:runtime         the serving venv, no index
#   localhost/helpdesk-qa:latest          runtime + the index of CORPUS, built at build time
#   localhost/helpdesk-qa-nginx:latest    nginx + the qa deploy template
#   localhost/helpdesk-qa-postgres:15     PostgreSQL 15 for the event store
# Usage: deploy/build-images.sh [base|app|nginx|postgres ...]   (default: all)
# Environment:
#   BASE       another Debian/Python base image instead of the mmdebstrap one
#   CORPUS     corpus folder inside the repository (default: corpus)
#   EXTRA_CA   a PEM file of extra CA certificates for pip behind a TLS proxy (default:
#              the certificates in /usr/local/share/ca-certificates); passed as a build
#              secret, never stored in an image. EXTRA_CA= (empty) passes none.
#   PIP_INDEX_URL, PIP_EXTRA_INDEX_URL   passed on to pip inside the build
#   EXTRAS     the serving venv's extras (default: postgres); postgres,onnx adds the
#              second stage's runtime (HELPDESK_QA_RERANKER), see docs/deploy.md
# Each step prints its time.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${*:-base app nginx postgres}
APP=${APP_IMAGE:-localhost/helpdesk-qa}
CORPUS=${CORPUS:-corpus}

step() {  # step NAME COMMAND...: run and print how long it took
  local name=$1 start=$SECONDS; shift
  "$@"
  echo "build-images: $name took $((SECONDS - start)) s"
}

secret_file=$(mktemp)
trap 'rm -f "$secret_file"' EXIT
if [ "${EXTRA_CA+set}" = set ]; then
  [ -z "$EXTRA_CA" ] || cat "$EXTRA_CA" > "$secret_file"
else
  cat /usr/local/share/ca-certificates/*.crt > "$secret_file" 2>/dev/null || true
fi
build() {  # podman build with the options every image needs
  # --format docker keeps HEALTHCHECK; the secret is empty when no extra CA is needed.
  podman build --format docker --secret "id=extra_ca,src=$secret_file" \
    ${PIP_INDEX_URL:+--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL"} \
    ${PIP_EXTRA_INDEX_URL:+--build-arg "PIP_EXTRA_INDEX_URL=$PIP_EXTRA_INDEX_URL"} -q "$@" >/dev/null
}

if [ -n "${BASE:-}" ]; then
  base=$BASE
else
  base=$(deploy/base/build-base.sh --print-tag)
fi
for s in $STEPS; do
  case $s in
    base) [ -n "${BASE:-}" ] || step base deploy/base/build-base.sh ;;
    app)
      extras=(${EXTRAS:+--build-arg "EXTRAS=$EXTRAS"})
      step runtime build --build-arg "BASE=$base" "${extras[@]}" --target runtime -t "$APP:runtime" -f deploy/Containerfile .
      step index build --build-arg "BASE=$base" "${extras[@]}" --build-arg "CORPUS=$CORPUS" -t "$APP:latest" \
        -f deploy/Containerfile . ;;
    nginx) step nginx build --build-arg "APP=$APP:runtime" -t "$APP-nginx:latest" -f deploy/nginx/Containerfile . ;;
    postgres) step postgres build --build-arg "BASE=$base" -t "$APP-postgres:15" -f deploy/postgres/Containerfile . ;;
    *) echo "error: unknown step $s (base, app, nginx, postgres)" >&2; exit 2 ;;
  esac
done
podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "^$APP(-nginx|-postgres|-base)?:" || true
