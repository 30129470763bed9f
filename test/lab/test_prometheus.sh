#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_prometheus.sh - a real Prometheus server scrapes the lab's daemons (issue 14).
# Every daemon serves its metrics on 127.0.0.1 inside its own network namespace, so one
# Debian prometheus runs in each namespace that holds daemons: in the management namespace
# for the analyzer and the collector, in h1 and h2 for their agents. Each gets a scrape
# configuration like the README's (jobs dyetrace-analyzer, dyetrace-collector,
# dyetrace-agent; promtool must accept it), a storage directory in the lab's state dir and
# a one-second scrape interval. The test waits until every target is up (the targets API
# and the up series), traces pings, and then, for each daemon, waits until Prometheus has
# the counter the daemon itself serves, stops the daemon, sees Prometheus mark the target
# down, and reads the counter back through /api/v1/query: it must equal the number in the
# daemon's exit log line. The Prometheus servers are stopped at the end (exit status 0).
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtpr" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtpr}"
export DT_LAB
export DT_LAB_METRICS=1
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

PINGS=10
PROM_PORT=9090 # in each namespace, on 127.0.0.1

checks_trap
trap '((CHECKS_FAILED == 0)) || lab_logs_tail 20; checks_finish; exit $?' EXIT

for tool in prometheus promtool; do
	if ! command -v "$tool" >/dev/null; then
		not_ok "$tool is installed (apt-get install prometheus; packaging/setup.sh deps does)"
		exit 1
	fi
done
if ! lab_up --window-ms 500; then
	not_ok "lab up with metrics (DT_LAB_METRICS=1)"
	exit 1
fi
ok "lab up: analyzer, collector, agents h1 and h2, each serving metrics"

# The Prometheus servers: NAME NAMESPACE JOB=DAEMON... (a job per daemon it scrapes).
PROMS=(mgmt h1 h2)
declare -A PROM_NS=([mgmt]=$LAB_MGMT [h1]=$LAB_H1 [h2]=$LAB_H2)
declare -A PROM_JOBS=([mgmt]="dyetrace-analyzer=analyzer dyetrace-collector=collector"
	[h1]="dyetrace-agent=agent-h1" [h2]="dyetrace-agent=agent-h2")
# Which server and job scrape each daemon.
declare -A DAEMON_PROM=() DAEMON_JOB=()

# prom_config NAME: the scrape configuration of server NAME.
prom_config() {
	local pair job daemon
	printf 'global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n'
	printf 'scrape_configs:\n'
	for pair in ${PROM_JOBS[$1]}; do
		job=${pair%%=*} daemon=${pair#*=}
		printf '  - job_name: %s\n    static_configs:\n' "$job"
		printf "      - targets: ['127.0.0.1:%s']\n" "$(lab_metrics_port "$daemon")"
		[[ $daemon == agent-* ]] && printf '        labels:\n          node: %s\n' "${daemon#agent-}"
	done
}

# prom_get NAME PATH [CURL-ARGS...]: GET PATH from server NAME (inside its namespace).
prom_get() {
	local name=$1 path=$2
	shift 2
	lab_in "${PROM_NS[$name]}" curl -sS --max-time 5 "$@" "http://127.0.0.1:$PROM_PORT$path"
}

# prom_query NAME QUERY: the value of the first sample of an instant query ("" when none).
prom_query() {
	prom_get "$1" /api/v1/query -G --data-urlencode "query=$2" |
		jq -r 'if .status == "success" then (.data.result[0].value[1] // "") else error(.error) end'
}

# prom_targets_up NAME N: server NAME has N active targets, every one up.
prom_targets_up() {
	prom_get "$1" /api/v1/targets | jq -e --argjson n "$2" \
		'.data.activeTargets | length == $n and all(.health == "up")' >/dev/null
}

# wait_for SECONDS CMD...: retries CMD every 0.25 s until it succeeds.
wait_for() {
	local limit=$1 start
	shift
	start=$(lab__now)
	until "$@"; do
		lab__elapsed_lt "$start" "$limit" || return 1
		sleep 0.25
	done
}

for name in "${PROMS[@]}"; do
	dir=$LAB_DIR/prometheus-$name
	mkdir -p "$dir/data"
	prom_config "$name" >"$dir/prometheus.yml"
	check "prometheus-$name: promtool accepts the scrape configuration" \
		promtool check config "$dir/prometheus.yml"
	for pair in ${PROM_JOBS[$name]}; do
		DAEMON_PROM[${pair#*=}]=$name
		DAEMON_JOB[${pair#*=}]=${pair%%=*}
	done
	lab_bg "prometheus-$name" "${PROM_NS[$name]}" prometheus --config.file="$dir/prometheus.yml" \
		--storage.tsdb.path="$dir/data" --web.listen-address="127.0.0.1:$PROM_PORT" \
		--log.level=warn
done
for name in "${PROMS[@]}"; do
	check "prometheus-$name: ready in ${PROM_NS[$name]} (127.0.0.1:$PROM_PORT/-/ready)" \
		wait_for 60 prom_get "$name" /-/ready -f -o /dev/null
done
for name in "${PROMS[@]}"; do
	n=$(wc -w <<<"${PROM_JOBS[$name]}")
	check "prometheus-$name: its $n target(s) scraped and up (/api/v1/targets)" \
		wait_for 30 prom_targets_up "$name" "$n"
	for pair in ${PROM_JOBS[$name]}; do
		check_eq "prometheus-$name: up{job=\"${pair%%=*}\"} is 1 (/api/v1/query)" \
			"$(prom_query "$name" "up{job=\"${pair%%=*}\"}")" 1
	done
done

# --- Traffic: a traced ping, so that the counters are not all 0
checks_task task "create a ping task, both directions" "ping task armed" \
	--src "$LAB_I1_IP" --dst "$LAB_I2_IP" --proto icmp --vni "$LAB_VNI" --direction both
check "$PINGS pings i1 -> i2, all answered" lab_in "$LAB_I1" ping -c "$PINGS" -i 0.05 -W 1 -q "$LAB_I2_IP"
check "every packet judged" lab_task_wait_judged "$task" $((2 * PINGS))
check "cancel the task (nothing moves the counters any more)" lab_cli task cancel "$task"

# --- Per daemon, downstream last: Prometheus has the daemon's own value; after the daemon
# stopped, the value Prometheus holds is the one of the daemon's exit line.
# DAEMON METRIC EXIT-TAG EXIT-KEY
COUNTERS=(
	"agent-h1 dyetrace_agent_samples_sent_total DT-AGENT-EXIT samples_sent"
	"agent-h2 dyetrace_agent_samples_sent_total DT-AGENT-EXIT samples_sent"
	"collector dyetrace_collector_samples_stored_total DT-COLL-EXIT samples_stored"
	"analyzer dyetrace_analyzer_samples_received_total DT-ANA-EXIT samples"
)

# live_value DAEMON METRIC: the counter on the daemon's own page now.
live_value() {
	lab_metrics_scrape "$1" 2>/dev/null | awk -v m="$2" '$1 == m { print $2 }'
}

# prom_has_live DAEMON METRIC: Prometheus's last scrape has the value the daemon serves.
prom_has_live() {
	local live prom
	live=$(live_value "$1" "$2") || return 1
	prom=$(prom_query "${DAEMON_PROM[$1]}" "$2{job=\"${DAEMON_JOB[$1]}\"}") || return 1
	[[ -n $live && $live == "$prom" ]]
}

# prom_down DAEMON: Prometheus saw the daemon's target go down.
prom_down() {
	[[ $(prom_query "${DAEMON_PROM[$1]}" "up{job=\"${DAEMON_JOB[$1]}\"}") == 0 ]]
}

for c in "${COUNTERS[@]}"; do
	read -r d metric tag key <<<"$c"
	p=${DAEMON_PROM[$d]} job=${DAEMON_JOB[$d]}
	check "$d: Prometheus has the value of $metric that $d serves" wait_for 20 prom_has_live "$d" "$metric"
	v=$(prom_query "$p" "$metric{job=\"$job\"}")
	if [[ $v =~ ^[0-9]+$ ]] && ((v >= PINGS)); then
		ok "$d: $metric{job=\"$job\"} is $v, at least the $PINGS traced packets"
	else
		not_ok "$d: $metric{job=\"$job\"} counts the traced packets" "got '$v', want >= $PINGS"
	fi
	check_stopped "$d"
	check "$d: Prometheus sees its target down (up{job=\"$job\"} is 0)" wait_for 20 prom_down "$d"
	pv=$(prom_query "$p" "last_over_time($metric{job=\"$job\"}[10m])")
	ev=$(exit_counter "$LAB_DIR/$d.log" "$tag" "$key")
	check_eq "$d: the last $metric Prometheus scraped ($pv) equals $tag $key" \
		"${pv:-nothing from Prometheus}" "${ev:-no $key= in its $tag line}"
done

# --- The Prometheus servers stop cleanly
for name in "${PROMS[@]}"; do
	check_stopped "prometheus-$name"
done
