#!/usr/bin/env bash
# Container entry point (Dockerfile.railway): join the tailnet, migrate, then become the proxy.
#
# 1. When TAILSCALE_AUTH_KEY is set: start tailscaled in userspace mode with one local port serving
#    both SOCKS5 and HTTP proxying, run a bounded `tailscale up`, wait until tailscaled reports
#    Running, log the tailnet IP and export TAILNET_PROXY_URL. proxyllm sends only tailnet-bound
#    requests (Ollama on hugo) through that port; hosted providers and Stripe go direct.
# 2. Run database migrations (`proxyllm migrate`, when this proxyllm has it); a failure stops here.
# 3. exec the proxy: it takes over this PID and receives the platform's signals itself.
#
# A tailnet failure never stops the proxy (hosted providers still work). It is logged as an error
# and written to TAILSCALE_STATUS_FILE, which /health/readiness reports next to tailscaled's live
# state. No secret is echoed: the auth key reaches `tailscale up` through a private file (never an
# argument, never a log line) and is removed from the environment before the proxy starts.
#
# tailscaled gets SIGTERM when the proxy exits (parent-death signal), so stopping the proxy stops
# tailscaled too; a signal received before the exec stops tailscaled and exits.
set -euo pipefail

log() {
	printf 'proxyllm-entrypoint: %s\n' "$*" >&2
}

# A whole number of seconds from the environment ("30" or "30s"), else the default.
seconds() {
	local name=$1 default=$2 value=${!1:-}
	value=${value%s}
	if [[ -z $value ]]; then
		printf '%s' "$default"
	elif [[ $value =~ ^[0-9]+$ ]]; then
		printf '%s' "$value"
	else
		log "WARNING: $name must be a number of seconds; using $default"
		printf '%s' "$default"
	fi
}

run_dir=${TAILSCALE_RUN_DIR:-/tmp/tailscale}
socket=${TAILSCALE_SOCKET:-$run_dir/tailscaled.sock}
status_file=${TAILSCALE_STATUS_FILE:-$run_dir/status}
proxy_port=${TAILSCALE_PROXY_PORT:-1055}
hostname=${TAILSCALE_HOSTNAME:-railway-proxyllm}
tags=${TAILSCALE_TAGS:-tag:railway-proxy}
up_timeout=$(seconds TAILSCALE_UP_TIMEOUT 30)
wait_seconds=$(seconds TAILSCALE_WAIT_SECONDS 30)
migrate_timeout=$(seconds PROXYLLM_MIGRATE_TIMEOUT 120)
poll_interval=${TAILSCALE_POLL_INTERVAL:-1}
[[ $poll_interval =~ ^[0-9]+([.][0-9]+)?$ ]] || poll_interval=1
socket_wait_seconds=10

now=0
tailscaled_pid=""
child_pid=""
key_file=""
backend_state=""

is_true() {
	case "${1,,}" in
	1 | true | yes | on) return 0 ;;
	*) return 1 ;;
	esac
}

# key=value lines, replaced atomically; proxyllm.tailnet reads them for /health/readiness.
write_status() {
	local state=$1 reason=${2:-} ip=${3:-}
	if ! {
		printf 'state=%s\n' "$state"
		if [[ -n $reason ]]; then printf 'reason=%s\n' "$reason"; fi
		if [[ -n $ip ]]; then printf 'ip=%s\n' "$ip"; fi
		printf 'hostname=%s\n' "$hostname"
		TZ=UTC printf 'updated=%(%Y-%m-%dT%H:%M:%SZ)T\n' -1
	} 2>/dev/null >"$status_file.tmp" || ! mv -f "$status_file.tmp" "$status_file" 2>/dev/null; then
		log "WARNING: cannot write the tailnet status to $status_file"
	fi
}

# Microseconds, for deadlines finer than $SECONDS' whole seconds (EPOCHREALTIME is bash 5).
now_us() {
	if [[ -n ${EPOCHREALTIME:-} ]]; then
		now=${EPOCHREALTIME//[!0-9]/}
	else
		now=$((SECONDS * 1000000))
	fi
}

# A zombie still answers `kill -0`, so read the process state instead.
alive() {
	local pid=$1 state
	[[ -n $pid && -r /proc/$pid/stat ]] || return 1
	read -r _ _ state _ <"/proc/$pid/stat" || return 1
	[[ $state != Z ]]
}

remove_key_file() {
	if [[ -n $key_file ]]; then
		rm -f -- "$key_file"
		key_file=""
	fi
}

stop_tailscaled() {
	[[ -n $tailscaled_pid ]] || return 0
	kill -TERM "$tailscaled_pid" 2>/dev/null || true
	local _
	for _ in {1..50}; do
		alive "$tailscaled_pid" || break
		sleep 0.1
	done
	kill -KILL "$tailscaled_pid" 2>/dev/null || true
	wait "$tailscaled_pid" 2>/dev/null || true
	tailscaled_pid=""
}

on_signal() {
	log "received SIG$1 while starting; stopping"
	if [[ -n $child_pid ]]; then kill -TERM "$child_pid" 2>/dev/null || true; fi
	remove_key_file
	stop_tailscaled
	exit "$2"
}

# Runs a command in the background and waits for it, so a signal is handled at once rather than
# after the command finishes; returns the command's exit status.
run_interruptible() {
	local rc=0
	"$@" &
	child_pid=$!
	wait "$child_pid" || rc=$?
	child_pid=""
	return "$rc"
}

start_tailscaled() {
	local -a args=(
		--tun=userspace-networking
		"--socket=$socket"
		"--socks5-server=127.0.0.1:$proxy_port"
		"--outbound-http-proxy-listen=127.0.0.1:$proxy_port"
	)
	local state_dir=${TAILSCALE_STATE_DIR:-$run_dir/state}
	if [[ -n ${TAILSCALE_STATE_DIR:-} ]]; then
		args+=("--statedir=$state_dir")
	else
		args+=(--state=mem: "--statedir=$state_dir")
	fi
	mkdir -p -- "$state_dir" || log "WARNING: cannot create $state_dir"
	local -a launcher=()
	if command -v setpriv >/dev/null 2>&1; then
		launcher=(setpriv --pdeathsig TERM)
	else
		log "WARNING: setpriv not found; tailscaled will not stop together with the proxy"
	fi
	log "starting tailscaled (userspace networking, proxy on 127.0.0.1:$proxy_port)"
	"${launcher[@]}" tailscaled "${args[@]}" &
	tailscaled_pid=$!
}

wait_for_socket() {
	now_us
	local deadline=$((now + socket_wait_seconds * 1000000))
	until [[ -S $socket ]]; do
		alive "$tailscaled_pid" || return 1
		now_us
		((now < deadline)) || return 1
		sleep 0.1
	done
}

read_backend_state() {
	local json
	json=$(tailscale "--socket=$socket" status --json --peers=false 2>/dev/null) || json=""
	backend_state=unknown
	if [[ $json =~ \"BackendState\"[[:space:]]*:[[:space:]]*\"([A-Za-z]+)\" ]]; then
		backend_state=${BASH_REMATCH[1]}
	fi
}

tailscale_up() {
	key_file=$run_dir/auth-key
	(umask 077 && printf '%s' "$TAILSCALE_AUTH_KEY" >"$key_file")
	local -a args=(
		up
		"--auth-key=file:$key_file"
		"--hostname=$hostname"
		"--advertise-tags=$tags"
	)
	if is_true "${TAILSCALE_ACCEPT_ROUTES:-}"; then args+=(--accept-routes); fi
	if [[ -n ${TAILSCALE_ADVERTISE_ROUTES:-} ]]; then args+=("--advertise-routes=$TAILSCALE_ADVERTISE_ROUTES"); fi
	args+=("--timeout=${up_timeout}s" --reset)
	log "joining the tailnet as $hostname ($tags)"
	local rc=0
	run_interruptible tailscale "--socket=$socket" "${args[@]}" || rc=$?
	remove_key_file
	return "$rc"
}

wait_until_running() {
	now_us
	local deadline=$((now + wait_seconds * 1000000))
	while :; do
		read_backend_state
		[[ $backend_state == Running ]] && return 0
		alive "$tailscaled_pid" || return 1
		now_us
		((now < deadline)) || return 1
		sleep "$poll_interval"
	done
}

# Leaves TAILNET_PROXY_URL exported whenever tailscaled is alive: it may still reach Running later,
# and /health/readiness asks it directly.
join_tailnet() {
	if ! mkdir -p -- "$run_dir" || ! chmod 700 "$run_dir"; then
		log "ERROR: tailnet unavailable: cannot use $run_dir (set TAILSCALE_RUN_DIR to a writable directory)"
		write_status failed "cannot use $run_dir"
		return
	fi
	export TAILSCALE_SOCKET=$socket
	start_tailscaled
	if ! wait_for_socket; then
		log "ERROR: tailnet unavailable: tailscaled did not start (no socket at $socket)"
		stop_tailscaled
		write_status failed "tailscaled did not start"
		return
	fi
	export TAILNET_PROXY_URL=http://127.0.0.1:$proxy_port
	local rc=0
	tailscale_up || rc=$?
	if ((rc != 0)); then
		read_backend_state
		log "ERROR: tailnet unavailable: tailscale up failed (exit $rc, state $backend_state)"
		write_status failed "tailscale up failed (exit $rc, state $backend_state)"
	elif ! wait_until_running; then
		log "ERROR: tailnet unavailable: not Running after ${wait_seconds}s (state $backend_state)"
		write_status failed "not Running after ${wait_seconds}s (state $backend_state)"
	else
		local ip
		ip=$(tailscale "--socket=$socket" ip -4 2>/dev/null) || ip=""
		ip=${ip%%$'\n'*}
		log "joined the tailnet as $hostname, IP ${ip:-unknown}; tailnet traffic goes through $TAILNET_PROXY_URL"
		write_status running "" "$ip"
	fi
	if ! alive "$tailscaled_pid"; then
		log "ERROR: tailscaled exited; tailnet upstreams are unreachable"
		wait "$tailscaled_pid" 2>/dev/null || true
		tailscaled_pid=""
		unset TAILNET_PROXY_URL
		write_status failed "tailscaled exited"
	fi
}

# `proxyllm migrate` with the proxy's own options (its --config); a failure stops the container, so
# a deployment whose schema cannot be brought up to date never takes traffic.
migrate() {
	local cmd=$1
	shift
	if [[ ${1:-} == serve ]]; then shift; fi
	log "running database migrations"
	local rc=0
	run_interruptible timeout "$migrate_timeout" "$cmd" migrate "$@" || rc=$?
	if ((rc != 0)); then
		log "ERROR: database migrations failed (exit $rc); not starting the proxy"
		stop_tailscaled
		exit 1
	fi
}

has_migrate_command() {
	local help
	help=$("$1" --help 2>/dev/null) || return 1
	[[ $help =~ (^|[^[:alnum:]_-])migrate([^[:alnum:]_-]|$) ]]
}

main() {
	trap 'on_signal TERM 143' TERM
	trap 'on_signal INT 130' INT
	trap remove_key_file EXIT

	if (($# == 0)); then set -- proxyllm; fi
	mkdir -p -- "$(dirname -- "$status_file")" 2>/dev/null || true
	export TAILSCALE_STATUS_FILE=$status_file

	if [[ -n ${TAILSCALE_AUTH_KEY:-} ]]; then
		join_tailnet
	else
		log "TAILSCALE_AUTH_KEY is not set: not joining a tailnet"
		write_status not_configured
	fi
	unset TAILSCALE_AUTH_KEY

	if [[ ${1##*/} == proxyllm ]] && has_migrate_command "$1"; then
		migrate "$@"
	fi

	trap - TERM INT EXIT
	log "starting ${1##*/}"
	exec "$@"
}

main "$@"
