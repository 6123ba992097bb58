# Shared helpers for the scripts in this folder. Source it; do not run it.
# shellcheck shell=bash

# Repository root (the folder that holds scripts/).
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO_ROOT

# Where the real Home Assistant used by scripts/develop lives (git-ignored).
HA_VENV="${EV_CLOUD_HA_VENV:-$REPO_ROOT/.venv-ha}"

log() {  # log MESSAGE... -> a timestamped line on stderr
  printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

die() {  # die MESSAGE... -> print it and exit 1
  printf 'error: %s\n' "$*" >&2
  exit 1
}

require_python314() {  # prints the path of a python3.14 >= 3.14.2, or exits 1 with advice
  local py out helper="$REPO_ROOT/../shared/toolchain/ensure-python3.14"
  py="$(command -v python3.14 || true)"
  if ! usable_python314 "$py" && [[ -f "$helper" ]]; then
    # The project's machines: the helper builds one (about a minute the first
    # time) and prints its path last. All its output goes to stderr: our stdout
    # is only the interpreter's path.
    log "No usable python3.14 on PATH; running $helper"
    out="$(bash "$helper")" || die "$helper failed"
    printf '%s\n' "$out" >&2
    py="$(printf '%s\n' "$out" | tail -n 1)"
  fi
  if usable_python314 "$py"; then
    printf '%s\n' "$py"
    return 0
  fi
  {
    if [[ -n "$py" ]]; then
      echo "error: $py is older than 3.14.2; current Home Assistant needs Python >= 3.14.2."
    else
      echo "error: python3.14 was not found on PATH; current Home Assistant needs Python >= 3.14.2."
    fi
    if [[ -f "$helper" ]]; then
      echo "Run: $(cd "$(dirname "$helper")" && pwd)/ensure-python3.14   (it puts python3.14 on PATH)"
    else
      echo "Install Python 3.14 (>= 3.14.2) so that 'python3.14' is on PATH, then run this again."
    fi
  } >&2
  exit 1
}

usable_python314() {  # usable_python314 PATH -> true for a CPython >= 3.14.2
  [[ -n "$1" ]] && "$1" -c 'import sys; sys.exit(sys.version_info < (3, 14, 2))' 2>/dev/null
}

ensure_ha_venv() {  # creates/reuses $HA_VENV with the Home Assistant of requirements_ha.txt
  local requirements="$REPO_ROOT/requirements_ha.txt" stamp wanted py start
  # The stamp names the pin the venv was built from: raising it rebuilds the venv.
  stamp="$HA_VENV/.requirements_ha.sha256"
  wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [[ -x "$HA_VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]] \
    && "$HA_VENV/bin/python" -c 'import homeassistant' 2>/dev/null; then
    log "Reusing $HA_VENV (Home Assistant $(ha_version))"
    return 0
  fi
  py="$(require_python314)" || exit 1
  start=$SECONDS
  log "Creating $HA_VENV with $("$py" --version) and $(grep -m1 '^homeassistant==' "$requirements")"
  log "(about a minute with a fast network)"
  rm -rf "$HA_VENV"
  "$py" -m venv "$HA_VENV"
  # The filter drops pip's notes about configured local package folders that are absent.
  "$HA_VENV/bin/python" -m pip install --quiet --upgrade pip \
    2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
  "$HA_VENV/bin/python" -m pip install --quiet --progress-bar off -r "$requirements" \
    2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
  "$HA_VENV/bin/python" -c 'import homeassistant' \
    || die "homeassistant was installed into $HA_VENV but does not import"
  install_compiled_ha_requirements "$py"
  # Last: a build that failed half-way is redone next time.
  printf '%s\n' "$wanted" >"$stamp"
  log "Installed Home Assistant $(ha_version) in $((SECONDS - start)) s"
}

ha_version() {  # the Home Assistant version installed in $HA_VENV
  "$HA_VENV/bin/python" -c 'from homeassistant.const import __version__; print(__version__)'
}

install_compiled_ha_requirements() {  # PYTHON -> default_config's source-only packages
  # default_config's voice pipeline needs packages without Python 3.14 wheels
  # (pymicro-vad, pyspeex-noise). Home Assistant would try to build them at every
  # start and fail without the interpreter's headers, which leaves the frontend
  # waiting forever; build them once here, at the versions this release pins.
  local py=$1 requirements
  requirements="$("$HA_VENV/bin/python" -c '
import json, pathlib, homeassistant.components as c
manifest = pathlib.Path(c.__path__[0], "assist_pipeline", "manifest.json")
print(" ".join(json.loads(manifest.read_text()).get("requirements", [])))')"
  [[ -n "$requirements" ]] || return 0
  ensure_python_headers "$py"
  log "Building $requirements for Home Assistant's voice pipeline"
  # shellcheck disable=SC2086  # a list of requirement specifiers
  CFLAGS="$(header_cflags "$py")" "$HA_VENV/bin/python" -m pip install --quiet --progress-bar off $requirements \
    2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
}

ensure_test_venv() {  # ensure_test_venv VENV REQUIREMENTS -> VENV with REQUIREMENTS installed
  local venv=$1 requirements=$2 py stamp wanted
  stamp="$venv/.requirements.sha256"
  wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
    return 0
  fi
  py="$(require_python314)" || exit 1
  ensure_python_headers "$py"
  log "Creating $venv from $requirements (a few minutes the first time)"
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip \
    2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
  # Some pinned dependencies of older releases (lru-dict) have no Python 3.14
  # wheel and compile.
  CFLAGS="$(header_cflags "$py")" "$venv/bin/python" -m pip install --quiet --progress-bar off -r "$requirements" \
    2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
  printf '%s\n' "$wanted" >"$stamp"
}

header_cflags() {  # header_cflags PYTHON -> CFLAGS that find all of its headers
  # -idirafter finds the interpreter's multiarch pyconfig.h (which Python.h
  # includes by a path relative to its include root) without shadowing the
  # system's own C headers.
  printf '%s -idirafter %s\n' "${CFLAGS:-}" "$(dirname "$("$1" -c \
    'import sysconfig; print(sysconfig.get_paths()["include"])')")"
}

ensure_python_headers() {  # ensure_python_headers PYTHON -> Python.h exists, or advice
  local py=$1 include root
  include="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  [[ -f "$include/Python.h" ]] && return 0
  # The interpreter that ensure-python3.14 builds is a Debian tree of its own:
  # its headers come from that tree's package manager.
  root="${include%/usr/include/*}"
  if [[ "$root" != "$include" && -x "$root/usr/bin/apt-get" && $EUID -eq 0 ]]; then
    log "Installing the Python headers into $root (python3.14-dev)"
    chroot "$root" apt-get install -y -qq python3.14-dev >/dev/null \
      || die "could not install python3.14-dev into $root"
    return 0
  fi
  die "Python headers ($include/Python.h) are missing; install python3.14-dev (or your system's equivalent)"
}
