#!/bin/sh
# Render the nginx configuration from the qa deploy template for container replicas,
# run nginx, and reload it when the replicas' addresses change.
# Open-source nginx resolves upstream names only when it loads its configuration, and
# a restarted or scaled container gets a new address: every NGINX_RESOLVE_SECONDS the
# names are looked up again and nginx reloads when the answer differs (a reload keeps
# connections in flight). Writes only to NGINX_PREFIX (a tmpfs with a read-only root).
set -eu
PREFIX=${NGINX_PREFIX:-/tmp/nginx}
mkdir -p "$PREFIX/logs" "$PREFIX/tmp"
# Logs go to the container's output. The access log names the route only (the
# template's format); nginx's error-log lines (limit_req, upstream errors) quote the
# request line with its query string, so they pass through `qa deploy scrub-log`
# (nginx's own stderr, where the template sends its error log, included).
ln -sf /dev/stdout "$PREFIX/logs/access.log"
rm -f "$PREFIX/logs/error.log"
mkfifo "$PREFIX/logs/error.log"
exec 3<>"$PREFIX/logs/error.log"  # held open, so the scrubber never reads an end of file
qa deploy scrub-log < "$PREFIX/logs/error.log" >&2 &
qa deploy render --listen "$NGINX_LISTEN" --upstream "$NGINX_UPSTREAMS" \
    --rate "$NGINX_RATE" --burst "$NGINX_BURST" \
    --template /opt/helpdesk-qa/share/nginx.conf.template > "$PREFIX/nginx.conf"

addresses() {
    for u in $(echo "$NGINX_UPSTREAMS" | tr ',' ' '); do
        getent ahostsv4 "${u%:*}" | awk '{print $1}' | sort -u
    done | tr '\n' ' '
}

# nginx refuses to start while a name does not resolve (replicas still starting).
tries=0
until [ -n "$(addresses)" ] && nginx -t -q -e "$PREFIX/logs/error.log" -p "$PREFIX" -c nginx.conf 2>/dev/null; do
    tries=$((tries + 1))
    if [ $((tries % 15)) -eq 0 ]; then  # say why, every 15 s
        echo "nginx-entrypoint: waiting for $NGINX_UPSTREAMS:" >&2
        nginx -t -q -e "$PREFIX/logs/error.log" -p "$PREFIX" -c nginx.conf || true
    fi
    sleep 1
done
# The template logs errors to stderr (`qa deploy` scrubs its pipe): here that is the fifo too.
nginx -e "$PREFIX/logs/error.log" -p "$PREFIX" -c nginx.conf 2>"$PREFIX/logs/error.log" &
NGINX=$!
trap 'kill -QUIT $NGINX 2>/dev/null; wait $NGINX; exit 0' QUIT TERM INT
seen=$(addresses)
while kill -0 $NGINX 2>/dev/null; do
    sleep "$NGINX_RESOLVE_SECONDS" &
    wait $! || true
    now=$(addresses)
    if [ -n "$now" ] && [ "$now" != "$seen" ]; then
        echo "nginx-entrypoint: replicas now at $now; reloading" >&2
        nginx -e "$PREFIX/logs/error.log" -p "$PREFIX" -c nginx.conf -s reload 2>"$PREFIX/logs/error.log" || true
        seen=$now
    fi
done
wait $NGINX
