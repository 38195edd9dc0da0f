#!/bin/sh
# Served for "/" (busybox httpd runs /cgi-bin/index.cgi for a directory without index.html), for GET and
# POST alike: a POST body is read (at most 64 KiB) and its size echoed, so tests can send both.
received=0
if [ "$REQUEST_METHOD" = POST ] && [ -n "$CONTENT_LENGTH" ]; then
    received=$(head -c "$CONTENT_LENGTH" | head -c 65536 | wc -c)
fi
printf 'Content-Type: text/plain\r\n\r\n'
echo "orchestry demo: replica=${ORCHESTRY_REPLICA:-${HOSTNAME:-unknown}} port=${PORT:-8080} method=${REQUEST_METHOD:-GET} received=${received}"
