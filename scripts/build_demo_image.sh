#!/usr/bin/env bash
# Builds orchestry/demo:latest offline: Debian's static busybox, its applet symlinks, an httpd entrypoint
# and a few CGI endpoints (see scripts/demo-image/), packed with `docker import`.  No registry needed.
#
#   scripts/build_demo_image.sh              build (always)
#   scripts/build_demo_image.sh --if-needed  build only when the image is missing or its inputs changed
#   scripts/build_demo_image.sh --print-hash print the inputs' hash and exit
#
# The image carries the label orchestry.demo-hash = hash of scripts/demo-image/, this script and the
# busybox binary, which is what --if-needed compares.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source_dir="$repo_root/scripts/demo-image"
image=${ORCHESTRY_DEMO_IMAGE:-orchestry/demo:latest}
busybox=${BUSYBOX:-/bin/busybox}
hash_label=orchestry.demo-hash

inputs_hash() {
    {
        # Paths, modes and contents: a lost executable bit must also trigger a rebuild.
        (cd "$source_dir" && find . -type f -printf '%m %p\n' | LC_ALL=C sort)
        (cd "$source_dir" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
        sha256sum <"${BASH_SOURCE[0]}"
        sha256sum <"$busybox"
    } | sha256sum | cut -c1-16
}

if [[ ! -x "$busybox" ]]; then
    echo "error: $busybox not found: install Debian's busybox-static (apt-get install -y busybox-static)" >&2
    exit 1
fi

want_hash=$(inputs_hash)
case "${1:-}" in
    --print-hash)
        echo "$want_hash"
        exit 0
        ;;
    --if-needed)
        have_hash=$(docker image inspect -f "{{ index .Config.Labels \"$hash_label\" }}" "$image" 2>/dev/null || true)
        if [[ "$have_hash" == "$want_hash" ]]; then
            echo "demo image $image is up to date ($hash_label=$want_hash)"
            exit 0
        fi
        ;;
    "") ;;
    *)
        echo "usage: $0 [--if-needed|--print-hash]" >&2
        exit 2
        ;;
esac

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage"/{bin,etc,tmp,proc,sys,dev,root,www}
chmod 1777 "$stage/tmp"
cp "$busybox" "$stage/bin/busybox"
while read -r applet; do
    [[ -z "$applet" || "$applet" == \#* ]] && continue
    ln -s busybox "$stage/bin/$applet"
done <"$source_dir/applets"
install -m 0755 "$source_dir/serve" "$stage/bin/serve"
cp -R "$source_dir/www/." "$stage/www/"
chmod 0644 "$stage/www/health"
chmod 0755 "$stage"/www/cgi-bin/*
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$stage/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$stage/etc/group"

tar --numeric-owner --owner=0 --group=0 -C "$stage" -c . |
    docker import \
        -c 'ENV PATH=/bin' \
        -c 'ENV PORT=8080' \
        -c 'EXPOSE 8080' \
        -c 'WORKDIR /www' \
        -c "LABEL $hash_label=$want_hash" \
        -c 'CMD ["/bin/serve"]' \
        -m "orchestry demo image (busybox httpd), inputs $want_hash" \
        - "$image" >/dev/null
echo "built $image ($hash_label=$want_hash)"
