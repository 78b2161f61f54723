#!/usr/bin/env bash
# One entry point for people and CI: sets up .venv (once, and again when pyproject.toml
# changes), then runs the app or the tests.
#
#   ./dev.sh setup           only set up .venv
#   ./dev.sh run [ARGS...]   set up, then launch CNN Explorer (the worked example by default)
#   ./dev.sh test [ARGS...]  set up, then run the whole test suite headless (extra args go to pytest)
#   ./dev.sh check           set up, then the static checks: ruff, ruff format --check,
#                            lint-imports (the import contracts in pyproject.toml), mypy
#   ./dev.sh bench [ARGS...] set up, then run the engine benchmark (ratios need torch in .venv)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
venv="$here/.venv"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Run a system package install as root, through sudo when we are not root.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else return 1
    fi
}

apt_install() {
    command -v apt-get >/dev/null 2>&1 || return 1
    say "installing system packages: $*"
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

find_python() {
    local candidate
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

make_venv() {
    local python
    python="$(find_python)" || die "CNN Explorer needs Python 3.11 or newer (install python3)."
    if ! "$python" -m venv "$venv" >/dev/null 2>&1; then
        # Debian/Ubuntu ship venv's ensurepip separately.
        rm -rf "$venv"
        local version
        version="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
        apt_install "python${version}-venv" || apt_install python3-venv ||
            die "could not create a virtual environment: install python3-venv (sudo apt-get install python3-venv)"
        "$python" -m venv "$venv"
    fi
}

# (Re)install the project when the venv is new or pyproject.toml changed since last time.
setup() {
    local extras="$1"
    [ -x "$venv/bin/python" ] || { say "creating .venv"; make_venv; }
    local stamp="$venv/.installed-$extras"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        say "installing cnn-explorer[$extras] into .venv"
        "$venv/bin/python" -m pip install --quiet --upgrade pip
        "$venv/bin/python" -m pip install --quiet -e ".[$extras]"
        touch "$stamp"
    fi
}

# Qt >= 6.5 needs libxcb-cursor0 (and friends) for a real X11 window; minimal systems lack them.
ensure_qt_display_libs() {
    [ -n "${DISPLAY:-}" ] || return 0
    [ "${QT_QPA_PLATFORM:-}" = "offscreen" ] && return 0
    command -v ldconfig >/dev/null 2>&1 || return 0
    local missing=() lib
    for lib in libxcb-cursor.so.0:libxcb-cursor0 libxkbcommon-x11.so.0:libxkbcommon-x11-0 \
        libxcb-icccm.so.4:libxcb-icccm4 libxcb-keysyms.so.1:libxcb-keysyms1 \
        libxcb-image.so.0:libxcb-image0 libxcb-render-util.so.0:libxcb-render-util0 \
        libxcb-shape.so.0:libxcb-shape0 libxcb-xkb.so.1:libxcb-xkb1 libEGL.so.1:libegl1 \
        libfontconfig.so.1:libfontconfig1 libdbus-1.so.3:libdbus-1-3; do
        ldconfig -p | grep -q "${lib%%:*}" || missing+=("${lib##*:}")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        apt_install "${missing[@]}" ||
            say "Qt may fail to open a window; install: sudo apt-get install ${missing[*]}"
    fi
}

cmd="${1:-run}"
shift || true
case "$cmd" in
setup)
    setup test
    ;;
run)
    setup test
    if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ] && [ -z "${QT_QPA_PLATFORM:-}" ] &&
        [[ " $* " != *" --screenshot "* ]]; then
        die "no display found. On a desktop run this from a terminal in your session; headless, try: ./dev.sh run --screenshot shot.png"
    fi
    ensure_qt_display_libs
    exec "$venv/bin/cnn-explorer" "$@"
    ;;
test)
    setup test
    export QT_QPA_PLATFORM=offscreen
    exec "$venv/bin/python" -m pytest "$@"
    ;;
check)
    setup test
    failed=()
    for step in "ruff check ." "ruff format --check ." "lint-imports --no-logo" "mypy"; do
        say "$step"
        # shellcheck disable=SC2086  # each step is a command line
        "$venv/bin/"$step || failed+=("${step%% *}")
    done
    [ "${#failed[@]}" -eq 0 ] || die "failed: ${failed[*]}"
    say "all checks passed"
    ;;
bench)
    setup test
    # Ratios need the torch oracle in .venv; it is never installed behind your back
    # (pip's default torch wheel is a multi-GB CUDA build; a CPU build is all it takes).
    "$venv/bin/python" -c 'import torch' 2>/dev/null ||
        say "torch is not in .venv: engine times only (add it with: .venv/bin/pip install torch==2.13.0, a CPU build)"
    exec "$venv/bin/python" -m cnn_explorer.bench "$@"
    ;;
*)
    die "usage: ./dev.sh setup|run|test|check|bench [ARGS...]"
    ;;
esac
