#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_metrics.sh - Prometheus metrics (issue 5). Every daemon of the lab serves
# GET /metrics (text format 0.0.4) on 127.0.0.1 in its namespace; every page parses with
# prometheus_client's parser (Debian's python3-prometheus-client under /usr/bin/python3),
# each family has HELP and TYPE and the daemon's prefix. Traced pings raise the samples
# counters of the agents, the collector and the analyzer by at least the packets sent,
# and the counters agree along the chain (agents' sent = collector's stored, collector's
# forwarded = analyzer's received); tasks by state follow the task; a budget-limited task
# counts its refused packets; a malformed batch and an unknown task count by reason and
# status. A bad "metrics" setting is a configuration error (exit 2, file:line), an address
# in use a startup error (exit 1). At the end each daemon is stopped with SIGTERM and the
# numbers of its exit log line equal its last scrape.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtmx" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtmx}"
export DT_LAB
export DT_LAB_METRICS=1
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

PY=/usr/bin/python3 # Debian's, with python3-prometheus-client (not a pyenv python3)
PINGS=20
BUDGET=5
BUDGET_PINGS=12
DAEMONS=(analyzer collector agent-h1 agent-h2)

checks_trap
trap '((CHECKS_FAILED == 0)) || lab_logs_tail 20; checks_finish; exit $?' EXIT

if ! "$PY" -c 'import prometheus_client.parser' 2>/dev/null; then
	not_ok "$PY has prometheus_client (apt-get install python3-prometheus-client)"
	exit 1
fi
if ! lab_up --window-ms 500; then
	not_ok "lab up with metrics (DT_LAB_METRICS=1)"
	exit 1
fi
ok "lab up: analyzer, collector, agents h1 and h2, each serving metrics"

# The strict parser: prometheus_client reads the page; every family must have HELP, a
# TYPE (counter, gauge or histogram), the daemon's prefix, and counters the _total suffix;
# a family may appear once; histogram buckets must be cumulative with +Inf = _count.
# Prints each sample as "name{labels sorted}<TAB>value", and "sum(name)<TAB>total" per
# family of counters or gauges (the log lines give some counters as a sum over a label).
cat >"$LAB_DIR/prom_check.py" <<'EOF'
import math
import sys
from prometheus_client.parser import text_string_to_metric_families

path, daemon = sys.argv[1], sys.argv[2]
text = open(path, encoding="utf-8").read()
if not text.endswith("\n"):
    sys.exit("page does not end with a newline")
prefix = "dyetrace_%s_" % daemon
seen, out = set(), []

def num(v):
    return str(int(v)) if v == int(v) else repr(v)

def key(s):
    labels = ",".join('%s="%s"' % (k, s.labels[k]) for k in sorted(s.labels))
    return s.name + ("{%s}" % labels if labels else "")

try:
    families = list(text_string_to_metric_families(text))
except Exception as e:
    sys.exit("parse error: %s" % e)
if not families:
    sys.exit("no metric family")
for f in families:
    if f.name in seen:
        sys.exit("family %s appears twice" % f.name)
    seen.add(f.name)
    if not f.name.startswith(prefix):
        sys.exit("family %s lacks the prefix %s" % (f.name, prefix))
    if f.type not in ("counter", "gauge", "histogram"):
        sys.exit("family %s has type %s (no TYPE line?)" % (f.name, f.type))
    if not f.documentation:
        sys.exit("family %s has no HELP" % f.name)
    if not f.samples:
        sys.exit("family %s has no sample" % f.name)
    total = 0.0
    for s in f.samples:
        if math.isnan(s.value) or s.value < 0:
            sys.exit("%s = %r" % (key(s), s.value))
        if f.type == "counter" and not s.name.endswith("_total"):
            sys.exit("counter sample %s lacks _total" % s.name)
        total += s.value
        out.append("%s\t%s" % (key(s), num(s.value)))
    if f.type == "histogram":
        buckets = [s for s in f.samples if s.name.endswith("_bucket")]
        count = [s.value for s in f.samples if s.name.endswith("_count")]
        vals = [s.value for s in buckets]
        if not buckets or buckets[-1].labels.get("le") != "+Inf" or vals != sorted(vals) \
                or count != [vals[-1]]:
            sys.exit("histogram %s: buckets not cumulative or +Inf != _count" % f.name)
    else:
        out.append("sum(%s)\t%s" % (f.samples[0].name, num(total)))
print("\n".join(out))
EOF

# scrape DAEMON NAME: scrapes DAEMON into $LAB_DIR/m-NAME.txt and its parsed samples into
# $LAB_DIR/m-NAME.tsv. Fails (with the reason) when the page cannot be had or parsed.
scrape() {
	local d=$1 f=$LAB_DIR/m-$2
	lab_metrics_scrape "$d" >"$f.txt" || return 1
	"$PY" "$LAB_DIR/prom_check.py" "$f.txt" "$(daemon_kind "$d")" >"$f.tsv"
}

daemon_kind() { case $1 in agent-*) echo agent ;; collector*) echo collector ;; *) echo "$1" ;; esac; }

# mval NAME KEY: the value of sample KEY (exactly as prom_check.py prints it) in scrape NAME.
mval() {
	awk -F'\t' -v k="$2" '$1 == k { print $2; found = 1 } END { exit !found }' "$LAB_DIR/m-$1.tsv" 2>/dev/null ||
		echo '?'
}

# delta NAME_AFTER NAME_BEFORE KEY
delta() {
	local a b
	a=$(mval "$1" "$3") b=$(mval "$2" "$3")
	[[ $a =~ ^[0-9]+$ && $b =~ ^[0-9]+$ ]] || {
		echo '?'
		return
	}
	echo $((a - b))
}

# check_ge DESC GOT MIN
check_ge() {
	if [[ $2 =~ ^-?[0-9]+$ ]] && (($2 >= $3)); then ok "$1"; else not_ok "$1" "got '$2', want >= $3"; fi
}

# scrape_settled DAEMON NAME [EXCLUDE-ERE]: scrapes until two scrapes half a second apart
# agree (except the samples matching EXCLUDE-ERE: gauges over a time window), into NAME.
scrape_settled() {
	local d=$1 name=$2 ex=${3:-'^$'} try
	for ((try = 0; try < 40; try++)); do
		scrape "$d" "$name.a" || return 1
		sleep 0.5
		scrape "$d" "$name" || return 1
		if diff <(grep -Ev "$ex" "$LAB_DIR/m-$name.a.tsv") <(grep -Ev "$ex" "$LAB_DIR/m-$name.tsv") >/dev/null; then
			return 0
		fi
	done
	echo "$d: counters still moving after 40 tries"
	return 1
}

# wait_value DAEMON NAME KEY WANT: scrapes (into NAME) until KEY has the value WANT.
wait_value() {
	local try
	for ((try = 0; try < 100; try++)); do
		scrape "$1" "$2" && [[ $(mval "$2" "$3") == "$4" ]] && return 0
		sleep 0.2
	done
	echo "$1: $3 is $(mval "$2" "$3"), want $4"
	return 1
}

# --- every page: 200 with the text format's content type, 404 elsewhere, parses strictly
for d in "${DAEMONS[@]}"; do
	url=$(lab_metrics_url "$d")
	ns=$(lab_metrics_ns "$d")
	got=$(lab_in "$ns" curl -s -o /dev/null -w '%{http_code} %{content_type}' "$url")
	check_eq "$d: GET /metrics answers 200, text/plain; version=0.0.4" "$got" "200 text/plain; version=0.0.4"
	got=$(lab_in "$ns" curl -s -o /dev/null -w '%{http_code}' "${url%/metrics}/other")
	check_eq "$d: GET /other answers 404" "$got" 404
	check "$d: the page parses (HELP, TYPE, prefix dyetrace_$(daemon_kind "$d")_, _total)" scrape "$d" "$d.0"
done

# --- a bad setting is a configuration error, an address in use a startup error
conf=$LAB_DIR/bad-metrics.conf
printf 'name = "cx";\nlisten = "tcp://127.0.0.1:7499";\n\nmetrics = "http://127.0.0.1:9102/x";\n' >"$conf"
run "$LAB_BIN/dyetrace-collector" --check -c "$conf"
check_rc "a metrics URL with a path: configuration error, exit 2" 2
check_eq "... reported as file:line: what" "$(grep -c "^dyetrace-collector: $conf:4: 'metrics' " <<<"$ERR")" 1
printf 'name = "cx";\nmetrics = "tcp://127.0.0.1:9102";\n' >"$conf"
run "$LAB_BIN/dyetrace-collector" --check -c "$conf"
check_rc "a metrics URL that is not http://: configuration error, exit 2" 2
mkdir -p "$LAB_DIR/store-cx"
cat >"$conf" <<EOF
name = "cx";
listen = "tcp://127.0.0.1:7499";
analyzer = "tcp://127.0.0.1:7497";   # nobody: the lab's analyzer must not hear of it
store = "$LAB_DIR/store-cx";
metrics = "http://127.0.0.1:$(lab_metrics_port collector)";
EOF
run lab_in "$LAB_MGMT" timeout 30 "$LAB_BIN/dyetrace-collector" -c "$conf"
check_rc "a second collector on the collector's metrics address: exit 1" 1
check "... logging DT-COLL-METRICS: cannot serve metrics ...: Address in use" \
	grep -q "DT-COLL-METRICS: cannot serve metrics on http://127.0.0.1:9102: Address in use" <<<"$ERR"
sed -e "s|^listen = .*|listen = \"tcp://127.0.0.1:7498\";|" -e "s|^api = .*|api = \"ipc://$LAB_DIR/api-x.sock\";|" \
	-e "s|^store = .*|store = \"$LAB_DIR/store-ax\";|" "$LAB_DIR/analyzer.conf" >"$LAB_DIR/analyzer-x.conf"
mkdir -p "$LAB_DIR/store-ax"
run lab_in "$LAB_MGMT" timeout 30 "$LAB_BIN/dyetrace-analyzer" -c "$LAB_DIR/analyzer-x.conf"
check_rc "a second analyzer on the analyzer's metrics address: exit 1" 1
check "... logging DT-ANA-METRICS: cannot serve metrics ...: Address in use" \
	grep -q "DT-ANA-METRICS: cannot serve metrics on http://127.0.0.1:9103: Address in use" <<<"$ERR"

# --- a traced ping, both directions
checks_task ping_task "create the ping task, both directions" "ping task armed" \
	--src "$LAB_I1_IP" --dst "$LAB_I2_IP" --proto icmp --vni "$LAB_VNI" --direction both
state=$(lab_task_field "$ping_task" .state)
check "analyzer page" scrape analyzer analyzer.1
check_eq "tasks{state=\"$state\"} counts the armed task" "$(mval analyzer.1 "dyetrace_analyzer_tasks{state=\"$state\"}")" 1
check_eq "tasks by state sum to 1" "$(mval analyzer.1 'sum(dyetrace_analyzer_tasks)')" 1
max_tasks=$(sed -nE 's/^#define DT_MAX_TASKS ([0-9]+).*/\1/p' "$LAB_REPO/bpf/dt_sample.h")
for h in h1 h2; do
	check "agent-$h: the task's keys reach dt_tasks" wait_value "agent-$h" "agent-$h.1" \
		'dyetrace_agent_bpf_map_entries{map="dt_tasks"}' 2
	check_eq "agent-$h: dt_tasks holds at most $max_tasks" \
		"$(mval "agent-$h.1" 'dyetrace_agent_bpf_map_max_entries{map="dt_tasks"}')" "$max_tasks"
	check_eq "agent-$h: dt_ports holds its one port" \
		"$(mval "agent-$h.1" 'dyetrace_agent_bpf_map_entries{map="dt_ports"}')" 1
done
for d in collector agent-h1 agent-h2; do scrape "$d" "$d.1"; done

check "$PINGS pings i1 -> i2, all answered" lab_in "$LAB_I1" ping -c "$PINGS" -i 0.05 -W 1 -q "$LAB_I2_IP"
check "ping task: every packet judged" lab_task_wait_judged "$ping_task" $((2 * PINGS))
# Everything sent has arrived once the agents' queues and the collector's backlog are empty.
for h in h1 h2; do
	check "agent-$h: link queue empty" wait_value "agent-$h" "agent-$h.2" dyetrace_agent_link_queue_batches 0
done
check "collector: backlog empty" wait_value collector collector.2 dyetrace_collector_backlog_batches 0
check "analyzer page after the pings" scrape analyzer analyzer.2
packets=$((2 * PINGS))
sent=0
for h in h1 h2; do
	d=agent-$h
	check_ge "$d: samples read rose by >= $packets" "$(delta "$d.2" "$d.1" dyetrace_agent_samples_read_total)" $packets
	check_ge "$d: samples written rose by >= $packets" "$(delta "$d.2" "$d.1" dyetrace_agent_samples_written_total)" $packets
	n=$(delta "$d.2" "$d.1" dyetrace_agent_samples_sent_total)
	check_ge "$d: samples sent rose by >= $packets" "$n" $packets
	[[ $n =~ ^[0-9]+$ ]] && sent=$((sent + n))
	check_ge "$d: packets colored rose by >= $PINGS (its first hops)" \
		"$(delta "$d.2" "$d.1" dyetrace_agent_packets_colored_total)" $PINGS
	check_eq "$d: the batch histogram's sum rose like the samples sent" \
		"$(delta "$d.2" "$d.1" dyetrace_agent_batch_samples_sum)" "$n"
	check_ge "$d: batches were built" "$(delta "$d.2" "$d.1" dyetrace_agent_batch_samples_count)" 1
	check_eq "$d: no sample lost" "$(mval "$d.2" 'sum(dyetrace_agent_samples_lost_total)')" 0
done
n=$(delta collector.2 collector.1 dyetrace_collector_samples_stored_total)
check_ge "collector: samples stored rose by >= $packets" "$n" $packets
check_eq "collector: samples stored rose by the agents' samples sent" "$n" "$sent"
fwd=$(delta collector.2 collector.1 dyetrace_collector_samples_forwarded_total)
check_eq "collector: samples forwarded rose by the samples stored" "$fwd" "$n"
n=$(delta analyzer.2 analyzer.1 dyetrace_analyzer_samples_received_total)
check_ge "analyzer: samples received rose by >= $packets" "$n" $packets
check_eq "analyzer: samples received rose by the collector's forwarded" "$n" "$fwd"
check_ge "analyzer: samples attributed rose by >= $packets" \
	"$(delta analyzer.2 analyzer.1 dyetrace_analyzer_samples_attributed_total)" $packets
check_eq "analyzer: no sample unmatched" "$(delta analyzer.2 analyzer.1 dyetrace_analyzer_samples_unmatched_total)" 0
check_eq "analyzer: tasks{state=\"running\"} counts the task" "$(mval analyzer.2 'dyetrace_analyzer_tasks{state="running"}')" 1

# --- a budget: packets past it are counted, not colored
check "cancel the ping task" lab_cli task cancel "$ping_task"
checks_task budget_task "create a ping task with budget $BUDGET" "budget task armed" \
	--src "$LAB_I1_IP" --dst "$LAB_I2_IP" --proto icmp --vni "$LAB_VNI" --budget "$BUDGET"
scrape agent-h1 agent-h1.3
check "$BUDGET_PINGS pings i1 -> i2" lab_in "$LAB_I1" ping -c "$BUDGET_PINGS" -i 0.05 -W 1 -q "$LAB_I2_IP"
# shellcheck disable=SC2154 # budget_task: set by checks_task
check_eq "budget task ends done" "$(lab_task_wait_ended "$budget_task")" "done"
scrape agent-h1 agent-h1.4
# Each ping past the budget is counted until the task, done, is disarmed: at least the one
# after the budget, at most all the rest (how many depends on how soon the done task's
# control set reaches h1: heartbeats carry the colored count up and the set down).
check_range "agent-h1: packets not colored{reason=\"budget-spent\"} rose by 1..$((BUDGET_PINGS - BUDGET))" \
	"$(delta agent-h1.4 agent-h1.3 'dyetrace_agent_packets_not_colored_total{reason="budget-spent"}')" \
	1 $((BUDGET_PINGS - BUDGET))
check_eq "agent-h1: packets colored rose by the budget, $BUDGET" \
	"$(delta agent-h1.4 agent-h1.3 dyetrace_agent_packets_colored_total)" "$BUDGET"
scrape analyzer analyzer.3
check_eq "tasks{state=\"cancelled\"} 1, {state=\"done\"} 1, none active" \
	"$(mval analyzer.3 'dyetrace_analyzer_tasks{state="cancelled"}') $(mval analyzer.3 'dyetrace_analyzer_tasks{state="done"}') $(mval analyzer.3 'dyetrace_analyzer_tasks{state="running"}')" \
	"1 1 0"

# --- API requests by status, malformed batches by reason: exact deltas
run lab_cli task show 999999
check_rc "task show of an unknown task: not found" "$EXIT_NOT_FOUND"
scrape analyzer analyzer.4
check_eq "api_requests_total{status=\"not-found\"} rose by 1" \
	"$(delta analyzer.4 analyzer.3 'dyetrace_analyzer_api_requests_total{status="not-found"}')" 1
check_eq "... and no other status moved" \
	"$(delta analyzer.4 analyzer.3 'sum(dyetrace_analyzer_api_requests_total)')" 1
scrape collector collector.3
check "dt-poke: a batch of a newer version to the collector" lab_in "$LAB_H1" "$LAB_BIN/dt-poke" send "$LAB_COLLECTOR_URL" newer-version
check "dt-poke: a batch with trailing bytes to the collector" lab_in "$LAB_H1" "$LAB_BIN/dt-poke" send "$LAB_COLLECTOR_URL" trailing
check "dt-poke: a CLI request to the analyzer's ingest" lab_in "$LAB_MGMT" "$LAB_BIN/dt-poke" send "$LAB_ANALYZER_URL" wrong-type
scrape collector collector.4
scrape analyzer analyzer.5
check_eq "collector: requests_malformed_total{reason=\"version\"} rose by 1" \
	"$(delta collector.4 collector.3 'dyetrace_collector_requests_malformed_total{reason="version"}')" 1
check_eq "collector: requests_malformed_total{reason=\"trailing-bytes\"} rose by 1" \
	"$(delta collector.4 collector.3 'dyetrace_collector_requests_malformed_total{reason="trailing-bytes"}')" 1
check_eq "collector: 2 malformed in all" "$(delta collector.4 collector.3 'sum(dyetrace_collector_requests_malformed_total)')" 2
check_eq "analyzer: requests_malformed_total{reason=\"message-type\"} rose by 1" \
	"$(delta analyzer.5 analyzer.4 'dyetrace_analyzer_requests_malformed_total{reason="message-type"}')" 1

# --- scrapes are not logged one by one: each daemon logs its metrics address once
for d in "${DAEMONS[@]}"; do
	check_eq "$d: one METRICS log line after $(find "$LAB_DIR" -name "m-$d.*.txt" | wc -l)+ scrapes" \
		"$(grep -c 'METRICS' "$LAB_DIR/$d.log")" 1
done

# --- the exit log line equals the last scrape. Daemons stop downstream last, so that
# nothing moves their counters after their last scrape. Left out: the gauges over a time
# window (agents / collectors heard from recently; link_connected), which the exit line
# either lacks or computes at another instant.
WINDOWED='dyetrace_(collector_agents|analyzer_collectors|[a-z]+_link_connected)'

# exit_equals NAME LOG TAG LOGKEY=SAMPLEKEY...: every LOGKEY of the exit line equals SAMPLEKEY
# of scrape NAME.
exit_equals() {
	local name=$1 log=$2 tag=$3 pair k s lv mv bad=()
	shift 3
	grep -q "$tag" "$log" || {
		echo "no $tag line in $log"
		return 1
	}
	for pair in "$@"; do
		k=${pair%%=*} s=${pair#*=}
		lv=$(exit_counter "$log" "$tag" "$k")
		mv=$(mval "$name" "$s")
		[[ -n $lv && $lv == "$mv" ]] || bad+=("$k=${lv:-none} but $s=$mv")
	done
	((${#bad[@]} == 0)) || {
		printf '%s; ' "${bad[@]}"
		return 1
	}
}

AGENT_KEYS=(colored=dyetrace_agent_packets_colored_total sampled=dyetrace_agent_samples_written_total
	uncolored=dyetrace_agent_packets_uncolored_total foreign_color=dyetrace_agent_packets_foreign_color_total
	drops=dyetrace_agent_drops_total drops_other_netns=dyetrace_agent_drops_other_netns_total
	nat_no_conntrack=dyetrace_agent_nat_no_conntrack_total write_fail=dyetrace_agent_color_write_failures_total
	batches_sent=dyetrace_agent_batches_sent_total samples_sent=dyetrace_agent_samples_sent_total
	resends=dyetrace_agent_resends_total bad_replies=dyetrace_agent_bad_replies_total
	'controls_refused=sum(dyetrace_agent_controls_refused_total)'
	queued=dyetrace_agent_link_queue_batches spooled=dyetrace_agent_spool_batches
	'lost_ring_full=dyetrace_agent_samples_lost_total{reason="ring-full"}'
	'lost_queue_full=dyetrace_agent_samples_lost_total{reason="queue-full"}'
	'lost_bad_record=dyetrace_agent_samples_lost_total{reason="bad-version"}'
	'lost_rejected=dyetrace_agent_samples_lost_total{reason="rejected"}'
	'lost_spool_full=dyetrace_agent_samples_lost_total{reason="spool-full"}'
	'lost_agent_crash=dyetrace_agent_samples_lost_total{reason="agent-crash"}'
	drained=dyetrace_agent_samples_drained_total
	'armed=dyetrace_agent_bpf_map_entries{map="dt_tasks"}' samples_read=dyetrace_agent_samples_read_total
	batches_built=dyetrace_agent_batch_samples_count
	'budget_spent=dyetrace_agent_packets_not_colored_total{reason="budget-spent"}'
	'rate_limited=dyetrace_agent_packets_not_colored_total{reason="rate-limited"}'
	frag_colored=dyetrace_agent_fragments_colored_total frag_orphan=dyetrace_agent_fragments_orphan_total
	recolored=dyetrace_agent_fragments_recolored_total)
COLLECTOR_KEYS=(batches_stored=dyetrace_collector_batches_stored_total
	samples_stored=dyetrace_collector_samples_stored_total duplicates=dyetrace_collector_batches_duplicate_total
	'malformed=sum(dyetrace_collector_requests_malformed_total)' store_errors=dyetrace_collector_batches_failed_total
	batches_forwarded=dyetrace_collector_batches_forwarded_total
	samples_forwarded=dyetrace_collector_samples_forwarded_total queued=dyetrace_collector_link_queue_batches
	resends=dyetrace_collector_resends_total stored_ever=dyetrace_collector_batches_stored_ever_total
	held=dyetrace_collector_store_held_batches
	heartbeats=dyetrace_collector_heartbeats_total backlog=dyetrace_collector_backlog_batches)
ANALYZER_KEYS=(batches=dyetrace_analyzer_batches_received_total samples=dyetrace_analyzer_samples_received_total
	attributed=dyetrace_analyzer_samples_attributed_total late=dyetrace_analyzer_samples_late_total
	held=dyetrace_analyzer_samples_held unmatched=dyetrace_analyzer_samples_unmatched_total
	after_end=dyetrace_analyzer_samples_after_end_total windows=dyetrace_analyzer_windows_total
	nat_learned=dyetrace_analyzer_nat_learned_total nat_full=dyetrace_analyzer_nat_full_total
	nomem=dyetrace_analyzer_stitch_nomem_total names=dyetrace_analyzer_names
	names_full=dyetrace_analyzer_names_full_total duplicates=dyetrace_analyzer_batches_duplicate_total
	'malformed=sum(dyetrace_analyzer_requests_malformed_total)'
	'api_requests=sum(dyetrace_analyzer_api_requests_total)'
	api_refused_token=dyetrace_analyzer_api_refused_token_total store_errors=dyetrace_analyzer_store_errors_total
	control_gen=dyetrace_analyzer_control_generation arms=dyetrace_analyzer_armed_keys
	'tasks=sum(dyetrace_analyzer_tasks)'
	'api_ok=dyetrace_analyzer_api_requests_total{status="ok"}'
	'api_invalid=dyetrace_analyzer_api_requests_total{status="invalid"}'
	'api_not_found=dyetrace_analyzer_api_requests_total{status="not-found"}'
	'api_refused=dyetrace_analyzer_api_requests_total{status="refused"}'
	'api_failed=dyetrace_analyzer_api_requests_total{status="failed"}'
	'api_full=dyetrace_analyzer_api_requests_total{status="full"}')

for h in h1 h2; do
	check "agent-$h: the ended tasks are disarmed" wait_value "agent-$h" "agent-$h.f" \
		'dyetrace_agent_bpf_map_entries{map="dt_tasks"}' 0
	check "agent-$h: last scrape (settled)" scrape_settled "agent-$h" "agent-$h.f" "$WINDOWED"
	check_stopped "agent-$h"
	check "agent-$h: DT-AGENT-EXIT equals the last scrape (${#AGENT_KEYS[@]} numbers)" \
		exit_equals "agent-$h.f" "$LAB_DIR/agent-$h.log" DT-AGENT-EXIT "${AGENT_KEYS[@]}"
done
check "collector: last scrape (settled)" scrape_settled collector collector.f "$WINDOWED"
check_stopped collector
check "collector: DT-COLL-EXIT equals the last scrape (${#COLLECTOR_KEYS[@]} numbers)" \
	exit_equals collector.f "$LAB_DIR/collector.log" DT-COLL-EXIT "${COLLECTOR_KEYS[@]}"
check "analyzer: last scrape (settled)" scrape_settled analyzer analyzer.f "$WINDOWED"
check_stopped analyzer
check "analyzer: DT-ANA-EXIT equals the last scrape (${#ANALYZER_KEYS[@]} numbers)" \
	exit_equals analyzer.f "$LAB_DIR/analyzer.log" DT-ANA-EXIT "${ANALYZER_KEYS[@]}"
active=0
for s in new ready armed running; do
	v=$(mval analyzer.f "dyetrace_analyzer_tasks{state=\"$s\"}")
	[[ $v =~ ^[0-9]+$ ]] && active=$((active + v))
done
check_eq "analyzer: active tasks (new..running) equal DT-ANA-EXIT active" "$active" \
	"$(exit_counter "$LAB_DIR/analyzer.log" DT-ANA-EXIT active)"
