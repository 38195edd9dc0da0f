#!/bin/sh
# Served for "/" (busybox httpd runs /cgi-bin/index.cgi for a directory without index.html).
printf 'Content-Type: text/plain\r\n\r\n'
echo "orchestry demo: replica=${ORCHESTRY_REPLICA:-${HOSTNAME:-unknown}} port=${PORT:-8080}"
