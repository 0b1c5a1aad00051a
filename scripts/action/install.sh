#!/usr/bin/env bash
# Installs pitrix for the GitHub Action (action.yml), testable outside GitHub
# (tests/integration/action.rs).
#
# Usage: install.sh resolve              which version, where, and the cache key (GITHUB_OUTPUT)
#        install.sh install [--dry-run]  install it there (a no-op when the cache restored it)
#
# Which version: the `version` input (INPUT_VERSION: X.Y.Z, vX.Y.Z, or `source`); when empty,
# the action's own ref (PITRIX_ACTION_REF, from github.action_ref) when it is a release tag
# (v1.2.3), or a moving tag (v1, v1.2) whose source is a release: the version in the action's
# Cargo.toml. Any other ref (a branch, a commit) is built from the action's source.
#
# How: the release's `pitrix-<version>-<target>.tar.gz` for the runner's OS and architecture
# (RUNNER_OS, RUNNER_ARCH: Linux or macOS, X64 or ARM64), checked against the release's
# SHA256SUMS before anything is unpacked. A checksum that differs is refused: nothing is
# installed and the step fails. When the release does not exist (HTTP 404) or has no binary for
# this runner, and the version is the action's own (from its ref), the action's source is built
# instead (`cargo install --locked --path`, minutes); an explicit `version` with no release
# fails. `--dry-run` says what the source build would run, and does not run it.
#
# Environment:
#   INPUT_VERSION               the `version` input
#   PITRIX_ACTION_REF           the action's ref (github.action_ref)
#   PITRIX_ACTION_REPOSITORY    where releases are downloaded from, owner/name
#                               (github.action_repository; default pitrix/pitrix)
#   PITRIX_ACTION_RELEASE_URL   FOR TESTS ONLY: the base URL of release downloads, instead of
#                               $GITHUB_SERVER_URL/<repository>/releases/download
#   PITRIX_ACTION_INSTALL_DIR   where to install (default ~/.pitrix-action/<version>-<target>)
#   GITHUB_ACTION_PATH          the action's source (default: this script's repository)
#   GITHUB_OUTPUT, GITHUB_PATH  outputs (version, method, dir, bin, key); PATH gets <dir>/bin
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ACTION_PATH="${GITHUB_ACTION_PATH:-$(cd "$SCRIPT_DIR/../.." && pwd)}"

log() { printf '[pitrix install] %s\n' "$*" >&2; }
die() {
    printf '[pitrix install] ERROR: %s\n' "$*" >&2
    # A workflow annotation, so that the reason shows on the run's summary.
    local msg="$*"
    msg="${msg//%/%25}"
    printf '::error title=pitrix install::%s\n' "${msg//$'\n'/%0A}"
    exit 1
}
output() { # output NAME VALUE
    if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
        printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"
    else
        log "output $1=$2"
    fi
}

own_version() { # the package version in the action's Cargo.toml
    sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$ACTION_PATH/Cargo.toml" 2>/dev/null | head -n 1
}

SEMVER='^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?$'

# Sets VERSION (X.Y.Z, empty: the source), FROM_REF (1 when the version is the action's own, so
# that its source may stand in for a missing release) and WHY.
resolve_version() {
    local input ref
    input="$(printf '%s' "${INPUT_VERSION:-}" | tr -d '[:space:]')"
    ref="${PITRIX_ACTION_REF:-}"
    if [[ -z "$ref" && "$ACTION_PATH" == */_actions/*/*/* ]]; then
        # The runner checks an action out at _actions/<owner>/<name>/<ref>.
        ref="${ACTION_PATH##*/}"
    fi
    ref="${ref#refs/tags/}"
    VERSION=""
    FROM_REF=0
    if [[ "$input" == "source" ]]; then
        WHY="version: source"
    elif [[ -n "$input" ]]; then
        [[ "${input#v}" =~ $SEMVER ]] \
            || die "version \`$input\`: expected a release version (1.2.3 or v1.2.3), \`source\`, or nothing (the action's own tag)"
        VERSION="${input#v}"
        WHY="version: $input"
    elif [[ "${ref#v}" =~ $SEMVER && "$ref" == v* ]]; then
        VERSION="${ref#v}"
        FROM_REF=1
        WHY="the action's tag $ref"
    elif [[ "$ref" =~ ^v[0-9]+(\.[0-9]+)?$ ]]; then
        # A moving tag (v0, v1.2) points at a release: its Cargo.toml has the version.
        VERSION="$(own_version)"
        [[ "$VERSION" =~ $SEMVER ]] || VERSION=""
        FROM_REF=1
        WHY="the action's tag $ref (Cargo.toml: ${VERSION:-no version})"
    else
        WHY="the action's ref \`${ref:-(none)}\` is not a release tag"
    fi
}

# Sets TARGET (empty when no release binary is built for this runner).
resolve_target() {
    local os arch
    os="${RUNNER_OS:-$(uname -s)}"
    arch="${RUNNER_ARCH:-$(uname -m)}"
    case "$os" in
    Linux | linux) os=linux ;;
    macOS | Darwin | darwin) os=macos ;;
    esac
    case "$arch" in
    X64 | x86_64 | amd64) arch=x86_64 ;;
    ARM64 | aarch64 | arm64) arch=aarch64 ;;
    esac
    case "$os/$arch" in
    linux/x86_64 | linux/aarch64) TARGET="$arch-unknown-linux-musl" ;;
    macos/x86_64 | macos/aarch64) TARGET="$arch-apple-darwin" ;;
    *) TARGET="" ;;
    esac
    PLATFORM="${RUNNER_OS:-$(uname -s)}-${RUNNER_ARCH:-$(uname -m)}"
}

resolve() {
    resolve_version
    resolve_target
    if [[ -n "$VERSION" ]]; then
        NAME="v$VERSION-${TARGET:-$PLATFORM}"
        KEY="pitrix-release-$NAME"
    else
        NAME="source-$PLATFORM"
        KEY="$(python3 "$SCRIPT_DIR/pitrix_action.py" cache-key)-$PLATFORM"
    fi
    DIR="${PITRIX_ACTION_INSTALL_DIR:-$HOME/.pitrix-action/$NAME}"
    BIN="$DIR/bin/pitrix"
}

sha256_of() {
    if command -v sha256sum >/dev/null; then
        sha256sum "$1" | awk '{print $1}'
    else
        shasum -a 256 "$1" | awk '{print $1}'
    fi
}

# fetch URL FILE: prints the HTTP status (000 when there was no answer).
fetch() {
    local code
    code="$(curl -sSL --retry 3 --retry-delay 2 --connect-timeout 20 -A pitrix-action \
        -o "$2" -w '%{http_code}' "$1" 2>"$2.err")" || true
    printf '%s' "${code:-000}"
}

# Installs the release binary: 0 when installed, 1 when there is no release for it (not found,
# or no binary for this runner); dies on anything else, a differing checksum above all.
install_release() {
    local repo base tag asset tmp code want got unpacked
    repo="${PITRIX_ACTION_REPOSITORY:-}"
    if [[ -z "$repo" && "$ACTION_PATH" == */_actions/*/*/* ]]; then
        local rest="${ACTION_PATH%/*}" # .../_actions/<owner>/<name>
        repo="${rest##*/}"
        rest="${rest%/*}"
        repo="${rest##*/}/$repo"
    fi
    repo="${repo:-pitrix/pitrix}"
    base="${PITRIX_ACTION_RELEASE_URL:-${GITHUB_SERVER_URL:-https://github.com}/$repo/releases/download}"
    base="${base%/}"
    tag="v$VERSION"
    if [[ -z "$TARGET" ]]; then
        log "no release binary is built for $PLATFORM"
        return 1
    fi
    asset="pitrix-$VERSION-$TARGET.tar.gz"
    tmp="$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/pitrix-install.XXXXXX")"
    # shellcheck disable=SC2064 # expanded now, on purpose
    trap "rm -rf '$tmp'" EXIT

    code="$(fetch "$base/$tag/SHA256SUMS" "$tmp/SHA256SUMS")"
    case "$code" in
    200) ;;
    404)
        log "no release $tag at $base/$tag (SHA256SUMS: HTTP 404)"
        return 1
        ;;
    *) die "cannot download $base/$tag/SHA256SUMS (HTTP $code): $(cat "$tmp/SHA256SUMS.err" 2>/dev/null)" ;;
    esac
    want="$(awk -v a="$asset" '$2 == a || $2 == "*" a { print tolower($1); exit }' "$tmp/SHA256SUMS")"
    if [[ -z "$want" ]]; then
        log "release $tag has no $asset (not in its SHA256SUMS)"
        return 1
    fi
    [[ "$want" =~ ^[0-9a-f]{64}$ ]] || die "SHA256SUMS of $tag: \`$want\` is not a SHA-256 for $asset"

    log "downloading $base/$tag/$asset"
    code="$(fetch "$base/$tag/$asset" "$tmp/$asset")"
    [[ "$code" == 200 ]] || die "cannot download $base/$tag/$asset (HTTP $code): $(cat "$tmp/$asset.err" 2>/dev/null)"
    got="$(sha256_of "$tmp/$asset")"
    if [[ "$got" != "$want" ]]; then
        die "checksum mismatch for $asset of release $tag: SHA256SUMS says $want, the download is $got. Refused: nothing was installed."
    fi
    log "sha256 $got: matches SHA256SUMS"

    mkdir "$tmp/unpacked"
    tar -xzf "$tmp/$asset" -C "$tmp/unpacked" || die "cannot unpack $asset"
    unpacked="$tmp/unpacked/pitrix-$VERSION-$TARGET/pitrix"
    [[ -f "$unpacked" ]] || unpacked="$tmp/unpacked/pitrix"
    [[ -f "$unpacked" ]] || die "$asset has no pitrix-$VERSION-$TARGET/pitrix"
    chmod 0755 "$unpacked"
    local said
    said="$("$unpacked" version 2>&1)" || die "the downloaded pitrix does not run on $PLATFORM: $said"
    [[ "$said" == "pitrix $VERSION "* || "$said" == "pitrix $VERSION" ]] \
        || die "the binary of release $tag says \`$said\`, not pitrix $VERSION"

    mkdir -p "$DIR/bin"
    mv -f "$unpacked" "$BIN.partial"
    mv -f "$BIN.partial" "$BIN"
    return 0
}

install_source() {
    local cmd=(cargo install --locked --path "$ACTION_PATH" --root "$DIR")
    if ((DRY_RUN)); then
        log "dry run: would build from source: ${cmd[*]}"
        return 0
    fi
    command -v cargo >/dev/null \
        || die "building pitrix from source needs Rust (cargo, rustc >= 1.89): add a Rust toolchain step, or use a released version"
    log "building from source (a few minutes): ${cmd[*]}"
    "${cmd[@]}" >&2 || die "cargo install failed"
}

main_install() {
    resolve
    local method
    if [[ -x "$BIN" ]] && "$BIN" version >/dev/null 2>&1; then
        method=cache
        log "$BIN: already installed (cache)"
    elif [[ -n "$VERSION" ]] && install_release; then
        method=release
        log "installed pitrix $VERSION ($TARGET) from the release"
    elif [[ -z "$VERSION" || "$FROM_REF" == 1 ]]; then
        method=source
        if [[ -n "$VERSION" ]]; then
            log "no release binary of pitrix $VERSION for $PLATFORM ($WHY): building the action's source"
        else
            log "building the action's source: $WHY"
        fi
        install_source
    else
        die "pitrix $VERSION has no release binary for $PLATFORM. Set \`version\` to a released version, or to \`source\` (or leave it empty with the action at a branch) to build from source."
    fi
    output method "$method"
    output version "${VERSION:-source}"
    output dir "$DIR"
    output bin "$BIN"
    if ((DRY_RUN)) && [[ "$method" == source ]]; then
        return 0
    fi
    [[ -n "${GITHUB_PATH:-}" ]] && printf '%s\n' "$DIR/bin" >>"$GITHUB_PATH"
    "$BIN" version >&2
}

DRY_RUN=0
command_name="${1:-}"
shift || true
for a in "$@"; do
    case "$a" in
    --dry-run) DRY_RUN=1 ;;
    *) die "unknown option $a" ;;
    esac
done
case "$command_name" in
resolve)
    resolve
    log "pitrix ${VERSION:-from source} ($WHY), into $DIR"
    output version "${VERSION:-source}"
    output dir "$DIR"
    output bin "$BIN"
    output key "$KEY"
    ;;
install) main_install ;;
*)
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
