# Shell helpers shared by scripts/ and bench/ (sourced, never run). Messages go through the
# caller's `log` when it defines one (bench/lib.sh does: elapsed seconds), else to stderr.

_lib_log() {
    if declare -F log >/dev/null; then log "$@"; else printf '%s\n' "$*" >&2; fi
}

# Runs a command as root: directly when we are root, else through sudo (non-interactive,
# so a password prompt fails instead of hanging a CI job).
as_root() {
    if [[ $(id -u) == 0 ]]; then "$@"; else sudo -n "$@"; fi
}

# apt_install PKG...: apt-get install, with services kept from starting.
apt_install() {
    local need=("$@")
    if [[ ${#need[@]} -gt 0 ]]; then
        _lib_log "apt-get install ${need[*]}"
        # Debian starts nginx and haproxy as services on install, listening on every
        # address; a policy-rc.d that says "no" (exit 101) keeps them from starting. Ours
        # run on loopback only.
        local own_policy=0
        if [[ ! -e /usr/sbin/policy-rc.d ]]; then
            printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null \
                && as_root chmod +x /usr/sbin/policy-rc.d
            own_policy=1
        fi
        (as_root apt-get update -qq \
            && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >&2 \
            || _lib_log "apt-get install failed for some of: ${need[*]}"
        if [[ $own_policy == 1 ]]; then as_root rm -f /usr/sbin/policy-rc.d; fi
    fi
}
