#!/usr/bin/env bash
# Idempotent, cached set-up of the real Kubernetes control plane that pitrix's
# cluster tests (crates/testkit/src/cluster.rs) start: etcd, kube-apiserver and
# kube-controller-manager, as three binaries in $PITRIX_CACHE/k8s/bin/.
#
# Recipe (shared/reference/test-cluster.md): no Docker/kind/k3s/envtest download
# is reachable, but Debian bookworm ships the Kubernetes 1.20.2 source (with
# vendor/) and Go 1.19, so kube-apiserver and kube-controller-manager are built
# from `apt-get source kubernetes` with upstream's own make, fully offline; etcd
# comes from apt `etcd-server`. The vendored reflect2 1.0.1 / json-iterator
# 1.1.10 crash under Go >= 1.18 and are replaced by Debian's 1.0.2 / 1.1.12.
#
# Cost: the first build takes about 7 minutes and 1.4 GiB of RAM; after that the
# binaries are cached and a run finishes in a second or two.
#
# Skipped entirely when the user brings their own cluster or binaries:
#   PITRIX_TEST_KUBECONFIG=<kubeconfig of a disposable cluster>
#   KUBEBUILDER_ASSETS=<dir with kube-apiserver and etcd> (envtest convention)
#
# Usage: bash scripts/setup-test-cluster.sh   (from any directory; as root for apt)
#        PITRIX_KEEP_K8S_BUILD=1 keeps the unpacked source tree and Go cache.
set -euo pipefail
set -o errtrace

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PITRIX_CACHE="${PITRIX_CACHE:-$REPO_ROOT/.cache}"
K8S_DIR="$PITRIX_CACHE/k8s"
BIN_DIR="$K8S_DIR/bin"
BUILD_DIR="$K8S_DIR/build"
STAMP="$BIN_DIR/.build-info"

K8S_VERSION="1.20.2"
K8S_GIT_COMMIT="faecb196815e248d3ecfb03c680a4507229c2a56" # upstream tag v1.20.2
GO_BIN="/usr/lib/go-1.19/bin"
# Bump when the build recipe changes, so cached binaries get rebuilt.
RECIPE_REV="1 reflect2-1.0.2 json-iterator-1.1.12"

APT_PACKAGES=(
    etcd-server
    golang-1.19-go
    dpkg-dev
    make
    rsync
    openssl
    golang-github-modern-go-reflect2-dev
    golang-github-json-iterator-go-dev
)
REFLECT2_SRC="/usr/share/gocode/src/github.com/modern-go/reflect2"
JSONITER_SRC="/usr/share/gocode/src/github.com/json-iterator/go"
DEB_SRC_FILE="/etc/apt/sources.list.d/pitrix-deb-src.sources"

log() { printf '[setup-test-cluster] %s\n' "$*"; }
die() {
    printf '[setup-test-cluster] ERROR: %s\n' "$*" >&2
    exit 1
}
trap 'rc=$?; printf "[setup-test-cluster] ERROR: command failed (exit %s) at line %s: %s\n" "$rc" "$LINENO" "$BASH_COMMAND" >&2; exit "$rc"' ERR

# --- checks --------------------------------------------------------------------
# Prints "<name>: <version>" for each cached binary; fails if any is missing or broken.
cached_versions() {
    local out
    out="$("$BIN_DIR/kube-apiserver" --version 2>&1)" || return 1
    [[ "$out" == *"v$K8S_VERSION"* ]] || return 1
    echo "kube-apiserver: $out"
    out="$("$BIN_DIR/kube-controller-manager" --version 2>&1)" || return 1
    [[ "$out" == *"v$K8S_VERSION"* ]] || return 1
    echo "kube-controller-manager: $out"
    # No `| head` here: under pipefail, etcd's SIGPIPE would fail the check at random.
    out="$("$BIN_DIR/etcd" --version 2>&1)" || return 1
    out="${out%%$'\n'*}"
    [[ "$out" == "etcd Version"* ]] || return 1
    echo "etcd: $out"
    [[ -f "$STAMP" ]] && grep -qxF "recipe: $RECIPE_REV" "$STAMP" || return 1
}

# --- apt -------------------------------------------------------------------------
missing_apt_packages() {
    local p
    for p in "${APT_PACKAGES[@]}"; do
        if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != "installed" ]]; then
            echo "$p"
        fi
    done
}

APT_UPDATED=0
apt_update() {
    [[ $APT_UPDATED -eq 1 ]] && return 0
    log "apt: apt-get update"
    apt-get update -qq || die "apt-get update failed"
    APT_UPDATED=1
}

setup_apt_packages() {
    local missing
    missing="$(missing_apt_packages)"
    if [[ -z "$missing" ]]; then
        log "apt: packages present (${APT_PACKAGES[*]})"
        return 0
    fi
    [[ $EUID -eq 0 ]] || die "need root to install Debian packages: $(echo $missing)"
    command -v apt-get >/dev/null || die "no apt-get: install $(echo $missing) by other means, or set KUBEBUILDER_ASSETS"
    apt_update
    # shellcheck disable=SC2086  # one package per word
    log "apt: installing $(echo $missing)"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing \
        >"$K8S_DIR/apt-install.log" 2>&1 || {
        tail -n 40 "$K8S_DIR/apt-install.log" >&2
        die "apt-get install failed for: $(echo $missing) (log: $K8S_DIR/apt-install.log)"
    }
    missing="$(missing_apt_packages)"
    # shellcheck disable=SC2086
    [[ -z "$missing" ]] || die "still not installed after apt-get install: $(echo $missing)"
}

# A deb-src entry mirroring the Debian (non-security) stanza of debian.sources:
# same URIs, suites, components and keyring.
setup_deb_src() {
    if apt-cache showsrc kubernetes 2>/dev/null | grep -qE "^Version: ([^ ]*really)?${K8S_VERSION//./\\.}-"; then
        log "apt: source package kubernetes $K8S_VERSION is available"
        return 0
    fi
    [[ $EUID -eq 0 ]] || die "need root to add a deb-src entry to /etc/apt"
    if [[ ! -f "$DEB_SRC_FILE" ]]; then
        local main=/etc/apt/sources.list.d/debian.sources stanza
        [[ -f "$main" ]] || die "no $main to derive a deb-src entry from; add a deb-src line for Debian bookworm main by hand"
        # First stanza whose URIs point at the main Debian archive (not -security).
        stanza="$(awk -v RS= '/URIs:[^\n]*\/debian([ \t\n\/]|$)/ && !/debian-security/ { print; exit }' "$main")"
        [[ -n "$stanza" ]] || die "could not find the Debian archive stanza in $main"
        log "apt: adding deb-src entry $DEB_SRC_FILE"
        {
            echo "# Added by pitrix scripts/setup-test-cluster.sh: source of Debian's kubernetes package."
            printf '%s\n' "$stanza" | sed -e 's/^Types:.*/Types: deb-src/' -e '/^#/d'
        } >"$DEB_SRC_FILE"
    fi
    APT_UPDATED=0
    apt_update
    apt-cache showsrc kubernetes 2>/dev/null | grep -qE "^Version: ([^ ]*really)?${K8S_VERSION//./\\.}-" \
        || die "source package kubernetes $K8S_VERSION not found after adding $DEB_SRC_FILE"
}

# --- source ----------------------------------------------------------------------
# Prints the unpacked source tree, fetching it first if needed. (Debian versions it
# 1.20.5+really1.20.2: the tree is kubernetes-1.20.5+really1.20.2.)
fetch_source() {
    local tree
    tree=""
    if [[ -d "$BUILD_DIR" ]]; then
        tree="$(find "$BUILD_DIR" -mindepth 1 -maxdepth 1 -type d -name "kubernetes-*" | head -n1)"
    fi
    if [[ -n "$tree" && -f "$tree/.pitrix-unpacked" ]]; then
        log "source: reusing $tree" >&2
        echo "$tree"
        return 0
    fi
    rm -rf "$BUILD_DIR"
    mkdir -p "$BUILD_DIR"
    log "source: apt-get source kubernetes (~35 MB download, unpacks to ~500 MB)" >&2
    (cd "$BUILD_DIR" && apt-get source -qq kubernetes >&2) || die "apt-get source kubernetes failed"
    tree="$(find "$BUILD_DIR" -mindepth 1 -maxdepth 1 -type d -name "kubernetes-*" | head -n1)"
    [[ -n "$tree" && -f "$tree/Makefile" && -d "$tree/vendor" ]] \
        || die "apt-get source did not produce a kubernetes-$K8S_VERSION tree with Makefile and vendor/ in $BUILD_DIR"
    touch "$tree/.pitrix-unpacked"
    echo "$tree"
}

# Replaces the non-test .go/.s files of one vendored package by Debian's newer ones.
replace_vendored() {
    local tree="$1" import_path="$2" src="$3"
    local dst="$tree/vendor/$import_path"
    [[ -d "$dst" ]] || die "vendor fix: $dst does not exist"
    [[ -d "$src" ]] || die "vendor fix: $src does not exist (is its -dev package installed?)"
    find "$dst" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' -delete
    find "$src" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' \
        -exec cp -L -t "$dst" {} +
    [[ -n "$(find "$dst" -maxdepth 1 -name '*.go' ! -name '*_test.go' -print -quit)" ]] \
        || die "vendor fix: no .go files copied into $dst"
}

apply_vendor_fix() {
    local tree="$1"
    if [[ -f "$tree/.pitrix-vendor-fix" ]]; then
        log "vendor fix: already applied"
        return 0
    fi
    log "vendor fix: reflect2 -> $(dpkg-query -W -f='${Version}' golang-github-modern-go-reflect2-dev)," \
        "json-iterator -> $(dpkg-query -W -f='${Version}' golang-github-json-iterator-go-dev)"
    replace_vendored "$tree" github.com/modern-go/reflect2 "$REFLECT2_SRC"
    replace_vendored "$tree" github.com/json-iterator/go "$JSONITER_SRC"
    touch "$tree/.pitrix-vendor-fix"
}

# --- build -----------------------------------------------------------------------
build_binaries() {
    local tree="$1"
    [[ -x "$GO_BIN/go" ]] || die "no Go 1.19 at $GO_BIN (apt golang-1.19-go)"
    local version_file="$BUILD_DIR/version.env"
    cat >"$version_file" <<EOF
KUBE_GIT_COMMIT='$K8S_GIT_COMMIT'
KUBE_GIT_TREE_STATE='clean'
KUBE_GIT_VERSION='v$K8S_VERSION'
KUBE_GIT_MAJOR='${K8S_VERSION%%.*}'
KUBE_GIT_MINOR='$(echo "$K8S_VERSION" | cut -d. -f2)'
EOF
    mkdir -p "$BUILD_DIR/gocache" "$BUILD_DIR/home"
    log "build: make WHAT=\"cmd/kube-apiserver cmd/kube-controller-manager\" (about 7 min, 1.4 GiB RAM)"
    local start=$SECONDS
    (
        cd "$tree"
        env -u GOPATH -u GOROOT -u GO111MODULE -u GOFLAGS \
            PATH="$GO_BIN:$PATH" \
            HOME="$BUILD_DIR/home" \
            GOCACHE="$BUILD_DIR/gocache" \
            GOPROXY=off \
            GOFLAGS= \
            CGO_ENABLED=0 \
            GOLDFLAGS="-s -w" \
            KUBE_GIT_VERSION_FILE="$version_file" \
            make WHAT="cmd/kube-apiserver cmd/kube-controller-manager"
    ) >"$BUILD_DIR/make.log" 2>&1 || {
        tail -n 60 "$BUILD_DIR/make.log" >&2
        die "make failed (full log: $BUILD_DIR/make.log)"
    }
    log "build: done in $((SECONDS - start))s"
    local b
    for b in kube-apiserver kube-controller-manager; do
        [[ -x "$tree/_output/bin/$b" ]] || die "build produced no $tree/_output/bin/$b (log: $BUILD_DIR/make.log)"
    done
}

install_binaries() {
    local tree="$1" etcd_bin
    etcd_bin="$(command -v etcd || true)"
    [[ -n "$etcd_bin" ]] || etcd_bin=/usr/bin/etcd
    [[ -x "$etcd_bin" ]] || die "no etcd binary (apt etcd-server)"
    mkdir -p "$BIN_DIR"
    # Copy under temporary names, then rename: a concurrent reader never sees half a file.
    local b
    for b in kube-apiserver kube-controller-manager; do
        cp -L "$tree/_output/bin/$b" "$BIN_DIR/.$b.tmp"
        mv -f "$BIN_DIR/.$b.tmp" "$BIN_DIR/$b"
    done
    cp -L "$etcd_bin" "$BIN_DIR/.etcd.tmp"
    mv -f "$BIN_DIR/.etcd.tmp" "$BIN_DIR/etcd"
    {
        echo "recipe: $RECIPE_REV"
        echo "kubernetes: $K8S_VERSION (Debian source $(dpkg-parsechangelog -l "$tree/debian/changelog" -S Version 2>/dev/null || echo '?'))"
        echo "go: $("$GO_BIN/go" version)"
        echo "etcd: $(dpkg-query -W -f='${Version}' etcd-server)"
        echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    } >"$STAMP"
}

main() {
    SECONDS=0
    if [[ -n "${PITRIX_TEST_KUBECONFIG:-}" ]]; then
        [[ -f "$PITRIX_TEST_KUBECONFIG" ]] || die "PITRIX_TEST_KUBECONFIG=$PITRIX_TEST_KUBECONFIG is not a file"
        log "PITRIX_TEST_KUBECONFIG is set: tests use that cluster, nothing to build"
        return 0
    fi
    if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
        local b
        for b in kube-apiserver etcd; do
            [[ -x "$KUBEBUILDER_ASSETS/$b" ]] || die "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no executable $b"
        done
        log "KUBEBUILDER_ASSETS is set: tests use $KUBEBUILDER_ASSETS, nothing to build"
        return 0
    fi

    mkdir -p "$K8S_DIR"
    # One set-up at a time per cache (two concurrent builds would need 2.8 GiB and clash).
    exec 9>"$K8S_DIR/.lock"
    flock 9

    local versions
    if versions="$(cached_versions 2>/dev/null)"; then
        log "binaries: present in $BIN_DIR"
        printf '%s\n' "$versions" | sed 's/^/[setup-test-cluster]   /'
        log "ready in ${SECONDS}s"
        return 0
    fi

    log "binaries: not (all) present in $BIN_DIR; building (cache: $K8S_DIR)"
    setup_deb_src
    setup_apt_packages
    local tree
    tree="$(fetch_source)"
    apply_vendor_fix "$tree"
    build_binaries "$tree"
    install_binaries "$tree"
    versions="$(cached_versions)" || die "the freshly installed binaries in $BIN_DIR do not report v$K8S_VERSION"
    printf '%s\n' "$versions" | sed 's/^/[setup-test-cluster]   /'
    if [[ "${PITRIX_KEEP_K8S_BUILD:-0}" != 1 ]]; then
        log "build: removing $BUILD_DIR (keep it with PITRIX_KEEP_K8S_BUILD=1)"
        rm -rf "$BUILD_DIR"
    fi
    log "ready in ${SECONDS}s"
}

main "$@"
