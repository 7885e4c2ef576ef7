#!/usr/bin/env bash
# make e2e: Dockerfile.base and every template in real containers (podman).
#
# Prepares podman on a fresh Debian 12 machine (shared/containers.md),
# builds the base image and one image per template with its hello-world
# function, then runs each container with --network host on its own
# loopback port and checks its answer, /_/health, the image's HEALTHCHECK,
# that every process runs as app, that SIGTERM drains and exits 0 in
# under 3 s, and that orphans are reaped. Also an OpenFaaS-style drop-in
# Dockerfile and the bare binary in a scratch image.
#
# Usage: tests/e2e/run.sh [template ...]   (default: all of templates/)
# Env:   E2E_JOBS=N  image builds run N at a time (default 2)
set -uo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD
E2E=$ROOT/tests/e2e
LOGS=$ROOT/build/e2e
export CONTAINERS_CONF=$E2E/containers.conf
export DEBIAN_FRONTEND=noninteractive

NAME=fwe2e                    # prefix of our images and containers
BASE_IMAGE=fwatchdog-base     # what the templates' FROM names
DEBIAN=docker.io/library/debian:bookworm-slim
PORT0=18700                   # container i: port PORT0+10i, upstreams +1, +2
JOBS=${E2E_JOBS:-2}
HEALTH_WAIT=90                # seconds for a container to become healthy
BUILD_WAIT=1800               # seconds for one image build

start=$(date +%s)
results=()
failed=0
containers=()
tmp=$(mktemp -d /tmp/fwe2e.XXXXXX)

log() { printf '%s [%4ss] %s\n' "==" "$(( $(date +%s) - start ))" "$*"; }
pass() { results+=("PASS  $1"); echo "   ok: $1"; }
fail() {
    results+=("FAIL  $1: $2")
    failed=$((failed + 1))
    echo "   FAIL: $1: $2"
}

cleanup() {
    local c m
    for c in "${containers[@]}"; do
        podman rm -f -t 0 "$c" >/dev/null 2>&1
    done
    for m in $(awk -v d="$tmp/" 'index($2, d) == 1 { print $2 }' \
        /proc/mounts | sort -r); do
        umount -l "$m"      # an interrupted mmdebstrap's chroot
    done
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- set-up --------------------------------------------------------------

setup_podman() {
    local p missing=""
    for p in podman runc mmdebstrap curl; do
        dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        log "installing:$missing"
        apt-get update -qq && apt-get install -y -qq $missing >/dev/null ||
            { echo "e2e: cannot install$missing" >&2; exit 1; }
    fi
}

# No registry here: the Debian base is made locally under its official
# name, so the Dockerfiles' FROM debian:bookworm-slim resolves.
setup_debian() {
    local try m
    podman image exists "$DEBIAN" && return 0
    : >"$LOGS/mmdebstrap.log"
    for try in 1 2; do
        log "making $DEBIAN with mmdebstrap (try $try)"
        mkdir -p "$tmp/mm"
        if TMPDIR=$tmp/mm timeout 900 mmdebstrap --variant=minbase bookworm \
            "$tmp/bookworm.tar" >>"$LOGS/mmdebstrap.log" 2>&1 &&
            podman import "$tmp/bookworm.tar" "$DEBIAN" \
                >>"$LOGS/mmdebstrap.log" 2>&1; then
            rm -f "$tmp/bookworm.tar"
            return 0
        fi
        # It can fail to unmount its chroot's /proc ("target is busy")
        # and then to remove its directory: undo that and try again.
        for m in $(awk -v d="$tmp/mm/" 'index($2, d) == 1 { print $2 }' \
            /proc/mounts | sort -r); do
            umount -l "$m"
        done
        rm -rf --one-file-system "$tmp/mm" "$tmp/bookworm.tar"
    done
    tail -20 "$LOGS/mmdebstrap.log"
    echo "e2e: cannot make $DEBIAN" >&2
    exit 1
}

# --- images --------------------------------------------------------------

# build TAG CONTEXT [podman build options...]: logs to build/e2e/TAG.log.
build() {
    local tag=$1 ctx=$2 t0=$(date +%s)
    shift 2
    if timeout "$BUILD_WAIT" podman build --network host --pull=never \
        --format docker -t "$tag" "$@" "$ctx" >"$LOGS/${tag##*/}.log" 2>&1; then
        echo "   built $tag in $(( $(date +%s) - t0 ))s"
        return 0
    fi
    echo "   build of $tag failed; the end of $LOGS/${tag##*/}.log:"
    tail -25 "$LOGS/${tag##*/}.log" | sed 's/^/     /'
    return 1
}

# npm in an image build must trust a TLS-intercepting proxy's CA when the
# machine has one (shared/containers.md).
ca_mount() {
    local d=/usr/local/share/ca-certificates
    if [ -d "$d" ] && [ -n "$(ls -A "$d" 2>/dev/null)" ]; then
        echo "--volume=$d:$d:ro"
    fi
}

build_template() {
    local t=$1 extra=()
    case $t in node*) extra=($(ca_mount)) ;; esac
    build "localhost/$NAME-$t" "$ROOT/templates/$t" "${extra[@]}"
}

# The orphan function is the bash template with another handler, put
# together the way faas-cli does it: the template with function/ replaced.
build_orphan() {
    mkdir -p "$tmp/orphan" &&
        cp -r "$ROOT/templates/bash/." "$tmp/orphan/" &&
        rm -rf "$tmp/orphan/function" && mkdir "$tmp/orphan/function" &&
        cp "$E2E/orphan/handler.sh" "$tmp/orphan/function/" &&
        build "localhost/$NAME-orphan" "$tmp/orphan"
}

# Builds the images named in $@ (templates, orphan, dropin, scratch), at
# most JOBS at a time; records a FAIL for each one that does not build.
build_all() {
    local what pids=() names=() i
    for what in "$@"; do
        case $what in
        orphan) build_orphan & ;;
        dropin|scratch) build "localhost/$NAME-$what" "$E2E/$what" & ;;
        *) build_template "$what" & ;;
        esac
        pids+=($!)
        names+=("$what")
        while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do
            wait -n
        done
    done
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || fail "build ${names[$i]}" "podman build failed"
    done
}

# --- containers ----------------------------------------------------------

# run NAME PORT [podman run options...] IMAGE: starts a container.
run() {
    local c=$1 port=$2
    shift 2
    podman rm -f -t 0 "$c" >/dev/null 2>&1
    containers+=("$c")
    podman run -d --name "$c" --network host -e port="$port" \
        -e metrics_port=0 "$@" >"$LOGS/$c.run.log" 2>&1
}

status_of() {     # status_of URL [curl options]: the HTTP status, 000 if none
    local url=$1
    shift
    curl -s -o /dev/null -m 5 -w '%{http_code}' "$@" "$url"
}

# wait_healthy NAME PORT: 200 from /_/health within HEALTH_WAIT seconds.
wait_healthy() {
    local c=$1 port=$2 deadline=$(( $(date +%s) + HEALTH_WAIT ))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        [ "$(status_of "http://127.0.0.1:$port/_/health")" = 200 ] && return 0
        [ "$(podman inspect --format '{{.State.Running}}' "$c" 2>/dev/null)" \
            = true ] || return 1
        sleep 0.2
    done
    return 1
}

show_logs() {
    echo "   the end of podman logs $1:"
    podman logs "$1" 2>&1 | tail -15 | sed 's/^/     /'
}

# expect_body NAME URL WANT [curl options]: a 200 whose body contains WANT.
expect_body() {
    local what=$1 url=$2 want=$3 body code
    shift 3
    body=$(curl -s -m 15 -w '\n%{http_code}' "$@" "$url")
    code=${body##*$'\n'}
    body=${body%$'\n'*}
    if [ "$code" = 200 ] && [[ $body == *"$want"* ]]; then
        pass "$what"
    else
        fail "$what" "want 200 with '$want', got $code '${body:0:200}'"
        return 1
    fi
}

# Every process of the container (the watchdog as PID 1, http upstreams)
# runs as app; at least MIN of them.
check_user() {
    local c=$1 min=$2 out n bad
    out=$(podman top "$c" user pid args 2>&1 | tail -n +2)
    n=$(printf '%s\n' "$out" | grep -c .)
    bad=$(printf '%s\n' "$out" | awk 'NF && $1 != "app"')
    if [ "$n" -ge "$min" ] && [ -z "$bad" ] &&
        printf '%s\n' "$out" | awk '$2 == 1 { f = 1 } END { exit !f }'; then
        pass "$c: $n processes run as app"
    else
        fail "$c: runs as app" "podman top: $(echo $out)"
    fi
}

check_healthcheck() {
    local c=$1
    if podman healthcheck run "$c" >/dev/null 2>&1; then
        pass "$c: HEALTHCHECK healthy"
    else
        fail "$c: HEALTHCHECK" "podman healthcheck run says unhealthy"
    fi
}

# podman stop -t 30: SIGTERM to PID 1, which drains (healthcheck_interval
# 1s) and exits 0 in well under the 30 s after which podman would kill it.
check_stop() {
    local c=$1 t0 ms code
    t0=$(date +%s%N)
    podman stop -t 30 "$c" >/dev/null 2>&1
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    code=$(podman inspect --format '{{.State.ExitCode}}' "$c" 2>/dev/null)
    if [ "$ms" -lt 3000 ] && [ "$code" = 0 ]; then
        pass "$c: podman stop in ${ms}ms, exit 0"
    else
        fail "$c: podman stop" "${ms}ms, exit code $code"
        show_logs "$c"
    fi
}

# check_template INDEX TEMPLATE: one container, every check.
check_template() {
    local i=$1 t=$2 c=$NAME-$2 port=$((PORT0 + 10 * $1)) up opts=() want
    local min=1 p
    case $(sed -n 's/^ *mode=\([a-z]*\).*/\1/p' "$ROOT/templates/$t/Dockerfile") in
    http)
        # Two workers on ports of our own: PORT must be honoured.
        up=$((port + 1))
        opts=(-e upstream_url="http://127.0.0.1:$up" -e http_workers=2)
        min=3
        ;;
    esac
    log "$t (port $port)"
    if ! run "$c" "$port" -e healthcheck_interval=1s "${opts[@]}" \
        "localhost/$c"; then
        fail "$c: start" "$(tail -3 "$LOGS/$c.run.log")"
        return
    fi
    if ! wait_healthy "$c" "$port"; then
        fail "$c: /_/health" "not 200 within ${HEALTH_WAIT}s"
        show_logs "$c"
        podman rm -f -t 0 "$c" >/dev/null 2>&1
        return
    fi
    pass "$c: /_/health 200"
    want="You said: e2e-$t"
    expect_body "$c: hello world" "http://127.0.0.1:$port/" "$want" \
        --data-binary "e2e-$t" || show_logs "$c"
    if [ -n "${up:-}" ]; then
        for p in "$up" $((up + 1)); do
            expect_body "$c: worker on PORT=$p" "http://127.0.0.1:$p/" \
                "You said: direct" --data-binary direct
        done
    fi
    check_healthcheck "$c"
    check_user "$c" "$min"
    check_stop "$c"
    podman rm -f -t 0 "$c" >/dev/null 2>&1
}

# A handler that leaves orphans: after its requests, no zombie may be left
# in the container (PID 1 reaps what is re-parented to it).
check_orphans() {
    local c=$NAME-orphan port=$((PORT0 + 10 * $1)) k z
    log "orphans (port $port)"
    run "$c" "$port" -e healthcheck_interval=1s "localhost/$c" &&
        wait_healthy "$c" "$port" ||
        { fail "$c: start" "not healthy"; show_logs "$c"; return; }
    for k in 1 2 3; do
        expect_body "$c: request $k runs as app" "http://127.0.0.1:$port/" \
            app -d x || show_logs "$c"
    done
    sleep 1     # the orphans sleep 0.2 s and 0.3 s
    z=$(podman exec "$c" sh -c 'cat /proc/[0-9]*/stat 2>/dev/null' |
        sed 's/^.*) //' | awk '$1 == "Z"' | wc -l)
    if [ "$z" = 0 ]; then
        pass "$c: no zombie after orphans"
    else
        fail "$c: zombies" "$z processes in state Z"
        podman exec "$c" sh -c 'cat /proc/[0-9]*/stat' | sed 's/^/     /'
    fi
    check_stop "$c"
    podman rm -f -t 0 "$c" >/dev/null 2>&1
}

# The OpenFaaS-style Dockerfile that only copies /fwatchdog in.
check_dropin() {
    local c=$NAME-dropin port=$((PORT0 + 10 * $1))
    log "drop-in COPY --from (port $port)"
    run "$c" "$port" -e healthcheck_interval=1s "localhost/$c" &&
        wait_healthy "$c" "$port" ||
        { fail "$c: start" "not healthy"; show_logs "$c"; return; }
    pass "$c: /_/health 200"
    expect_body "$c: fprocess=cat echoes" "http://127.0.0.1:$port/" \
        "dropped-in" --data-binary "dropped-in" || show_logs "$c"
    check_healthcheck "$c"
    check_user "$c" 1
    check_stop "$c"
    podman rm -f -t 0 "$c" >/dev/null 2>&1
}

# The bare static binary in an empty image.
check_scratch() {
    local c=$NAME-scratch port=$((PORT0 + 10 * $1))
    log "scratch image (port $port)"
    run "$c" "$port" -e healthcheck_interval=1s "localhost/$c" &&
        wait_healthy "$c" "$port" ||
        { fail "$c: start" "not healthy"; show_logs "$c"; return; }
    expect_body "$c: static file" "http://127.0.0.1:$port/" \
        "static from scratch" || show_logs "$c"
    check_stop "$c"
    podman rm -f -t 0 "$c" >/dev/null 2>&1
}

# --- main ----------------------------------------------------------------

main() {
    local templates=("$@") t i=0 sha
    if [ ${#templates[@]} -eq 0 ]; then
        # The -http twins last: two builds at a time then rarely build a
        # shared runtime layer twice at once; the second finds it cached.
        for t in "$ROOT"/templates/*/Dockerfile; do
            t=${t%/Dockerfile}
            case ${t##*/} in *-http) ;; *) templates+=("${t##*/}") ;; esac
        done
        for t in "$ROOT"/templates/*-http/Dockerfile; do
            [ -e "$t" ] || continue
            t=${t%/Dockerfile}
            templates+=("${t##*/}")
        done
    fi
    mkdir -p "$LOGS"

    log "set-up"
    setup_podman
    setup_debian

    log "base image"
    sha=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
    if ! build "localhost/$BASE_IMAGE" "$ROOT" -f "$ROOT/Dockerfile.base" \
        --build-arg GIT_SHA="$sha"; then
        fail "build $BASE_IMAGE" "podman build failed"
        summary
    fi
    pass "build $BASE_IMAGE (make static, make unit)"

    log "template images (${#templates[@]} + 3, $JOBS at a time)"
    build_all "${templates[@]}" orphan dropin scratch

    for t in "${templates[@]}"; do
        if podman image exists "localhost/$NAME-$t"; then
            check_template "$i" "$t"
        fi
        i=$((i + 1))
    done
    podman image exists "localhost/$NAME-orphan" && check_orphans "$i"
    i=$((i + 1))
    podman image exists "localhost/$NAME-dropin" && check_dropin "$i"
    i=$((i + 1))
    podman image exists "localhost/$NAME-scratch" && check_scratch "$i"
    summary
}

summary() {
    local r
    echo
    echo "e2e summary ($(( $(date +%s) - start ))s):"
    for r in "${results[@]}"; do
        echo "  $r"
    done
    if [ "$failed" -gt 0 ]; then
        echo "e2e: FAIL ($failed of ${#results[@]} checks failed)"
        exit 1
    fi
    echo "e2e: PASS (${#results[@]} checks)"
    exit 0
}

main "$@"
