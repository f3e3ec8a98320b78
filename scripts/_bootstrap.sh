# Sourced by the scripts in this folder. Creates .venv and installs streamer with its dev
# extras from this checkout, reinstalling only when its packaging or version changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "streamer: '$PYTHON' not found; install Python 3.11 or newer" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.streamer-installed"
stale=0
for source in pyproject.toml setup.py streamer/_version.py; do
  if [ ! -f "$stamp" ] || [ "$source" -nt "$stamp" ]; then stale=1; fi
done
if [ "$stale" = 1 ]; then
  echo "==> installing streamer and its dev tools into .venv"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[dev]"
  touch "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"

# Puts a `prometheus` binary on the machine for the test in which a real Prometheus server
# scrapes a worker group. When it is missing, installs Debian's package if this runs as root
# with apt-get (non-interactive, without recommended packages, and without starting the
# package's service); otherwise says that the test will be skipped.
# STREAMER_INSTALL_PROMETHEUS=0 never installs.
ensure_prometheus() {
  if command -v prometheus >/dev/null 2>&1; then
    return 0
  fi
  local skip="the test with a real Prometheus server will be skipped"
  if [ "${STREAMER_INSTALL_PROMETHEUS:-1}" = 0 ]; then
    echo "==> prometheus not found and STREAMER_INSTALL_PROMETHEUS=0: $skip"
    return 0
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "==> prometheus not found, and installing it needs root and apt-get: $skip" \
      "(install the 'prometheus' package, or put its binary on PATH, to run it)"
    return 0
  fi
  echo "==> installing prometheus with apt-get (for the test with a real Prometheus server)"
  local log
  log="$(mktemp)"
  # In a subshell, so that its trap removes a policy-rc.d it created whatever happens. The
  # policy (exit 101) keeps the package's postinst from starting a system-wide server.
  local status=0
  (
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
      trap 'rm -f "$policy"' EXIT
      printf '#!/bin/sh\n# Temporary: no service starts while scripts/check installs packages.\nexit 101\n' \
        >"$policy"
      chmod 755 "$policy"
    fi
    export DEBIAN_FRONTEND=noninteractive
    install=(apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold
      prometheus)
    "${install[@]}" || { apt-get update -q && "${install[@]}"; }
  ) >"$log" 2>&1 || status=$?
  if [ "$status" = 0 ] && command -v prometheus >/dev/null 2>&1; then
    echo "==> installed $(prometheus --version 2>&1 | head -n 1)"
  elif command -v prometheus >/dev/null 2>&1; then
    tail -n 15 "$log" >&2
    echo "==> apt-get failed (output above), but the prometheus binary is there"
  else
    tail -n 15 "$log" >&2
    echo "==> installing prometheus failed (output above): $skip"
  fi
  rm -f "$log"
}

# Puts Debian's headless-capable `chromium` and its `chromedriver` on the machine for the
# web console's browser test (tests/integration/test_console_browser.py). When either is
# missing, installs the `chromium` and `chromium-driver` packages if this runs as root with
# apt-get (non-interactive, without recommended packages); otherwise says that the test
# will be skipped. STREAMER_INSTALL_CHROMIUM=0 never installs.
ensure_chromium() {
  if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    return 0
  fi
  local skip="the web console's browser test will be skipped"
  if [ "${STREAMER_INSTALL_CHROMIUM:-1}" = 0 ]; then
    echo "==> chromium or chromedriver not found and STREAMER_INSTALL_CHROMIUM=0: $skip"
    return 0
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "==> chromium or chromedriver not found, and installing them needs root and" \
      "apt-get: $skip (install Debian's 'chromium' and 'chromium-driver' to run it)"
    return 0
  fi
  echo "==> installing chromium and chromium-driver with apt-get (for the console's browser test)"
  local log
  log="$(mktemp)"
  local status=0
  (
    export DEBIAN_FRONTEND=noninteractive
    install=(apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold
      chromium chromium-driver)
    "${install[@]}" || { apt-get update -q && "${install[@]}"; }
  ) >"$log" 2>&1 || status=$?
  if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    if [ "$status" = 0 ]; then
      echo "==> installed $(chromium --version 2>/dev/null | head -n 1)"
    else
      tail -n 15 "$log" >&2
      echo "==> apt-get failed (output above), but chromium and chromedriver are there"
    fi
  else
    tail -n 15 "$log" >&2
    echo "==> installing chromium failed (output above): $skip"
  fi
  rm -f "$log"
}
