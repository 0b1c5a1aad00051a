#!/usr/bin/env bash
# Builds pitrix's container image as an OCI image layout in OUT, with no container engine or
# daemon: a static musl binary (cargo build --release --locked), then the layout written by
# scripts/image/layout.py. The same commit, toolchain and CA bundle give byte-identical layouts
# (same digests). Push it with skopeo:
#   skopeo copy oci:OUT docker://ghcr.io/OWNER/pitrix:VERSION
#
# Usage: scripts/build-image.sh OUT [--arch amd64|arm64]
#        scripts/build-image.sh --setup      install what building and checking images need
#                                            (musl-tools, the rustup target, skopeo, umoci)
#
# Environment:
#   SOURCE_DATE_EPOCH         every timestamp in the image (default: the commit time of HEAD)
#   PITRIX_IMAGE_TARGET_DIR   cargo's target directory (default: <repo>/target/musl, apart
#                             from the debug build so that it is not evicted)
#   PITRIX_CA_BUNDLE          the CA bundle to include (default: Debian's ca-certificates,
#                             /etc/ssl/certs/ca-certificates.crt)
#   CC_<target>, CARGO_TARGET_<TARGET>_LINKER   a C cross compiler/linker for the other arch
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The GitHub owner the release workflow publishes under (ghcr.io/<owner>/pitrix), used for the
# image's source label while Cargo.toml declares no `repository`. Keep it equal to
# IMAGE_OWNER in src/reconcile/deploy.rs (tests/integration/image.rs checks).
IMAGE_OWNER="pitrix"

log() { printf '[build-image] %s\n' "$*" >&2; }
die() {
    printf '[build-image] ERROR: %s\n' "$*" >&2
    exit 1
}
usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

apt_install() { # apt_install PACKAGE... (as root, once per run)
    command -v apt-get >/dev/null || die "$* missing and no apt-get: install $* by hand"
    [[ $EUID -eq 0 ]] || die "$* missing: install them as root (apt-get install $*)"
    if [[ -z "${APT_UPDATED:-}" ]]; then
        apt-get update -qq || die "apt-get update failed"
        APT_UPDATED=1
    fi
    log "installing Debian packages: $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
        || die "apt-get install $* failed"
}

ensure_rust_target() { # ensure_rust_target TRIPLE
    command -v rustup >/dev/null || die "no rustup: the $1 standard library cannot be installed"
    if ! rustup target list --installed | grep -qx "$1"; then
        log "rustup target add $1"
        rustup target add "$1" >&2 || die "rustup target add $1 failed"
    fi
}

ensure_ca_bundle() {
    [[ -n "${PITRIX_CA_BUNDLE:-}" ]] && return 0
    [[ -s /etc/ssl/certs/ca-certificates.crt ]] || apt_install ca-certificates
    [[ -s /etc/ssl/certs/ca-certificates.crt ]] || die "no /etc/ssl/certs/ca-certificates.crt"
}

setup() {
    local missing=()
    command -v musl-gcc >/dev/null || missing+=(musl-tools)
    command -v skopeo >/dev/null || missing+=(skopeo)
    command -v umoci >/dev/null || missing+=(umoci)
    [[ -s /etc/ssl/certs/ca-certificates.crt ]] || missing+=(ca-certificates)
    ((${#missing[@]} == 0)) || apt_install "${missing[@]}"
    ensure_rust_target "$(uname -m)-unknown-linux-musl"
    log "setup: musl-gcc, skopeo $(skopeo --version | awk '{print $3}'), umoci $(umoci --version | awk '{print $3}'), rust target $(uname -m)-unknown-linux-musl"
}

OUT=""
ARCH=""
while (($#)); do
    case "$1" in
    --setup)
        setup
        exit 0
        ;;
    --arch)
        [[ $# -ge 2 ]] || usage
        ARCH="$2"
        shift 2
        ;;
    --arch=*)
        ARCH="${1#--arch=}"
        shift
        ;;
    -h | --help) usage ;;
    -*) die "unknown option $1 (see --help)" ;;
    *)
        [[ -z "$OUT" ]] || die "one OUT directory only (got $OUT and $1)"
        OUT="$1"
        shift
        ;;
    esac
done
[[ -n "$OUT" ]] || usage

case "$(uname -m)" in
x86_64) HOST_ARCH=amd64 ;;
aarch64 | arm64) HOST_ARCH=arm64 ;;
*) HOST_ARCH="$(uname -m)" ;;
esac
ARCH="${ARCH:-$HOST_ARCH}"
case "$ARCH" in
amd64) CPU=x86_64 ;;
arm64) CPU=aarch64 ;;
*) die "--arch $ARCH: expected amd64 or arm64" ;;
esac
TARGET="$CPU-unknown-linux-musl"
TARGET_ENV="${TARGET//-/_}"
TARGET_ENV_UPPER="${TARGET_ENV^^}"

# A C compiler for the target: ring, libdeflate, libgit2, libssh2, zlib and OpenSSL are C.
cc_var="CC_$TARGET_ENV"
if [[ -n "${!cc_var:-}" ]]; then
    log "C compiler for $TARGET: \$$cc_var=${!cc_var}"
elif [[ "$ARCH" == "$HOST_ARCH" ]]; then
    command -v musl-gcc >/dev/null || apt_install musl-tools
    command -v musl-gcc >/dev/null || die "musl-tools installed but no musl-gcc on PATH"
    export "$cc_var=musl-gcc"
elif command -v "$CPU-linux-musl-gcc" >/dev/null; then
    export "$cc_var=$CPU-linux-musl-gcc"
    linker_var="CARGO_TARGET_${TARGET_ENV_UPPER}_LINKER"
    [[ -n "${!linker_var:-}" ]] || export "$linker_var=$CPU-linux-musl-gcc"
else
    die "cannot build for $ARCH on this $HOST_ARCH machine: no C cross compiler for $TARGET.
  pitrix links C code (OpenSSL, libgit2, libssh2, zlib, libdeflate, ring), so an $ARCH musl
  build needs $CPU-linux-musl-gcc on PATH (Debian ships none), or \$$cc_var and
  \$CARGO_TARGET_${TARGET_ENV_UPPER}_LINKER naming one. Build on an $ARCH machine instead, or
  with a container engine: docker buildx build --platform linux/$ARCH -f Containerfile ."
fi
ensure_rust_target "$TARGET"
ensure_ca_bundle
CA_BUNDLE="${PITRIX_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
[[ -s "$CA_BUNDLE" ]] || die "no CA bundle at $CA_BUNDLE"

if [[ -z "${SOURCE_DATE_EPOCH:-}" ]]; then
    SOURCE_DATE_EPOCH="$(git -C "$REPO_ROOT" log -1 --format=%ct 2>/dev/null || echo 0)"
fi
[[ "$SOURCE_DATE_EPOCH" =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH is not a number of seconds"
export SOURCE_DATE_EPOCH
REVISION="$(git -C "$REPO_ROOT" rev-parse HEAD 2>/dev/null || true)"

# The package's metadata, read from Cargo.toml (Python 3.11's tomllib).
PYTHON="${PITRIX_BASE_PYTHON:-python3}"
mapfile -t META < <("$PYTHON" - "$REPO_ROOT/Cargo.toml" <<'PY'
import sys, tomllib
p = tomllib.load(open(sys.argv[1], "rb"))["package"]
for key in ("version", "license", "description", "repository"):
    print(p.get(key, ""))
PY
)
VERSION="${META[0]}"
LICENSE="${META[1]}"
DESCRIPTION="${META[2]}"
SOURCE="${META[3]:-https://github.com/$IMAGE_OWNER/pitrix}"
[[ -n "$VERSION" ]] || die "no package.version in Cargo.toml"

TARGET_DIR="${PITRIX_IMAGE_TARGET_DIR:-$REPO_ROOT/target/musl}"
CARGO_HOME_DIR="${CARGO_HOME:-$HOME/.cargo}"
# cargo builds through a fixed path, a symbolic link to TARGET_DIR held under a lock: OpenSSL's
# build writes its install directory (inside the target directory) into the binary, so the
# path must be the same on every machine for the binary to be. Other paths of this machine
# (the repository, cargo's registry) are remapped. Debug info is stripped (symbols stay, for
# backtraces): the image needs no line tables. The Containerfile builds through the same path.
STABLE_TARGET_DIR=/tmp/pitrix-image-target
mkdir -p "$TARGET_DIR" "$(dirname "$OUT")"
TARGET_DIR="$(cd "$TARGET_DIR" && pwd -P)"
STAGED_BINARY="$(mktemp "$(dirname "$OUT")/.pitrix-binary.XXXXXX")"
trap 'rm -f "$STAGED_BINARY"' EXIT
log "cargo build --release --locked --target $TARGET (target dir $TARGET_DIR, as $STABLE_TARGET_DIR)"
(
    exec 9>"$STABLE_TARGET_DIR.lock"
    flock 9 || die "could not lock $STABLE_TARGET_DIR.lock"
    if [[ -e "$STABLE_TARGET_DIR" && ! -L "$STABLE_TARGET_DIR" ]]; then
        die "$STABLE_TARGET_DIR exists and is not a symbolic link: remove it"
    fi
    ln -sfn "$TARGET_DIR" "$STABLE_TARGET_DIR"
    cd "$REPO_ROOT"
    export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }--remap-path-prefix=$REPO_ROOT=/pitrix --remap-path-prefix=$CARGO_HOME_DIR=/cargo --remap-path-prefix=$STABLE_TARGET_DIR=/target"
    export CARGO_PROFILE_RELEASE_STRIP=debuginfo
    # OpenSSL writes SOURCE_DATE_EPOCH into the binary ("built on"), and cargo does not rebuild
    # it when that changes: a fixed one, so the binary is the same whenever its build was made.
    export SOURCE_DATE_EPOCH=0
    cargo build --release --locked --target "$TARGET" --target-dir "$STABLE_TARGET_DIR" --bin pitrix >&2 \
        || die "cargo build for $TARGET failed"
    cp "$STABLE_TARGET_DIR/$TARGET/release/pitrix" "$STAGED_BINARY"
) || exit 1
BINARY="$STAGED_BINARY"
chmod 0755 "$BINARY"
if [[ "$ARCH" == "$HOST_ARCH" ]]; then
    # Static, or it would not start in an image with no libc.
    if command -v ldd >/dev/null && ldd "$BINARY" 2>&1 | grep -q '=>'; then
        die "$BINARY is dynamically linked: $(ldd "$BINARY" 2>&1 | tr '\n' ' ')"
    fi
    "$BINARY" --version >/dev/null || die "$BINARY --version failed"
fi

labels=(
    "org.opencontainers.image.title=pitrix"
    "org.opencontainers.image.description=$DESCRIPTION"
    "org.opencontainers.image.version=$VERSION"
    "org.opencontainers.image.source=$SOURCE"
    "org.opencontainers.image.created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
)
[[ -n "$LICENSE" ]] && labels+=("org.opencontainers.image.licenses=$LICENSE")
[[ -n "$REVISION" ]] && labels+=("org.opencontainers.image.revision=$REVISION")
label_args=()
for l in "${labels[@]}"; do label_args+=(--label "$l"); done

"$PYTHON" "$REPO_ROOT/scripts/image/layout.py" --out "$OUT" --binary "$BINARY" \
    --ca-bundle "$CA_BUNDLE" --arch "$ARCH" --version "$VERSION" \
    --created "$SOURCE_DATE_EPOCH" "${label_args[@]}"
