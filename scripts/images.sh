#!/usr/bin/env bash
# Build every image docker-compose.yml needs, with no container registry (`make images`).
#
#   scripts/images.sh [--refresh] [--list] [IMAGE...]
#
# IMAGE is one of: nats redis prometheus alertmanager executor-base ingress dispatcher executor
# keys cli, or a group: infra (nats redis prometheus alertmanager), services (ingress
# dispatcher executor keys cli).
# Default: all of them.
#
# What each image is made of (details in the Dockerfiles):
#   nats          nats-server built with `go install` at the version pkg/go.mod pins, static,
#                 on scratch with busybox (deploy/images/nats/)
#   redis         Debian's redis-server: debootstrap --variant=minbase (deploy/images/redis/)
#   prometheus    Debian's prometheus binaries + the libraries ldd lists, on scratch with
#                 busybox, and its web UI (/usr/share/prometheus/web, with the libjs-*
#                 files its symlinks point at copied in) (deploy/images/prometheus/)
#   alertmanager  alertmanager and amtool built with `go install` at the version of
#                 docker-compose.yml's default tag, static, web UI built in, on scratch
#                 with busybox and Debian's CA bundle (deploy/images/alertmanager/).
#                 Not Debian's prometheus-alertmanager: that package has no web UI.
#   executor-base Debian minbase with bash curl jq git ca-certificates (deploy/images/executor-base/)
#   ingress dispatcher executor keys cli
#                 our binaries, built static on this host, through deploy/docker/Dockerfile,
#                 with Debian's CA bundle (from the executor base's root filesystem)
#
# Tags are the ones docker-compose.yml uses, resolved like compose does: the environment,
# then .env, then the default written in docker-compose.yml (official names such as
# nats:<v>-alpine, redis:7, prom/prometheus:v<v>, prom/alertmanager:v<v>,
# ghcr.io/hookrun/<svc>:dev). So the compose file runs unchanged here and, with a registry,
# on the official images.
#
# Reruns are cheap: Debian root filesystems, .debs, nats-server and alertmanager are cached
# under .cache/images/ (git-ignored), and an image whose inputs (Dockerfile, build
# arguments, files of its context) hash to the label it already carries is not rebuilt.
# --refresh drops the Debian caches first (to pick up Debian security updates).
#
# Environment:
#   HOOKRUN_IMAGES_CACHE     cache directory (default .cache/images)
#   HOOKRUN_IMAGES_BIN_DIR   take our binaries from this directory instead of building them
#                            (static linux binaries named hookrun-ingress, ..., hookrun)
#   DEBIAN_SUITE             Debian release of the Debian-based images (default bookworm)
#   DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR
#                            default: the host's apt sources for that suite, else deb.debian.org
#
# Needs: docker, go, and for the Debian-based images (as root): debootstrap, apt-get,
# dpkg-deb, chroot, tar.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

CACHE=${HOOKRUN_IMAGES_CACHE:-$ROOT/.cache/images}
SUITE=${DEBIAN_SUITE:-bookworm}
COMPOSE_FILE_PATH=$ROOT/docker-compose.yml
LABEL=dev.hookrun.images.inputs
# Bump when the way a root filesystem is made changes, to rebuild cached ones.
ROOTFS_RECIPE=1
EXECUTOR_BASE_PACKAGES=bash,ca-certificates,curl,git,jq
REDIS_PACKAGES=redis-server
# What the symlinks of Debian's /usr/share/prometheus/web/static point at (the prometheus
# package's Depends): the web UI answers 500 without them.
PROMETHEUS_WEB_PACKAGES=(fonts-glyphicons-halflings libjs-bootstrap4 libjs-d3 libjs-eonasdan-bootstrap-datetimepicker
	libjs-jquery libjs-jquery-hotkeys libjs-moment libjs-moment-timezone libjs-mustache libjs-popper.js libjs-rickshaw)
EXECUTOR_BASE_TAG=hookrun-local/executor-base:$SUITE

ALL_IMAGES=(nats redis prometheus alertmanager executor-base ingress dispatcher executor keys cli)
BUILT=()
UPTODATE=()
START=$SECONDS

log() { printf '==> [%3ds] %s\n' "$((SECONDS - START))" "$*" >&2; }
die() { printf 'images.sh: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is needed${2:+ ($2)}"; }

# ensure_tool COMMAND PACKAGE: install PACKAGE from Debian when COMMAND is missing and we
# may (root with apt-get): a fresh machine has docker and go, not always debootstrap.
ensure_tool() {
	command -v "$1" >/dev/null 2>&1 && return 0
	if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
		log "installing $2 (for $1) with apt-get"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null 2>&1 ||
			{ apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null; } ||
			die "cannot install $2"
	fi
	need "$1" "apt-get install $2"
}

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }

# --- settings -------------------------------------------------------------------------

# compose_default VAR: the default docker-compose.yml gives in ${VAR:-default}.
compose_default() {
	local v
	v=$(sed -n "s/.*\${$1:-\([^}]*\)}.*/\1/p" "$COMPOSE_FILE_PATH" | sed -n 1p)
	[[ -n $v ]] || die "docker-compose.yml has no \${$1:-...} default"
	printf '%s' "$v"
}

# setting VAR: like compose interpolation: environment, then .env, then compose's default.
setting() {
	local name=$1 v
	if [[ -n ${!name:-} ]]; then
		printf '%s' "${!name}"
		return
	fi
	if [[ -f $ROOT/.env ]]; then
		v=$(sed -n "s/^[[:space:]]*$name[[:space:]]*=[[:space:]]*//p" "$ROOT/.env" | tail -n1)
		v=${v%\"}; v=${v#\"}; v=${v%\'}; v=${v#\'}
		if [[ -n $v ]]; then
			printf '%s' "$v"
			return
		fi
	fi
	compose_default "$name"
}

# --- helpers ----------------------------------------------------------------------------

sha() { sha256sum | cut -c1-64; }

# tree_hash DIR: one hash over the names, modes and contents of every file under DIR.
tree_hash() {
	(cd "$1" && find . \( -type f -o -type l \) -printf '%p %m %l\n' | LC_ALL=C sort |
		while read -r p m l; do
			if [[ -n $l ]]; then echo "$p $m -> $l"; else echo "$p $m $(sha <"$p")"; fi
		done) | sha
}

# build_image NAME TAG HASH DOCKERFILE CONTEXT [docker build args...]
build_image() {
	local name=$1 tag=$2 hash=$3 dockerfile=$4 ctx=$5
	shift 5
	local have logf
	have=$(docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$tag" 2>/dev/null || true)
	if [[ $have == "$hash" ]]; then
		log "$name: $tag is up to date"
		UPTODATE+=("$tag")
		return
	fi
	log "$name: building $tag"
	logf=$CACHE/logs/$name.log
	if ! docker build --label "$LABEL=$hash" -t "$tag" -f "$dockerfile" "$@" "$ctx" >"$logf" 2>&1; then
		tail -n 40 "$logf" >&2
		die "$name: docker build failed (full log: $logf)"
	fi
	BUILT+=("$tag")
}

# --- Debian packages --------------------------------------------------------------------

# detect_mirrors: "main-URI security-URI" for $SUITE from the host's apt sources.
detect_mirrors() {
	local files=()
	shopt -s nullglob
	files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
	shopt -u nullglob
	local existing=()
	for f in "${files[@]}"; do [[ -f $f ]] && existing+=("$f"); done
	((${#existing[@]})) || { echo "- -"; return; }
	awk -v suite="$SUITE" '
		function take(u, s) {
			if (s == suite && main == "") main = u
			if (s == suite "-security" && sec == "") sec = u
		}
		function flush(   n, i, a, b, m, j) {
			if (enabled && uris != "" && suites != "") {
				n = split(uris, a, /[ \t]+/); m = split(suites, b, /[ \t]+/)
				for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) if (a[i] != "" && b[j] != "") take(a[i], b[j])
			}
			uris = ""; suites = ""; enabled = 1
		}
		FNR == 1 { flush() }
		/^[ \t]*$/ { flush(); next }
		/^Enabled:[ \t]*no/ { enabled = 0 }
		/^Types:/ { if ($0 !~ /[ \t]deb([ \t]|$)/) enabled = 0 }
		/^URIs:/ { sub(/^URIs:[ \t]*/, ""); uris = $0 }
		/^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
		/^deb[ \t]/ { line = $0; sub(/\[[^]]*\]/, "", line); split(line, f, /[ \t]+/); take(f[2], f[3]) }
		END { flush(); print (main == "" ? "-" : main), (sec == "" ? "-" : sec) }
	' "${existing[@]}"
}

MIRROR=${DEBIAN_MIRROR:-}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-}
mirrors() {
	[[ -n $MIRROR && -n $SECURITY_MIRROR ]] && return
	local m s
	read -r m s < <(detect_mirrors)
	[[ -n $MIRROR ]] || { [[ $m != - ]] && MIRROR=$m || MIRROR=http://deb.debian.org/debian; }
	[[ -n $SECURITY_MIRROR ]] || { [[ $s != - ]] && SECURITY_MIRROR=$s || SECURITY_MIRROR=http://deb.debian.org/debian-security; }
}

# fetch_deb PACKAGE: path of the package's .deb in the cache, downloaded with apt-get.
fetch_deb() {
	local pkg=$1 dir=$CACHE/debs f
	mkdir -p "$dir"
	f=$(find "$dir" -maxdepth 1 -name "${pkg}_*.deb" -print -quit)
	if [[ -z $f ]]; then
		need apt-get "to download Debian packages"
		log "downloading Debian package $pkg"
		if ! (cd "$dir" && apt-get download -qq -o APT::Sandbox::User=root "$pkg" >/dev/null 2>&1); then
			log "apt-get update (no $pkg in the package lists)"
			apt-get update -qq >/dev/null
			(cd "$dir" && apt-get download -qq -o APT::Sandbox::User=root "$pkg" >/dev/null) ||
				die "cannot download Debian package $pkg"
		fi
		f=$(find "$dir" -maxdepth 1 -name "${pkg}_*.deb" -print -quit)
	fi
	printf '%s' "$f"
}

# deb_upstream_version FILE.deb: 2.42.0 for 2.42.0+ds-5+deb12u1, 7.0.15 for 5:7.0.15-1~deb12u10
deb_upstream_version() {
	dpkg-deb -f "$1" Version | sed -e 's/^[0-9]*://' -e 's/[-+~].*//'
}

# debian_rootfs NAME PACKAGES: path of a cached root filesystem tarball: Debian $SUITE
# minbase plus PACKAGES (comma-separated), upgraded from -updates and -security, slimmed
# like the debian:*-slim images.
debian_rootfs() {
	local name=$1 pkgs=$2
	local out=$CACHE/rootfs/$name.tar
	local key="suite=$SUITE packages=$pkgs recipe=$ROOTFS_RECIPE"
	if [[ -f $out && -f $out.key && $(cat "$out.key") == "$key" && -f $out.sha256 ]]; then
		printf '%s' "$out"
		return
	fi
	[[ $(id -u) == 0 ]] || die "building the $name root filesystem needs root (debootstrap, chroot)"
	ensure_tool debootstrap debootstrap
	need chroot
	mirrors
	mkdir -p "$CACHE/rootfs" "$CACHE/debootstrap" "$CACHE/tmp"
	local dir logf=$CACHE/logs/rootfs-$name.log t0=$SECONDS
	dir=$(mktemp -d "$CACHE/tmp/rootfs-$name.XXXXXX")
	log "$name: debootstrap --variant=minbase $SUITE + $pkgs from $MIRROR"
	if ! debootstrap --variant=minbase --cache-dir="$CACHE/debootstrap" --include="$pkgs" \
		"$SUITE" "$dir" "$MIRROR" >"$logf" 2>&1; then
		tail -n 30 "$logf" >&2
		rm -rf "$dir"
		die "debootstrap failed (full log: $logf)"
	fi

	# Like debian:*-slim: no docs, man pages or translations, now or when users add packages.
	cat >"$dir/etc/dpkg/dpkg.cfg.d/docker-slim" <<-'EOF'
		path-exclude /usr/share/doc/*
		path-include /usr/share/doc/*/copyright
		path-exclude /usr/share/groff/*
		path-exclude /usr/share/info/*
		path-exclude /usr/share/lintian/overrides/*
		path-exclude /usr/share/locale/*
		path-exclude /usr/share/man/*
	EOF
	find "$dir/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete 2>/dev/null || true
	find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
	rm -rf "$dir"/usr/share/{groff,info,lintian,locale,man}/* 2>/dev/null || true

	# Security and point-release updates (debootstrap installs the release as it was).
	log "$name: apt-get dist-upgrade from $SUITE-updates and $SUITE-security"
	printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
		"$MIRROR" "$SUITE" "$MIRROR" "$SUITE" "$SECURITY_MIRROR" "$SUITE" >"$dir/etc/apt/sources.list"
	printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
	chmod 755 "$dir/usr/sbin/policy-rc.d"
	cp /etc/resolv.conf "$dir/etc/resolv.conf"
	local mounted=
	mount -t proc proc "$dir/proc" 2>/dev/null && mounted=1
	local rc=0
	{
		chroot "$dir" apt-get update -qq &&
			DEBIAN_FRONTEND=noninteractive chroot "$dir" apt-get -qq -y \
				-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold dist-upgrade &&
			chroot "$dir" apt-get clean
	} >>"$logf" 2>&1 || rc=$?
	[[ -n $mounted ]] && umount "$dir/proc"
	if ((rc)); then
		tail -n 30 "$logf" >&2
		rm -rf "$dir"
		die "apt-get dist-upgrade in the $name root filesystem failed (full log: $logf)"
	fi

	# What a user of the image gets: the public mirror, no host leftovers.
	printf 'deb http://deb.debian.org/debian %s main\ndeb http://deb.debian.org/debian %s-updates main\ndeb http://deb.debian.org/debian-security %s-security main\n' \
		"$SUITE" "$SUITE" "$SUITE" >"$dir/etc/apt/sources.list"
	rm -f "$dir/usr/sbin/policy-rc.d"
	: >"$dir/etc/resolv.conf"
	echo localhost >"$dir/etc/hostname"
	printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$dir/etc/hosts"
	rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
		"$dir"/var/cache/debconf/*-old "$dir"/var/lib/dpkg/*-old "$dir"/dev/* "$dir"/run/* "$dir"/tmp/*
	find "$dir/var/log" -type f -delete

	tar --numeric-owner -C "$dir" -cf "$out.tmp" .
	rm -rf "$dir"
	mv "$out.tmp" "$out"
	sha <"$out" >"$out.sha256"
	echo "$key" >"$out.key"
	log "$name: root filesystem ready ($(du -h "$out" | cut -f1), $((SECONDS - t0))s)"
	printf '%s' "$out"
}

# --- images -----------------------------------------------------------------------------

nats_version() {
	local f v
	for f in pkg/go.mod cmd/hookrun/go.mod services/*/go.mod; do
		[[ -f $f ]] || continue
		v=$(awk '{ for (i = 1; i < NF; i++) if ($i == "github.com/nats-io/nats-server/v2") { print $(i + 1); exit } }' "$f")
		[[ -n $v ]] && { printf '%s' "$v"; return; }
	done
	die "no go.mod in the workspace requires github.com/nats-io/nats-server/v2"
}

# go_nats_binary: nats-server at the version the workspace pins, static, cached.
go_nats_binary() {
	local ver bindir
	ver=$(nats_version)
	bindir=$CACHE/nats-server/$ver
	[[ -x $bindir/nats-server ]] && return 0
	need go
	log "nats: go install github.com/nats-io/nats-server/v2@$ver"
	rm -rf "$bindir.tmp"
	mkdir -p "$bindir.tmp"
	(cd "$CACHE" && GOWORK=off GOFLAGS="${GOFLAGS:-} -buildvcs=false" CGO_ENABLED=0 GOBIN="$bindir.tmp" \
		go install -trimpath -ldflags='-s -w' "github.com/nats-io/nats-server/v2@$ver") ||
		die "building nats-server $ver failed"
	rm -rf "$bindir"
	mv "$bindir.tmp" "$bindir"
	log "nats: nats-server $ver built"
}

image_nats() {
	local tag ver def
	tag=$(setting NATS_IMAGE)
	ver=$(nats_version)
	def=$(compose_default NATS_IMAGE)
	[[ $def == "nats:${ver#v}-alpine" ]] ||
		die "docker-compose.yml defaults NATS_IMAGE to $def, but pkg/go.mod pins nats-server $ver: make them agree (nats:${ver#v}-alpine)"
	local bindir=$CACHE/nats-server/$ver
	[[ -x $bindir/nats-server ]] || go_nats_binary
	local bb ctx=$CACHE/ctx/nats
	bb=$(fetch_deb busybox-static)
	rm -rf "$ctx"
	mkdir -p "$ctx/data" "$ctx/bb"
	dpkg-deb -x "$bb" "$ctx/bb"
	mv "$ctx/bb/bin/busybox" "$ctx/busybox"
	rm -rf "$ctx/bb"
	cp "$bindir/nats-server" "$ctx/"
	cp deploy/images/nats/docker-entrypoint.sh deploy/images/nats/nats-server.conf "$ctx/"
	local hash
	hash=$({ tree_hash "$ctx"; sha <deploy/images/nats/Dockerfile; } | sha)
	build_image nats "$tag" "$hash" deploy/images/nats/Dockerfile "$ctx"
}

image_redis() {
	local tag rootfs def ver
	tag=$(setting REDIS_IMAGE)
	rootfs=$(debian_rootfs redis "$REDIS_PACKAGES")
	def=$(compose_default REDIS_IMAGE)
	local ctx=$CACHE/ctx/redis
	rm -rf "$ctx"
	mkdir -p "$ctx"
	ln "$rootfs" "$ctx/rootfs.tar" 2>/dev/null || cp "$rootfs" "$ctx/rootfs.tar"
	ver=$(tar -xOf "$rootfs" ./var/lib/dpkg/status | awk '/^Package: redis-server$/ { p = 1 } p && !done && /^Version:/ { print $2; done = 1 }' |
		sed -e 's/^[0-9]*://' -e 's/[-+~].*//')
	[[ $def == redis:${ver%%.*}* ]] ||
		die "docker-compose.yml defaults REDIS_IMAGE to $def, but Debian's redis-server is $ver"
	local hash
	hash=$({ cat "$rootfs.sha256"; sha <deploy/images/redis/Dockerfile; } | sha)
	build_image redis "$tag" "$hash" deploy/images/redis/Dockerfile "$ctx"
}

image_executor_base() {
	local rootfs
	rootfs=$(debian_rootfs executor-base "$EXECUTOR_BASE_PACKAGES")
	local ctx=$CACHE/ctx/executor-base
	rm -rf "$ctx"
	mkdir -p "$ctx"
	ln "$rootfs" "$ctx/rootfs.tar" 2>/dev/null || cp "$rootfs" "$ctx/rootfs.tar"
	local hash
	hash=$({ cat "$rootfs.sha256"; sha <deploy/images/executor-base/Dockerfile; } | sha)
	build_image executor-base "$EXECUTOR_BASE_TAG" "$hash" deploy/images/executor-base/Dockerfile "$ctx"
}

# copy_from_tree ROOT PATH DEST: copy ROOT/PATH to DEST, following symlinks inside ROOT.
copy_from_tree() {
	local root=$1 p=$2 dest=$3 t i
	for ((i = 0; i < 16; i++)); do
		[[ -L $root$p ]] || break
		t=$(readlink "$root$p")
		if [[ $t == /* ]]; then p=$t; else p=$(dirname "$p")/$t; fi
	done
	[[ -f $root$p ]] || return 1
	install -D -m 0755 "$root$p" "$dest"
}

image_prometheus() {
	local tag def deb ver
	tag=$(setting PROMETHEUS_IMAGE)
	def=$(compose_default PROMETHEUS_IMAGE)
	need dpkg-deb
	need ldd
	deb=$(fetch_deb prometheus)
	ver=$(deb_upstream_version "$deb")
	[[ $def == "prom/prometheus:v$ver" ]] ||
		die "docker-compose.yml defaults PROMETHEUS_IMAGE to $def, but Debian's prometheus is $ver (prom/prometheus:v$ver)"
	local ctx=$CACHE/ctx/prometheus stage=$CACHE/tmp/prometheus-debs
	rm -rf "$ctx" "$stage"
	mkdir -p "$ctx/rootfs/etc" "$ctx/data" "$ctx/web" "$stage/prometheus" "$stage/libc6" "$stage/busybox"
	dpkg-deb -x "$deb" "$stage/prometheus"
	# The web UI (--web.local-assets=/usr/share/prometheus/web/): templates and static
	# files, whose libraries are relative symlinks into the libjs-* packages. Unpacked
	# into the same tree they resolve there (never on this host), and tar -h copies
	# what they point at. moment-timezone's data/ (200 MB of JSON) is not used by the UI.
	local p
	for p in "${PROMETHEUS_WEB_PACKAGES[@]}"; do
		dpkg-deb -x "$(fetch_deb "$p")" "$stage/prometheus"
	done
	tar -C "$stage/prometheus/usr/share/prometheus/web" -chf - --exclude=./static/moment-timezone/data . |
		tar -C "$ctx/web" -xf - ||
		die "prometheus: cannot copy the web UI (a symlink of /usr/share/prometheus/web points at a file none of PROMETHEUS_WEB_PACKAGES has?)"
	dpkg-deb -x "$(fetch_deb libc6)" "$stage/libc6"
	dpkg-deb -x "$(fetch_deb busybox-static)" "$stage/busybox"
	cp "$stage/prometheus/usr/bin/prometheus" "$stage/prometheus/usr/bin/promtool" "$ctx/"
	cp "$stage/busybox/bin/busybox" "$ctx/busybox"
	local b lib
	for b in prometheus promtool; do
		for lib in $(ldd "$ctx/$b" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
			copy_from_tree "$stage/libc6" "$lib" "$ctx/rootfs$lib" ||
				die "prometheus: $b needs $lib, which Debian's libc6 does not ship"
		done
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$ctx/rootfs/etc/passwd"
	printf 'root:x:0:\nnobody:x:65534:\n' >"$ctx/rootfs/etc/group"
	printf 'hosts: files dns\n' >"$ctx/rootfs/etc/nsswitch.conf"
	cp deploy/images/prometheus/prometheus.yml "$ctx/"
	rm -rf "$stage"
	local hash
	hash=$({ tree_hash "$ctx"; sha <deploy/images/prometheus/Dockerfile; } | sha)
	build_image prometheus "$tag" "$hash" deploy/images/prometheus/Dockerfile "$ctx"
}

# alertmanager_version: v0.25.0 for docker-compose.yml's default prom/alertmanager:v0.25.0.
alertmanager_version() {
	local def
	def=$(compose_default ALERTMANAGER_IMAGE)
	[[ $def =~ ^prom/alertmanager:(v[0-9]+\.[0-9]+\.[0-9]+)$ ]] ||
		die "docker-compose.yml defaults ALERTMANAGER_IMAGE to $def, want prom/alertmanager:v<version>"
	printf '%s' "${BASH_REMATCH[1]}"
}

# go_alertmanager_binaries: alertmanager and amtool at that version, static, cached. Built
# from the Go module like the official image's: its web UI is compiled in (Debian's
# prometheus-alertmanager ships none), time zones too (-tags timetzdata, for
# time_intervals with a location).
go_alertmanager_binaries() {
	local ver bindir m=github.com/prometheus/alertmanager
	ver=$(alertmanager_version)
	bindir=$CACHE/alertmanager/$ver
	[[ -x $bindir/alertmanager && -x $bindir/amtool ]] && return 0
	need go
	log "alertmanager: go install $m/cmd/{alertmanager,amtool}@$ver"
	rm -rf "$bindir.tmp"
	mkdir -p "$bindir.tmp"
	(cd "$CACHE" && GOWORK=off GOFLAGS="${GOFLAGS:-} -buildvcs=false" CGO_ENABLED=0 GOBIN="$bindir.tmp" \
		go install -trimpath -tags timetzdata \
		-ldflags="-s -w -X github.com/prometheus/common/version.Version=${ver#v} -X github.com/prometheus/common/version.Branch=$ver -X github.com/prometheus/common/version.BuildUser=hookrun-images" \
		"$m/cmd/alertmanager@$ver" "$m/cmd/amtool@$ver") ||
		die "building alertmanager $ver failed"
	rm -rf "$bindir"
	mv "$bindir.tmp" "$bindir"
	log "alertmanager: alertmanager $ver built"
}

image_alertmanager() {
	local tag ver bindir
	tag=$(setting ALERTMANAGER_IMAGE)
	ver=$(alertmanager_version)
	bindir=$CACHE/alertmanager/$ver
	[[ -x $bindir/alertmanager ]] || go_alertmanager_binaries
	local bb ctx=$CACHE/ctx/alertmanager
	bb=$(fetch_deb busybox-static)
	rm -rf "$ctx"
	mkdir -p "$ctx/rootfs/etc/ssl/certs" "$ctx/data" "$ctx/bb"
	dpkg-deb -x "$bb" "$ctx/bb"
	mv "$ctx/bb/bin/busybox" "$ctx/busybox"
	rm -rf "$ctx/bb"
	cp "$bindir/alertmanager" "$bindir/amtool" "$ctx/"
	# Receivers (Slack, webhooks, e-mail) are reached over TLS: Debian's CA bundle, from
	# the executor base's root filesystem like our services' images.
	local rootfs
	rootfs=$(debian_rootfs executor-base "$EXECUTOR_BASE_PACKAGES")
	tar -xOf "$rootfs" ./etc/ssl/certs/ca-certificates.crt >"$ctx/rootfs/etc/ssl/certs/ca-certificates.crt" ||
		die "no /etc/ssl/certs/ca-certificates.crt in $rootfs"
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$ctx/rootfs/etc/passwd"
	printf 'root:x:0:\nnobody:x:65534:\n' >"$ctx/rootfs/etc/group"
	printf 'hosts: files dns\n' >"$ctx/rootfs/etc/nsswitch.conf"
	cp deploy/images/alertmanager/alertmanager.yml "$ctx/"
	local hash
	hash=$({ tree_hash "$ctx"; sha <deploy/images/alertmanager/Dockerfile; } | sha)
	build_image alertmanager "$tag" "$hash" deploy/images/alertmanager/Dockerfile "$ctx"
}

# go_service_binaries TARGET...: our binaries for these targets in $CACHE/ctx/services/bin.
go_service_binaries() {
	local ctx=$CACHE/ctx/services want=() pkgs=() t b
	mkdir -p "$ctx/bin"
	for t in "$@"; do
		case $t in
		cli) want+=(hookrun); pkgs+=(./cmd/hookrun) ;;
		*) want+=("hookrun-$t"); pkgs+=("./services/$t/cmd/hookrun-$t") ;;
		esac
	done
	if [[ -n ${HOOKRUN_IMAGES_BIN_DIR:-} ]]; then
		log "services: binaries from $HOOKRUN_IMAGES_BIN_DIR"
		for b in "${want[@]}"; do
			[[ -f $HOOKRUN_IMAGES_BIN_DIR/$b ]] || die "$HOOKRUN_IMAGES_BIN_DIR/$b does not exist"
			cmp -s "$HOOKRUN_IMAGES_BIN_DIR/$b" "$ctx/bin/$b" || cp "$HOOKRUN_IMAGES_BIN_DIR/$b" "$ctx/bin/$b"
		done
	else
		need go
		for t in "${pkgs[@]}"; do
			[[ -d $t ]] || die "$t does not exist (yet): cannot build ${t##*/}"
		done
		log "services: go build (static) ${want[*]}"
		CGO_ENABLED=0 GOOS=linux GOFLAGS="${GOFLAGS:-} -buildvcs=false" \
			go build -trimpath -ldflags='-s -w' -o "$ctx/bin/" "${pkgs[@]}" || die "go build failed"
		log "services: binaries built"
	fi
}

# services_context: the build context of our images: bin/ (go_service_binaries), the CA
# bundle, and the Dockerfile without its registry-only stages.
SERVICES_CTX=
services_context() {
	[[ -n $SERVICES_CTX ]] && return
	local ctx=$CACHE/ctx/services
	mkdir -p "$ctx/bin" "$ctx/etc/ssl/certs"
	# Debian's CA bundle, from the executor base (the host's may hold local additions).
	local rootfs
	rootfs=$(debian_rootfs executor-base "$EXECUTOR_BASE_PACKAGES")
	tar -xOf "$rootfs" ./etc/ssl/certs/ca-certificates.crt >"$CACHE/tmp/ca-certificates.crt" ||
		die "no /etc/ssl/certs/ca-certificates.crt in $rootfs"
	cmp -s "$CACHE/tmp/ca-certificates.crt" "$ctx/etc/ssl/certs/ca-certificates.crt" ||
		cp "$CACHE/tmp/ca-certificates.crt" "$ctx/etc/ssl/certs/ca-certificates.crt"
	# The Dockerfile without the stages that need a registry (see its header).
	sed '/^# >>> registry-only/,/^# <<< registry-only/d' deploy/docker/Dockerfile >"$ctx/Dockerfile.prebuilt"
	SERVICES_CTX=$ctx
}

image_service() {
	local t=$1 prefix version tag bin
	prefix=$(setting HOOKRUN_IMAGE_PREFIX)
	version=$(setting HOOKRUN_VERSION)
	case $t in
	cli) tag=$prefix/hookrun:$version bin=hookrun ;;
	*) tag=$prefix/$t:$version bin=hookrun-$t ;;
	esac
	local ctx=$SERVICES_CTX args=(--target "$t" --build-arg BIN_SOURCE=prebuilt)
	local extra=
	if [[ $t == executor ]]; then
		docker image inspect "$EXECUTOR_BASE_TAG" >/dev/null 2>&1 || image_executor_base
		args+=(--build-arg "EXECUTOR_BASE=$EXECUTOR_BASE_TAG")
		extra=$(docker image inspect -f '{{.Id}}' "$EXECUTOR_BASE_TAG")
	fi
	local hash
	hash=$({
		sha <"$ctx/Dockerfile.prebuilt"
		printf '%s\n' "${args[@]}" "$extra"
		sha <"$ctx/bin/$bin"
		sha <"$ctx/etc/ssl/certs/ca-certificates.crt"
	} | sha)
	build_image "$t" "$tag" "$hash" "$ctx/Dockerfile.prebuilt" "$ctx" "${args[@]}"
}

# --- main -------------------------------------------------------------------------------

REFRESH=
WANT=()
while (($#)); do
	case $1 in
	-h | --help) usage; exit 0 ;;
	--refresh) REFRESH=1 ;;
	--list)
		printf '%s\n' "${ALL_IMAGES[@]}"
		exit 0
		;;
	infra) WANT+=(nats redis prometheus alertmanager) ;;
	services) WANT+=(ingress dispatcher executor keys cli) ;;
	nats | redis | prometheus | alertmanager | executor-base | ingress | dispatcher | executor | keys | cli) WANT+=("$1") ;;
	*) die "unknown image or option: $1 (see --help)" ;;
	esac
	shift
done
((${#WANT[@]})) || WANT=("${ALL_IMAGES[@]}")

need docker
docker info >/dev/null 2>&1 || die "the Docker engine does not answer"
# Without buildx the docker CLI refuses DOCKER_BUILDKIT=1; the classic builder does the job.
if ! docker buildx version >/dev/null 2>&1; then export DOCKER_BUILDKIT=0; fi

mkdir -p "$CACHE/logs" "$CACHE/tmp"
exec 9>"$CACHE/.lock"
flock -w 1800 9 || die "another images.sh holds $CACHE/.lock"
rm -rf "$CACHE"/tmp/*

if [[ -n $REFRESH ]]; then
	log "--refresh: dropping cached Debian root filesystems and packages"
	rm -rf "$CACHE/rootfs" "$CACHE/debs" "$CACHE/debootstrap"
fi

want() { local w; for w in "${WANT[@]}"; do [[ $w == "$1" ]] && return 0; done; return 1; }

svc=()
for t in ingress keys dispatcher executor cli; do want "$t" && svc+=("$t"); done

# Phase 1: the Go builds (CPU) run in the background while the Debian root filesystems and
# packages (network, disk) are prepared in the foreground.
GOJOB=
stop_gojob() {
	if [[ -n $GOJOB ]] && kill -0 "$GOJOB" 2>/dev/null; then
		pkill -TERM -P "$GOJOB" 2>/dev/null || true
		kill -TERM "$GOJOB" 2>/dev/null || true
	fi
}
trap stop_gojob EXIT
if want nats || want alertmanager || ((${#svc[@]})); then
	(
		if want nats; then go_nats_binary; fi
		if want alertmanager; then go_alertmanager_binaries; fi
		if ((${#svc[@]})); then go_service_binaries "${svc[@]}"; fi
	) &
	GOJOB=$!
fi
if want redis; then debian_rootfs redis "$REDIS_PACKAGES" >/dev/null; fi
if want executor-base || want alertmanager || ((${#svc[@]})); then debian_rootfs executor-base "$EXECUTOR_BASE_PACKAGES" >/dev/null; fi
if want nats || want prometheus || want alertmanager; then fetch_deb busybox-static >/dev/null; fi
if want prometheus; then
	fetch_deb prometheus >/dev/null && fetch_deb libc6 >/dev/null
	for p in "${PROMETHEUS_WEB_PACKAGES[@]}"; do fetch_deb "$p" >/dev/null; done
fi
if [[ -n $GOJOB ]]; then
	wait "$GOJOB" || die "building the Go binaries failed"
	GOJOB=
fi

# Phase 2: the images.
if want nats; then image_nats; fi
if want redis; then image_redis; fi
if want prometheus; then image_prometheus; fi
if want alertmanager; then image_alertmanager; fi
if want executor-base; then image_executor_base; fi
if ((${#svc[@]})); then
	services_context
	for t in "${svc[@]}"; do image_service "$t"; done
fi

echo
echo "images.sh: ${#BUILT[@]} built, ${#UPTODATE[@]} up to date, $((SECONDS - START))s"
for t in "${BUILT[@]}"; do printf '  built       %s\n' "$t"; done
for t in "${UPTODATE[@]}"; do printf '  up to date  %s\n' "$t"; done
