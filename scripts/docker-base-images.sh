#!/usr/bin/env bash
# Builds the two local base images that docker/Dockerfile and
# docker/docker-compose.yml use, without pulling anything from a registry:
#
#   debian:bookworm-slim  a minimal Debian 12 made with debootstrap and `docker import`
#   nginx:bookworm        Debian's nginx on top of it, run like the official image
#                         (`nginx -g 'daemon off;'`, logs on stdout/stderr, serves
#                         /etc/nginx/conf.d/*.conf)
#
# The Debian mirror is the one this machine's apt already uses, and the
# images trust the CA certificates this machine added locally
# (/usr/local/share/ca-certificates, e.g. a proxy's), so that apt and cargo
# work inside `docker build` as they do here. An image that already carries
# the hash of the recipe (debootstrap_tarball below) and of those
# certificates is kept, and the debootstrapped root is cached as a tarball,
# so a rerun takes seconds. To refresh the images with Debian's latest
# updates, delete the tarball and `docker rmi nginx:bookworm debian:bookworm-slim`.
#
# Usage: scripts/docker-base-images.sh   (as root on Debian 12, with docker)
# Env:   TFPM_IMAGE_CACHE   tarball cache (default /var/cache/tfpm/images)
set -euo pipefail

cache="${TFPM_IMAGE_CACHE:-/var/cache/tfpm/images}"
release=bookworm
debian_tag="debian:$release-slim"
nginx_tag="nginx:$release"
local_cas=/usr/local/share/ca-certificates
label=tfpm.base-hash

log() { echo "docker-base-images: $*" >&2; }

# The first URI of a `deb` entry in this machine's apt sources whose suites
# include exactly $1 (deb822 .sources files and one-line sources.list).
mirror_for() {
  local suite="$1" f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    awk -v suite="$suite" '
      function flush() { if (isdeb && hassuite && uri != "" && !done) { print uri; done = 1 } isdeb = hassuite = 0; uri = "" }
      /^[ \t]*$/ { flush(); next }
      /^#/ { next }
      $1 == "Types:" { for (i = 2; i <= NF; i++) if ($i == "deb") isdeb = 1 }
      $1 == "Suites:" { for (i = 2; i <= NF; i++) if ($i == suite) hassuite = 1 }
      $1 == "URIs:" { uri = $2 }
      END { flush() }
    ' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    # deb [options] URI suite components...
    awk -v suite="$suite" '$1 == "deb" {
        i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i + 1) == suite) print $i
      }' "$f"
  done
}

# The value of our label on image $1, empty if the image is missing.
image_hash() {
  docker image inspect --format "{{ index .Config.Labels \"$label\" }}" "$1" 2>/dev/null || true
}

# Debian's minimal root file system, as a tarball in the cache.
debootstrap_tarball() {
  local tarball="$1" mirror="$2" security="$3"
  root="$(mktemp -d /var/tmp/tfpm-rootfs.XXXXXX)"
  trap 'rm -rf "$root"' EXIT
  log "debootstrap $release from $mirror (a few minutes, mostly downloads)"
  debootstrap --variant=minbase --include=ca-certificates "$release" "$root" "$mirror" >&2
  # apt sources in Debian 12's own deb822 form, with the same mirrors as this machine.
  rm -f "$root/etc/apt/sources.list"
  {
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n' "$mirror" "$release" "$release"
    printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    if [[ -n "$security" ]]; then
      printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\n' "$security" "$release"
      printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    fi
  } >"$root/etc/apt/sources.list.d/debian.sources"
  # What the official slim image does: no docs, man pages or translations
  # from later installs, no recommends, no .deb files kept, and no services
  # started by package scripts.
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
  cat >"$root/etc/apt/apt.conf.d/docker-slim" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
EOF
  if [[ -d "$local_cas" ]]; then
    cp -a "$local_cas/." "$root$local_cas/"
    chroot "$root" update-ca-certificates >&2
  fi
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$root"/usr/share/{man,info,locale,groff,lintian}/* \
    "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/log/*.log "$root"/tmp/*
  mkdir -p "$cache"
  tar --numeric-owner -C "$root" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$root"
}

debian_image() {
  if [[ "$(image_hash "$debian_tag")" == "$hash" ]]; then
    log "$debian_tag is up to date"
    return
  fi
  local mirror security
  mirror="$(mirror_for "$release" | head -n1)"
  security="$(mirror_for "$release-security" | head -n1)"
  [[ -n "$mirror" ]] || { log "no deb entry for $release in /etc/apt sources"; exit 1; }
  local tarball="$cache/debian-$release-$hash.tar"
  [[ -f "$tarball" ]] || debootstrap_tarball "$tarball" "$mirror" "$security"
  log "importing $tarball as $debian_tag"
  docker import --change "LABEL $label=$hash" --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$tarball" "$debian_tag" >/dev/null
  # Tarballs made another way are no longer needed.
  find "$cache" -name "debian-$release-*.tar" -not -name "debian-$release-$hash.tar" -delete
}

# Docker's layer cache makes this quick when nothing changed.
nginx_image() {
  log "building $nginx_tag"
  local out
  out="$(docker build -t "$nginx_tag" - 2>&1 <<EOF
FROM $debian_tag
RUN apt-get update && apt-get install -y nginx && rm -rf /var/lib/apt/lists/* \\
 && rm -f /etc/nginx/sites-enabled/default \\
 && ln -sf /dev/stdout /var/log/nginx/access.log \\
 && ln -sf /dev/stderr /var/log/nginx/error.log
# Like the official image's default site; mount your own conf.d/default.conf over it.
RUN printf 'server {\\n    listen 80 default_server;\\n    root /var/www/html;\\n    index index.html index.nginx-debian.html;\\n}\\n' \\
    >/etc/nginx/conf.d/default.conf
LABEL $label=$hash
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
EOF
)" || { echo "$out" >&2; exit 1; }
}

# The images' key: how the root file system is made, and the local CAs. Only
# a change to these rebuilds the images (and so everything built on them).
hash="$({ echo "$release"; declare -f debootstrap_tarball
  find "$local_cas" -type f 2>/dev/null | sort | xargs -r cat; } | sha256sum | cut -c1-12)"

command -v docker >/dev/null || { log "docker is not installed"; exit 1; }
command -v debootstrap >/dev/null || { log "debootstrap is not installed (scripts/install-deps.sh)"; exit 1; }
# The images these replace, removed unless something still builds on them.
# (Never `docker image prune` here: with the legacy builder it would also
# delete the untagged builder stage of docker/Dockerfile, and the PHP build
# cached in it.)
old="$(docker image inspect --format '{{.Id}}' "$debian_tag" "$nginx_tag" 2>/dev/null || true)"
debian_image
nginx_image
for id in $old; do
  docker image inspect --format '{{.RepoTags}}' "$id" | grep -q '\[\]' && docker rmi "$id" >/dev/null 2>&1 || true
done
log "ready: $debian_tag, $nginx_tag"
