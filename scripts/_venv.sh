# Sourced by scripts/run, scripts/test and scripts/bench: make .venv with the project in it.
# usage: . scripts/_venv.sh; venv_setup [extra]   (extra: "test" installs the test dependencies too)
# It is a function because a sourced file sees its caller's arguments as its own: `./scripts/run
# --config X` once made "--config" the pip extra. The caller's working directory is kept, so
# relative paths in the arguments mean what they say; $ROOT is the checkout.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  # Debian packages, installed only when missing: one apt-get update at most.
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}
venv_setup() {
  local extra=${1:-}
  local venv=$ROOT/.venv
  local stamp=$venv/.installed${extra:+-$extra}
  if ! "$PY" -c 'import sys, venv, ensurepip; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    command -v apt-get >/dev/null && apt_install python3 python3-venv
  fi
  if [ ! -x "$venv/bin/python" ]; then "$PY" -m venv "$venv"; fi
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT${extra:+[$extra]}"
    touch "$stamp"
  fi
}
