#!/usr/bin/env bash
# End-to-end test of docker-compose.yml (`make compose-test`).
#
#   scripts/compose-test.sh [--infra] [--cluster] [--keep]
#   scripts/compose-test.sh init-env
#
# 1. builds the images (scripts/images.sh: offline, cached), and checks that the executor
#    image run as PID 1 (no init) reaps the processes left behind in it,
# 2. starts the stack as its own compose project (hookrun-compose-test; host ports chosen by
#    Docker, so nothing on this machine is in the way) with two executors, waits until
#    every container is healthy,
# 3. through the keys API creates a job and a GitHub-profile webhook, sends a signed
#    delivery (202) and waits for the run to succeed, sends it again (duplicate: true),
# 4. starts a slow job, `docker kill`s the executors while it runs, starts them again and
#    sees that run succeed exactly once (one run of the job; attempt 2 allowed),
# 5. requires hookrun_ series in Prometheus from every service, Prometheus' web UI, and
#    Alertmanager: ready, its UI, and known to Prometheus as where alerts go,
# and always ends with `down -v` (also on failure or Ctrl-C; --keep leaves the stack up).
#
#   --infra     only nats, redis, prometheus and alertmanager: images, up, healthy, checks, down
#               (what can be tested before the services exist)
#   --cluster   with the three-node NATS cluster (profile cluster, HOOKRUN_STREAM_REPLICAS=3)
#   --no-api    the whole stack, but skip the keys API steps (3 and 4)
#   --keep      do not tear the stack down at the end (docker compose -p hookrun-compose-test down -v)
#   init-env    only create .env from .env.example with fresh secrets (or fill empty ones)
#
# Works with `docker compose` (v2) and falls back to `docker-compose` (v1).
# Needs: docker, curl, jq, openssl.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SECRETS=(HOOKRUN_ADMIN_TOKEN HOOKRUN_SECRET_KEY NATS_INGRESS_PASSWORD NATS_DISPATCHER_PASSWORD NATS_EXECUTOR_PASSWORD NATS_KEYS_PASSWORD NATS_ADMIN_PASSWORD REDIS_PASSWORD GRAFANA_ADMIN_PASSWORD)
PROJECT=${COMPOSE_TEST_PROJECT:-hookrun-compose-test}
EXECUTORS=${COMPOSE_TEST_EXECUTORS:-2}
HEALTH_TIMEOUT=${COMPOSE_TEST_HEALTH_TIMEOUT:-180}

START=$SECONDS
step() { printf '\n==> [%3ds] %s\n' "$((SECONDS - START))" "$*" >&2; }
info() { printf '    %s\n' "$*" >&2; }
die() { printf 'compose-test: FAIL: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is needed"; }

# --- .env ---------------------------------------------------------------------------------

random_secret() {
	if [[ $1 == HOOKRUN_SECRET_KEY ]]; then
		openssl rand -base64 32
	else
		openssl rand -hex 32
	fi
}

# init_env: .env from .env.example when absent; every empty secret gets a fresh value.
init_env() {
	need openssl
	local created= k v
	if [[ ! -f .env ]]; then
		[[ -f .env.example ]] || die ".env.example is missing"
		(umask 077 && cp .env.example .env)
		created=1
	fi
	for k in "${SECRETS[@]}"; do
		if grep -Eq "^[[:space:]]*$k=.+" .env; then
			continue
		fi
		v=$(random_secret "$k")
		if grep -Eq "^[[:space:]]*$k=[[:space:]]*$" .env; then
			sed -i "s|^[[:space:]]*$k=[[:space:]]*\$|$k=$v|" .env
		else
			printf '%s=%s\n' "$k" "$v" >>.env
		fi
		info ".env: generated $k"
	done
	chmod 600 .env
	[[ -n $created ]] && info ".env: created from .env.example"
	return 0
}

# env_value VAR: like compose: the environment, then .env.
env_value() {
	local name=$1 v
	if [[ -n ${!name:-} ]]; then
		printf '%s' "${!name}"
		return
	fi
	v=$(sed -n "s/^[[:space:]]*$name[[:space:]]*=[[:space:]]*//p" .env 2>/dev/null | tail -n1)
	v=${v%\"}; v=${v#\"}; v=${v%\'}; v=${v#\'}
	printf '%s' "$v"
}

# --- arguments ----------------------------------------------------------------------------

INFRA= CLUSTER= KEEP= NOAPI=
while (($#)); do
	case $1 in
	-h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
	init-env) init_env; exit 0 ;;
	--infra) INFRA=1 ;;
	--cluster) CLUSTER=1 ;;
	--keep) KEEP=1 ;;
	--no-api) NOAPI=1 ;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
	shift
done

need docker
need curl
need jq
need openssl
docker info >/dev/null 2>&1 || die "the Docker engine does not answer"

if docker compose version >/dev/null 2>&1; then
	COMPOSE=(docker compose)
	COMPOSE_V2=1
elif command -v docker-compose >/dev/null 2>&1; then
	COMPOSE=(docker-compose)
	COMPOSE_V2=
else
	die "neither 'docker compose' nor 'docker-compose' is installed"
fi
compose() { "${COMPOSE[@]}" "$@"; }

# The test's own project, ports and mode, whatever .env or the environment say.
export COMPOSE_PROJECT_NAME=$PROJECT
export HOOKRUN_PUBLISH_ADDR=127.0.0.1 HOOKRUN_INGRESS_PUBLISH_ADDR=127.0.0.1
export HOOKRUN_INGRESS_PORT=0 HOOKRUN_KEYS_PORT=0 HOOKRUN_PROMETHEUS_PORT=0 HOOKRUN_GRAFANA_PORT=0 HOOKRUN_ALERTMANAGER_PORT=0
# One dispatcher and the test's executors, whatever scale .env keeps.
export HOOKRUN_DISPATCHER_REPLICAS=1 HOOKRUN_EXECUTOR_REPLICAS="$EXECUTORS"
if [[ -n $CLUSTER ]]; then
	export COMPOSE_PROFILES=cluster NATS_MODE=cluster HOOKRUN_STREAM_REPLICAS=3
	export HOOKRUN_NATS_URL=nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222
else
	export COMPOSE_PROFILES= NATS_MODE=single HOOKRUN_STREAM_REPLICAS=1 HOOKRUN_NATS_URL=nats://nats:4222
fi

# --- teardown -----------------------------------------------------------------------------

PASSED=
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -z $PASSED ]]; then
		printf '\n==> stack state at failure\n' >&2
		compose ps >&2 || true
		printf '\n==> last logs\n' >&2
		compose logs --no-color --tail=60 >&2 || true
	fi
	if [[ -n $KEEP ]]; then
		info "--keep: stack left up; tear down with: COMPOSE_PROJECT_NAME=$PROJECT ${COMPOSE[*]} down -v"
	else
		step "down -v"
		compose down -v --remove-orphans >/dev/null 2>&1 || compose down -v --remove-orphans >&2 || true
	fi
	if [[ -n $PASSED ]]; then
		printf '\ncompose-test: PASS (%ds)\n' "$((SECONDS - START))"
		exit 0
	fi
	printf '\ncompose-test: FAIL (%ds)\n' "$((SECONDS - START))" >&2
	exit $((rc == 0 ? 1 : rc))
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- helpers ------------------------------------------------------------------------------

# host_url SERVICE PORT: http://127.0.0.1:<published port>
host_url() {
	local hp
	hp=$(compose port "$1" "$2" 2>/dev/null | tail -n1)
	[[ -n $hp ]] || die "no published port for $1:$2"
	printf 'http://127.0.0.1:%s' "${hp##*:}"
}

# wait_healthy SERVICE...: every container of the project (or of SERVICEs) healthy.
wait_healthy() {
	local deadline=$((SECONDS + HEALTH_TIMEOUT)) ids line name state health bad pending
	while :; do
		ids=$(compose ps -q "$@" 2>/dev/null || true)
		[[ -n $ids ]] || die "no containers for: ${*:-the project}"
		bad= pending=
		while read -r name state health; do
			case $state/$health in
			running/healthy | running/none) ;;
			running/unhealthy) bad+=" ${name#/}(unhealthy)" ;;
			running/*) pending+=" ${name#/}($health)" ;;
			exited/* | dead/*) bad+=" ${name#/}($state)" ;;
			*) pending+=" ${name#/}($state)" ;;
			esac
		done < <(docker inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' $ids)
		if [[ -n $bad ]]; then
			for name in $bad; do
				docker inspect -f '{{if .State.Health}}{{range .State.Health.Log}}{{.ExitCode}}: {{.Output}}{{end}}{{end}}' "${name%%(*}" 2>/dev/null |
					tail -n 3 | sed "s|^|    ${name%%(*} healthcheck: |" >&2 || true
			done
			die "containers failed:$bad"
		fi
		[[ -z $pending ]] && return 0
		((SECONDS < deadline)) || die "not healthy after ${HEALTH_TIMEOUT}s:$pending"
		sleep 2
	done
}

# api METHOD PATH [JSON]: keys API call; prints the body; fails unless 2xx.
api() {
	local method=$1 path=$2 body=${3:-} out code
	local args=(-sS -X "$method" -H "Authorization: Bearer $TOKEN" -w '\n%{http_code}')
	[[ -n $body ]] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
	out=$(curl "${args[@]}" "$KEYS$path") || die "$method $path: no answer from the keys API"
	code=${out##*$'\n'}
	out=${out%$'\n'*}
	[[ $code == 2* ]] || die "$method $path: HTTP $code: $out"
	printf '%s' "$out"
}

# deliver WEBHOOK_PATH SECRET DELIVERY_ID BODY: signed GitHub delivery; prints "code body".
# Retries while the ingress has not yet seen the new webhook (404) or JetStream is not
# ready (503).
deliver() {
	local path=$1 secret=$2 id=$3 body=$4 sig out code i
	sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$secret" | awk '{ print $NF }')
	for ((i = 0; i < 30; i++)); do
		out=$(curl -sS -X POST -w '\n%{http_code}' \
			-H 'Content-Type: application/json' \
			-H 'X-GitHub-Event: push' \
			-H "X-GitHub-Delivery: $id" \
			-H "X-Hub-Signature-256: sha256=$sig" \
			--data-binary "$body" "$INGRESS$path") || out=$'\n000'
		code=${out##*$'\n'}
		out=${out%$'\n'*}
		case $code in
		404 | 503 | 000) sleep 1 ;;
		*) break ;;
		esac
	done
	printf '%s %s' "$code" "$out"
}

# run_field RUN_ID FIELD
run_field() { api GET "/v1/runs/$1" | jq -r ".$2 // empty"; }

# wait_run RUN_ID STATUS TIMEOUT: until the run has STATUS; fails on another final status.
wait_run() {
	local id=$1 want=$2 deadline=$((SECONDS + $3)) st=
	while ((SECONDS < deadline)); do
		st=$(api GET "/v1/runs/$id" | jq -r '.status // empty') || true
		[[ $st == "$want" ]] && return 0
		case $st in
		succeeded | failed | timed_out | cancelled | filtered | rejected)
			die "run $id ended $st, expected $want: $(api GET "/v1/runs/$id")"
			;;
		esac
		sleep 1
	done
	die "run $id is ${st:-unknown} after $3s, expected $want"
}

prom_query() { curl -sS -G --data-urlencode "query=$1" "$PROM/api/v1/query"; }

# --- test ---------------------------------------------------------------------------------

step "images (scripts/images.sh)"
if [[ -n $INFRA ]]; then
	scripts/images.sh infra || die "scripts/images.sh failed"
else
	scripts/images.sh || die "scripts/images.sh failed"
fi

if [[ -z $INFRA ]]; then
	step "executor image: as PID 1 (no init), processes jobs leave behind are reaped"
	EXECUTOR_IMAGE="$(env_value HOOKRUN_IMAGE_PREFIX)"
	EXECUTOR_IMAGE="${EXECUTOR_IMAGE:-ghcr.io/hookrun}/executor:$(v=$(env_value HOOKRUN_VERSION); echo "${v:-dev}")"
	# Under Kubernetes or a plain `docker run` nothing but the image's entrypoint reaps:
	# an orphan (here one made by `docker exec`, re-parented to PID 1 as a job's would
	# be) must not stay a zombie. The executor itself waits for a NATS that is not there.
	cid=$(docker run -d --rm "$EXECUTOR_IMAGE") || die "docker run $EXECUTOR_IMAGE failed"
	docker exec "$cid" /bin/sh -c '(sleep 0.2 &) ; exit 0' || { docker rm -f "$cid" >/dev/null; die "docker exec failed"; }
	sleep 1.5
	zombies=$(docker exec "$cid" /bin/bash -c 'n=0; for s in /proc/[0-9]*/status; do grep -q "^State:.*Z" "$s" 2>/dev/null && n=$((n+1)); done; echo $n')
	pid1=$(docker exec "$cid" /bin/bash -c 'tr "\0" " " </proc/1/cmdline')
	docker rm -f "$cid" >/dev/null
	[[ $zombies == 0 ]] || die "$zombies zombie process(es) in the executor container as PID 1 is: $pid1"
	info "PID 1 is: $pid1; no zombie left"
fi

step ".env"
init_env
TOKEN=$(env_value HOOKRUN_ADMIN_TOKEN)
[[ -n $TOKEN ]] || die "HOOKRUN_ADMIN_TOKEN is empty"

step "compose config (${COMPOSE[*]})"
compose config -q

step "clean start: down -v of any earlier $PROJECT"
compose down -v --remove-orphans >/dev/null 2>&1 || true

SERVICES=()
UP_ARGS=(-d)
if [[ -n $INFRA ]]; then
	SERVICES=(nats redis prometheus alertmanager)
	[[ -n $CLUSTER ]] && SERVICES+=(nats-2 nats-3)
else
	UP_ARGS+=(--scale "executor=$EXECUTORS")
fi
if [[ -n $COMPOSE_V2 ]]; then
	UP_ARGS+=(--wait)
	# Bounded as wait_healthy is (older Compose v2 has no --wait-timeout).
	[[ $(compose up --help 2>/dev/null) == *--wait-timeout* ]] && UP_ARGS+=(--wait-timeout "$HEALTH_TIMEOUT")
fi
step "up ${UP_ARGS[*]} ${SERVICES[*]}"
compose up "${UP_ARGS[@]}" "${SERVICES[@]}"

step "waiting until every container is healthy"
wait_healthy
compose ps

PROM=$(host_url prometheus 9090)
info "prometheus $PROM"

step "nats: JetStream on, authentication required"
jsz=$(compose exec -T nats wget -q -O - http://127.0.0.1:8222/jsz)
[[ $(jq -r '.config.store_dir // empty' <<<"$jsz") == /data* ]] || die "JetStream is not storing in /data: $jsz"
varz=$(compose exec -T nats wget -q -O - http://127.0.0.1:8222/varz)
[[ $(jq -r '.auth_required' <<<"$varz") == true ]] || die "nats does not require authentication"
if [[ -n $CLUSTER ]]; then
	for n in nats nats-2 nats-3; do
		routes=$(compose exec -T "$n" wget -q -O - http://127.0.0.1:8222/routez | jq '[.routes[].remote_name] | unique | length')
		((routes == 2)) || die "$n has routes to $routes other nodes, expected 2"
	done
	size=$(compose exec -T nats wget -q -O - http://127.0.0.1:8222/jsz | jq '.meta_cluster.cluster_size // 0')
	((size == 3)) || die "the JetStream meta group has $size members, expected 3"
	info "three nodes, each routed to the two others; JetStream meta group of 3"
fi

step "redis: AOF on, password required"
[[ $(compose exec -T redis redis-cli config get appendonly | tail -n1 | tr -d '\r') == yes ]] ||
	die "redis runs without appendonly"
noauth=$(compose exec -T -e REDISCLI_AUTH= redis redis-cli ping 2>&1 | tr -d '\r' || true)
[[ $noauth == *NOAUTH* ]] || die "redis answers without a password: $noauth"

step "prometheus: API answers and loaded our configuration"
[[ $(prom_query up | jq -r .status) == success ]] || die "prometheus query failed"
cfg=$(curl -sS "$PROM/api/v1/status/config" | jq -r .data.yaml)
for j in ingress keys dispatcher executor; do
	grep -q "job_name: .*$j" <<<"$cfg" || die "prometheus has no scrape job for $j"
done

step "prometheus: web UI, no lifecycle API"
# http_code URL [curl args...]
http_code() { curl -sS -o /dev/null -w '%{http_code}' "${@:2}" "$1" || true; }
for path in / /classic/graph /classic/static/jquery/jquery.min.js /classic/static/moment-timezone/moment-timezone-with-data.min.js; do
	code=$(http_code "$PROM$path" -L)
	[[ $code == 200 ]] || die "prometheus GET $path answered HTTP $code (web UI assets missing from the image?)"
done
code=$(http_code "$PROM/-/quit" -X POST)
[[ $code == 403 ]] || die "prometheus POST /-/quit answered HTTP $code, want 403 (--web.enable-lifecycle must stay off)"
info "/ and /classic/graph answer 200 with their scripts; POST /-/quit is refused"

step "alertmanager: ready, web UI, Prometheus sends alerts to it"
AM=$(host_url alertmanager 9093)
info "alertmanager $AM"
for path in /-/ready / /script.js; do
	code=$(http_code "$AM$path")
	[[ $code == 200 ]] || die "alertmanager GET $path answered HTTP $code"
done
receivers=$(curl -sS "$AM/api/v2/receivers" | jq -r '.[].name' | sort | tr '\n' ' ')
[[ $receivers == *hookrun-critical* && $receivers == *hookrun-warning* ]] ||
	die "alertmanager did not load deploy/alertmanager/alertmanager.yml: receivers $receivers"
deadline=$((SECONDS + 60))
until curl -sS "$PROM/api/v1/alertmanagers" | jq -e '.data.activeAlertmanagers[].url | select(test("alertmanager:9093"))' >/dev/null; do
	((SECONDS < deadline)) || die "prometheus does not send to alertmanager:9093: $(curl -sS "$PROM/api/v1/alertmanagers")"
	sleep 2
done
info "receivers: $receivers; prometheus' active alertmanager: alertmanager:9093"

if [[ -n $INFRA ]]; then
	PASSED=1
	exit 0
fi

KEYS=$(host_url keys 8081)
INGRESS=$(host_url ingress 8080)
info "keys $KEYS   ingress $INGRESS"

if [[ -z $NOAPI ]]; then

step "keys API: job hello, secret gh, webhook gh-hello (GitHub profile)"
api PUT /v1/jobs/hello "$(jq -nc '{apiVersion: "hookrun.dev/v1", kind: "Job", metadata: {name: "hello"},
	spec: {command: ["/bin/sh", "-c", "echo compose-test-ok; printf %s \"$HOOKRUN_ARG_WEBHOOK_PAYLOAD\"; printf \"#!/bin/sh\\necho exec-ok\\n\" > x.sh && chmod +x x.sh && ./x.sh; echo workdir-fs=$(stat -f -c %T .); echo job-uid=$(id -u); echo secret-visible=$(cat /proc/1/environ /proc/$PPID/environ 2>/dev/null | tr \"\\000\" \"\\n\" | grep -c HOOKRUN_SECRET_KEY)"]}}')" >/dev/null
GH_SECRET=$(openssl rand -hex 20)
api PUT /v1/secrets/gh "$(jq -nc --arg v "$GH_SECRET" '{apiVersion: "hookrun.dev/v1", kind: "Secret", metadata: {name: "gh"}, spec: {value: $v}}')" >/dev/null
webhook() {
	api PUT "/v1/webhooks/$1" "$(jq -nc --arg n "$1" --arg j "$2" '{apiVersion: "hookrun.dev/v1", kind: "Webhook", metadata: {name: $n},
		spec: {job: $j, auth: {signature: {profile: "github", secretRef: "gh"}}}}')" | jq -r '.status.endpointPath // empty'
}
HELLO_PATH=$(webhook gh-hello hello)
[[ -n $HELLO_PATH ]] || die "PUT /v1/webhooks/gh-hello answered without status.endpointPath"
[[ $HELLO_PATH == /* ]] || HELLO_PATH=/v1/hooks/$HELLO_PATH
info "endpoint $HELLO_PATH"

step "signed delivery -> 202, run succeeds"
DELIVERY=$(cat /proc/sys/kernel/random/uuid)
BODY=$(jq -nc --arg d "$DELIVERY" '{ref: "refs/heads/main", marker: "compose-test", delivery: $d}')
read -r code resp < <(deliver "$HELLO_PATH" "$GH_SECRET" "$DELIVERY" "$BODY")
[[ $code == 202 ]] || die "delivery answered HTTP $code: $resp"
[[ $(jq -r .duplicate <<<"$resp") == false ]] || die "first delivery marked duplicate: $resp"
RUN=$(jq -r '.executionId // empty' <<<"$resp")
[[ -n $RUN ]] || die "202 without executionId: $resp"
info "executionId $RUN"
wait_run "$RUN" succeeded 90
run=$(api GET "/v1/runs/$RUN")
jq -e '(.output // "") | contains("compose-test-ok")' <<<"$run" >/dev/null || die "run output lacks the job's echo: $run"
jq -e '(.output // "") | contains("\"marker\":\"compose-test\"")' <<<"$run" >/dev/null ||
	die "run output lacks the payload (HOOKRUN_ARG_WEBHOOK_PAYLOAD): $run"
jq -e '(.output // "") | contains("exec-ok")' <<<"$run" >/dev/null ||
	die "the job could not run a script it wrote in its working directory (a noexec mount?): $run"
jq -e '(.output // "") | contains("workdir-fs=tmpfs")' <<<"$run" >/dev/null ||
	die "the run's working directory is not on the executor's tmpfs: $run"
jq -e '(.output // "") | contains("job-uid=10001")' <<<"$run" >/dev/null ||
	die "the job did not run as the image's user hookrun (HOOKRUN_JOB_USER): $run"
jq -e '(.output // "") | contains("secret-visible=0")' <<<"$run" >/dev/null ||
	die "the job could read the executor's credentials in /proc/1/environ or /proc/\$PPID/environ: $run"
info "run succeeded; output has the payload; its directory is on tmpfs and runs what the job writes there"
info "the job ran as hookrun (10001) and could not read the executor's environment"

step "same delivery again -> duplicate"
read -r code resp < <(deliver "$HELLO_PATH" "$GH_SECRET" "$DELIVERY" "$BODY")
[[ $code == 202 ]] || die "repeated delivery answered HTTP $code: $resp"
[[ $(jq -r .duplicate <<<"$resp") == true ]] || die "repeated delivery not marked duplicate: $resp"
[[ $(jq -r .executionId <<<"$resp") == "$RUN" ]] || die "duplicate names another run: $resp"

step "slow job: kill the executors mid-run, the run still succeeds exactly once"
api PUT /v1/jobs/slow "$(jq -nc '{apiVersion: "hookrun.dev/v1", kind: "Job", metadata: {name: "slow"},
	spec: {command: ["/bin/sh", "-c", "sleep 20; printf \"#!/bin/sh\\necho exec-ok\\n\" > x.sh && chmod +x x.sh && ./x.sh; echo workdir-fs=$(stat -f -c %T .); echo slow-done"]}}')" >/dev/null
SLOW_PATH=$(webhook gh-slow slow)
[[ -n $SLOW_PATH ]] || die "PUT /v1/webhooks/gh-slow answered without status.endpointPath"
[[ $SLOW_PATH == /* ]] || SLOW_PATH=/v1/hooks/$SLOW_PATH
SLOW_DELIVERY=$(cat /proc/sys/kernel/random/uuid)
read -r code resp < <(deliver "$SLOW_PATH" "$GH_SECRET" "$SLOW_DELIVERY" '{"slow":true}')
[[ $code == 202 ]] || die "slow delivery answered HTTP $code: $resp"
SLOW_RUN=$(jq -r '.executionId // empty' <<<"$resp")
wait_run "$SLOW_RUN" running 60
EXECUTOR_IDS=$(compose ps -q executor)
info "run $SLOW_RUN is running; docker kill $(wc -w <<<"$EXECUTOR_IDS") executor(s)"
# shellcheck disable=SC2086
docker kill $EXECUTOR_IDS >/dev/null
sleep 2
# shellcheck disable=SC2086
docker start $EXECUTOR_IDS >/dev/null
wait_healthy executor
info "executors back; waiting for the redelivered run"
wait_run "$SLOW_RUN" succeeded 240
info "run succeeded, attempt $(run_field "$SLOW_RUN" attempt)"
runs=$(api GET '/v1/runs?job=slow')
n=$(jq '.runs | length' <<<"$runs")
((n == 1)) || die "job slow has $n runs, expected exactly 1: $runs"
[[ $(jq -r '.runs[0].status' <<<"$runs") == succeeded ]] || die "the run of job slow is not succeeded: $runs"
run=$(api GET "/v1/runs/$SLOW_RUN")
jq -e '(.output // "") | contains("exec-ok") and contains("workdir-fs=tmpfs")' <<<"$run" >/dev/null ||
	die "after the executors' restart, the run's directory is not an exec tmpfs: $run"
info "after the restart too, the run's directory is on tmpfs and runs what the job writes there"
fi # NOAPI

step "prometheus: hookrun_ series from every service"
deadline=$((SECONDS + 90))
while :; do
	jobs=$(prom_query 'count by (job) ({__name__=~"hookrun_.+"})' | jq -r '.data.result[].metric.job' | sort -u | tr '\n' ' ')
	missing=
	for s in ingress keys dispatcher executor; do
		[[ " $jobs " == *" hookrun-$s "* || " $jobs " == *" $s "* ]] || missing+=" $s"
	done
	targets=$(curl -sS "$PROM/api/v1/targets?state=active" |
		jq '[.data.activeTargets[] | select(.labels.job | test("executor")) | select(.health == "up")] | length')
	[[ -z $missing && $targets == "$EXECUTORS" ]] && break
	((SECONDS < deadline)) || die "no hookrun_ series in Prometheus from:${missing:- (none missing)}; jobs with series: ${jobs:-none}; executors scraped: $targets of $EXECUTORS"
	sleep 3
done
info "jobs with hookrun_ series: $jobs; all $targets executors scraped"

step "nats: every service worked within its own user's permissions (deploy/nats/users.conf)"
for n in nats ${CLUSTER:+nats-2 nats-3}; do
	violations=$(compose logs --no-color "$n" 2>&1 | grep -c 'Violation' || true)
	if ((violations > 0)); then
		compose logs --no-color "$n" 2>&1 | grep 'Violation' | head -n 20 >&2
		die "$n logged $violations permission violations"
	fi
done
conns=
for n in nats ${CLUSTER:+nats-2 nats-3}; do
	conns+=" $(compose exec -T "$n" wget -q -O - 'http://127.0.0.1:8222/connz?auth=true' | jq -r '[.connections[].authorized_user] | join(" ")')"
done
conns=$(tr ' ' '\n' <<<"$conns" | sort -u | tr '\n' ' ')
for u in ingress dispatcher executor keys; do
	[[ " $conns " == *" $u "* ]] || die "no connection as NATS user $u (users connected: $conns)"
done
info "no permission violation; connected users:$conns"

PASSED=1
