#!/usr/bin/env bash
# The test command of neovratz: vets, runs every test against a real Redis, and proves the
# static build.
#
#   ./scripts/test.sh                          # everything: ./...
#   ./scripts/test.sh -run TestServe ./cmd/... # extra go test flags and packages
#   ./scripts/test.sh -v -run Lease            # flags only: still all of ./...
#
# Arguments that start with ./ or ../ or name the module (github.com/neovratz/neovratz/...) are
# packages; they replace ./... for go vet and go test. Every other argument is passed to go test
# as it is. The static build always covers ./....
#
# It installs redis-server, a C compiler (for the race detector) and promtool (Debian's
# prometheus package, for the monitoring tests) with apt-get when they are missing, starts a
# private Redis on a free port for the tests and stops it on exit.
set -euo pipefail

cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null || die "the go command is missing: install Go (see go.mod for the version)"

# --- arguments ---------------------------------------------------------------------------
packages=()
test_flags=()
for arg in "$@"; do
	case "$arg" in
	./* | ../* | . | github.com/neovratz/neovratz*) packages+=("$arg") ;;
	*) test_flags+=("$arg") ;;
	esac
done
if [ ${#packages[@]} -eq 0 ]; then
	packages=(./...)
fi

# --- tools -------------------------------------------------------------------------------
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
# The race detector needs cgo, and cgo needs a C compiler.
command -v "$(go env CC)" >/dev/null || missing+=(gcc)
# promtool checks the monitoring bundle's Prometheus config and alert rules (go test ./monitoring).
command -v promtool >/dev/null || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
	command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them with"
	sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		sudo=(sudo)
	fi
	log "installing ${missing[*]}"
	# The prometheus package (wanted only for promtool) and redis-server come with services. A
	# policy-rc.d that refuses every start keeps them from starting during the install (Debian's
	# container images have one already; invoke-rc.d and deb-systemd-invoke both obey it).
	policy=/usr/sbin/policy-rc.d
	added_policy=""
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# added by neovratz scripts/test.sh during apt-get install\nexit 101\n' |
			${sudo[@]+"${sudo[@]}"} tee "$policy" >/dev/null
		${sudo[@]+"${sudo[@]}"} chmod 755 "$policy"
		added_policy=1
	fi
	# prometheus alone without its recommends, which add another service (node exporter).
	plain=()
	for p in "${missing[@]}"; do
		[ "$p" = prometheus ] || plain+=("$p")
	done
	apt_install() { ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"; }
	install_status=0
	{
		${sudo[@]+"${sudo[@]}"} apt-get update &&
			{ [ ${#plain[@]} -eq 0 ] || apt_install "${plain[@]}"; } &&
			{ [ ${#plain[@]} -eq ${#missing[@]} ] || apt_install --no-install-recommends prometheus; }
	} || install_status=$?
	if [ -n "$added_policy" ]; then
		${sudo[@]+"${sudo[@]}"} rm -f "$policy"
	fi
	# On a machine that boots with systemd, keep the Prometheus service from starting at the
	# next boot too: this script installed it for promtool alone.
	case " ${missing[*]} " in
	*" prometheus "*)
		if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
			${sudo[@]+"${sudo[@]}"} systemctl disable prometheus.service >/dev/null 2>&1 || true
		fi
		;;
	esac
	[ "$install_status" -eq 0 ] || die "apt-get install ${missing[*]} failed"
fi
redis_server="$(command -v redis-server)"

# --- a private Redis ---------------------------------------------------------------------
redis_dir="$(mktemp -d)"
redis_pid=""
cleanup() {
	if [ -n "$redis_pid" ] && kill -0 "$redis_pid" 2>/dev/null; then
		kill "$redis_pid" 2>/dev/null || true
		wait "$redis_pid" 2>/dev/null || true
	fi
	rm -rf "$redis_dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# port_in_use PORT: something accepts connections on 127.0.0.1:PORT.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# redis_ping PORT: the Redis on PORT answers PING with PONG (bash only: no redis-cli needed).
redis_ping() {
	local reply
	reply=$( (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'PING\r\n' >&3 && read -r -t 1 line <&3 && printf '%s' "$line") 2>/dev/null) || return 1
	[ "${reply%$'\r'}" = "+PONG" ]
}

# Redis cannot pick a free port itself (--port 0 disables TCP), so try random ones until a
# server starts: another process may take a port between the check and the start.
redis_port=""
for _ in $(seq 1 20); do
	port=$((20000 + RANDOM % 30000))
	port_in_use "$port" && continue
	"$redis_server" --port "$port" --bind 127.0.0.1 --daemonize no \
		--appendonly yes --appendfsync everysec --maxmemory-policy noeviction \
		--save "" --dir "$redis_dir" >"$redis_dir/redis.log" 2>&1 &
	redis_pid=$!
	for _ in $(seq 1 50); do
		if redis_ping "$port"; then
			redis_port=$port
			break 2
		fi
		kill -0 "$redis_pid" 2>/dev/null || break # it died: most likely the port was taken
		sleep 0.1
	done
	kill "$redis_pid" 2>/dev/null || true
	wait "$redis_pid" 2>/dev/null || true
	redis_pid=""
done
if [ -z "$redis_port" ]; then
	cat "$redis_dir/redis.log" >&2 || true
	die "could not start redis-server"
fi
export NEOVRATZ_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"
# Crash tests start (and kill) Redis servers of their own with this binary.
export NEOVRATZ_TEST_REDIS_SERVER="$redis_server"
redis_version="$("$redis_server" --version | awk '{print $3}')"
log "redis ${redis_version#v=} on 127.0.0.1:$redis_port (pid $redis_pid)"

# --- the steps ---------------------------------------------------------------------------
results=()
failed=0
step() {
	local name=$1
	shift
	log "$name"
	if "$@"; then
		results+=("ok      $name")
	else
		results+=("FAILED  $name")
		failed=1
	fi
}

test_log="$redis_dir/go-test.log"
go_test() {
	# -race needs cgo (the race runtime is C); the product itself is built with CGO_ENABLED=0
	# below, and the tests that build the binary build it that way too.
	local cmd=(go test -race -count=1 ${test_flags[@]+"${test_flags[@]}"} "${packages[@]}")
	log "CGO_ENABLED=1 ${cmd[*]}"
	CGO_ENABLED=1 "${cmd[@]}" 2>&1 | tee "$test_log"
}

step "go vet" go vet "${packages[@]}"
step "go test -race" go_test
step "static build (CGO_ENABLED=0)" env CGO_ENABLED=0 go build ./...
# GPU telemetry through NVML is built only with the nvml tag and cgo (see internal/telemetry):
# vet it and run its tests (here without a GPU: the path without NVML) so that it keeps
# compiling. go-nvml's C header warns about deprecated NVML calls; those warnings are noise.
step "GPU telemetry (-tags nvml, CGO_ENABLED=1)" env CGO_ENABLED=1 CGO_CFLAGS="-O2 -g -Wno-deprecated-declarations" \
	go test -tags nvml -count=1 ./internal/telemetry/

printf '\n==> summary\n' >&2
for r in "${results[@]}"; do
	printf '    %s\n' "$r" >&2
done
# The packages that failed, from go test's own "FAIL <package>" lines.
if [ -f "$test_log" ] && grep -Eq '^FAIL[[:space:]]+[^[:space:]]' "$test_log"; then
	printf '    failed packages:\n' >&2
	grep -E '^FAIL[[:space:]]+[^[:space:]]' "$test_log" | awk '{print "      " $2}' | sort -u >&2
fi
if [ "$failed" -ne 0 ]; then
	printf '==> FAILED\n' >&2
	exit 1
fi
printf '==> all passed\n' >&2
