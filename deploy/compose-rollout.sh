#!/usr/bin/env bash
# Rolling update (or rollback) of the Compose replicas to IMAGE, one at a time:
# stop one (SIGTERM: it drains, nginx retries on the others), recreate it from IMAGE,
# wait until its health check (/readyz) passes, then the next.
#   POSTGRES_PASSWORD=… deploy/compose-rollout.sh localhost/helpdesk-qa:2026-12-03
#   POSTGRES_PASSWORD=… deploy/compose-rollout.sh localhost/helpdesk-qa:previous   # rollback
# Later `podman-compose up` calls need the same QA_IMAGE (e.g. in deploy/.env).
# PROJECT: the compose project name (podman-compose -p; default: deploy).
set -euo pipefail
IMAGE=${1:?usage: compose-rollout.sh IMAGE}
PROJECT=${PROJECT:-deploy}
COMPOSE=(podman-compose -p "$PROJECT" -f "$(dirname "$0")/compose.yaml")
podman image exists "$IMAGE" || { echo "error: no image $IMAGE (deploy/build-images.sh, or podman pull)" >&2; exit 1; }
replicas=$(podman ps -a --filter "label=com.docker.compose.project=$PROJECT" \
  --filter "label=com.docker.compose.service=qa" --format '{{.Names}}' | sort)
[ -n "$replicas" ] || { echo "error: no qa replicas in project $PROJECT" >&2; exit 1; }
for name in $replicas; do
  echo "rollout: $name -> $IMAGE"
  podman stop -t 20 "$name" >/dev/null
  podman rm "$name" >/dev/null
  # podman-compose recreates the missing replica; the running containers stay.
  QA_IMAGE=$IMAGE "${COMPOSE[@]}" up -d qa >/dev/null 2>&1 || true
  for _ in $(seq 120); do
    podman healthcheck run "$name" >/dev/null 2>&1 && break
    sleep 1
  done
  podman healthcheck run "$name" >/dev/null 2>&1 || { echo "error: $name not ready on $IMAGE; stopping here" >&2; exit 1; }
done
echo "rollout: every replica on $IMAGE"
