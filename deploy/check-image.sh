#!/usr/bin/env bash
# Prove a built image: it turns healthy with no network at all (nothing downloads at run time),
# runs as a non-root user with the hosted profile, and serves health and the app on loopback.
#
#   deploy/check-image.sh IMAGE [PORT]    # prints the loopback URL of a running container
#
# The container stays up (named lmcore-check-PORT) for a browser check; stop it with
# `docker rm -f lmcore-check-PORT`. tests/deploy/test_image.py runs this and renders a page.
set -euo pipefail
image=$1
port=${2:-18599}
net=lmcore-check-none
docker network inspect "$net" >/dev/null 2>&1 || docker network create --internal "$net" >/dev/null

offline=lmcore-check-offline-$port
docker rm -f "$offline" >/dev/null 2>&1 || true
docker run -d --name "$offline" --network "$net" "$image" >/dev/null
trap 'docker rm -f "$offline" >/dev/null 2>&1 || true' EXIT
for _ in $(seq 1 60); do  # the image's HEALTHCHECK: first probe after its 30 s start period
  state=$(docker inspect -f '{{.State.Health.Status}}' "$offline")
  [ "$state" = healthy ] && break
  [ "$state" = unhealthy ] && { docker logs "$offline" >&2; echo "unhealthy" >&2; exit 1; }
  sleep 2
done
[ "$state" = healthy ] || { echo "not healthy after 120 s (state: $state)" >&2; exit 1; }
user=$(docker exec "$offline" id -un)
profile=$(docker exec "$offline" sh -c 'echo $LMCORE_PROFILE')
[ "$user" != root ] || { echo "the container runs as root" >&2; exit 1; }
[ "$profile" = hosted ] || { echo "LMCORE_PROFILE=$profile, not hosted" >&2; exit 1; }
echo "offline container: healthy, user $user, LMCORE_PROFILE=$profile" >&2

# The same image on the host's loopback (only), for a browser to open one page.
name=lmcore-check-$port
docker rm -f "$name" >/dev/null 2>&1 || true
docker run -d --name "$name" --network host -e ADDRESS=127.0.0.1 -e PORT="$port" "$image" \
  >/dev/null
for _ in $(seq 1 60); do
  if python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/_stcore/health', timeout=2)" 2>/dev/null; then
    echo "http://127.0.0.1:$port"
    exit 0
  fi
  sleep 1
done
docker logs "$name" >&2
echo "no health answer on 127.0.0.1:$port" >&2
exit 1
