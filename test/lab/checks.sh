# shellcheck shell=bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# checks.sh - what the loss scenario tests (test/lab/test_loss_*.sh) share: one line per
# check, "N passed, M failed" at the end, reports fetched into the state dir, and jq
# helpers over the report JSON. Sourced after lab.sh; not a test itself (the test glob is
# test_*.sh).
#
#     . test/lab/lab.sh
#     . test/lab/checks.sh
#     checks_trap                      # lab_down and the summary line on exit
#     ...
#     rep=$(report_fetch "$id" name)   # $LAB_DIR/report-name.json
#     jq_true "$rep" "description" '.verdict.dropped == $n' --argjson n 10

# ok, not_ok, check, check_eq and the counters.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/check_core.sh"

# check_range DESC GOT LOW HIGH: LOW <= GOT <= HIGH (numbers, fractions allowed).
check_range() {
	if [[ $2 =~ ^-?[0-9]+(\.[0-9]+)?$ ]] &&
		awk -v g="$2" -v l="$3" -v h="$4" 'BEGIN { exit !(g >= l && g <= h) }'; then
		ok "$1"
	else
		not_ok "$1" "got '$2', want $3..$4"
	fi
}

# jq definitions every filter of jq_true and jq_val can use.
CHECKS_JQ_DEFS='
	def hopkey: "\(.node)/\(.ifname)/\(.hook)";
	def path: [.hops[] | hopkey];
	def req: .packets[] | select(.direction == "request");
	def rep: .packets[] | select(.direction == "reply");
	def row($n; $i; $h; $d): [.hops[]? | select(.node == $n and .ifname == $i and .hook == $h
		and .direction == $d)] | first;
	def lasthop: .hops[-1];
	def before_drop: .hops[-2];
	# a hop'"'"'s flow as seen there: its own "flow" when it differs from the packet'"'"'s
	# (after a NAT), else the packet'"'"'s; use as  . as $p | .hops[0] | hflow($p)
	def hflow($p): (.flow // $p.flow);
	# Copies (report schema 2, issue 13): a packet'"'"'s hops form a tree. .parent is the
	# index of the parent hop (null at the root), .branch "destination" or "copy",
	# .latency_ns the time since the parent, .copy_fate on the last hop of a copy branch.
	def hkey: {node, ifname, hook};
	# hop indices from the root to hop $i (at most as many as there are hops: no loop)
	def chain_to($i): .hops as $h | [limit($h | length; $i | recurse($h[.].parent // empty))] | reverse;
	# the destination branch, root first, as hop keys: the chain to the one destination
	# hop that is no destination hop'"'"'s parent (an error when there is not exactly one)
	def dpath: .hops as $h
		| [range(0; $h | length) | select($h[.].branch == "destination")] as $d
		| ($d - [$h[$d[]].parent]) as $leaf
		| if ($leaf | length) == 1 then [chain_to($leaf[0])[] | $h[.] | hopkey]
		  else error("\(.ip_id): destination leaves \($leaf)") end;
	# the last hops of the copy branches, and each copy branch root first as hop keys
	def copy_ends: [.hops[] | select(.copy_fate != null)];
	def copy_paths: . as $p | .hops as $h
		| [range(0; $h | length) | select($h[.].copy_fate != null) | . as $i | [$p | chain_to($i)[] | $h[.] | hopkey]];
	# every (parent, child) pair of the tree, in hop_latency'"'"'s terms
	def tree_pairs: .hops as $h
		| [$h[] | select(.parent != null) | {from: ($h[.parent] | hkey), to: hkey, branch}];
	# one root; every other hop has a parent among the hops and reaches the root; a
	# destination hop hangs on a destination hop; a copy branch ends with a copy_fate
	def tree_ok: .hops as $h | ($h | length) as $n
		| ([$h[] | select(.parent == null)] | length) == 1
		and all($h[]; .parent == null or (.parent | type == "number" and . >= 0 and . < $n))
		and all(range(0; $n); [limit($n + 1; recurse($h[.].parent // empty))] | length <= $n)
		and all($h[]; .branch == "destination" or .branch == "copy")
		and all($h[] | select(.branch == "destination" and .parent != null); $h[.parent].branch == "destination")
		and all($h[] | select(.parent == null); .branch == "destination")
		and all(range(0; $n); . as $i | $h[$i].branch != "copy" or $h[$i].copy_fate != null
			or any($h[]; .parent == $i and .branch == "copy"));
'
# Where the per-packet hops of a report are: .packets[].hops; the per-hop loss table is the
# top-level .hops (the report contract of issue 3).

# jq_true FILE DESC FILTER [JQ-ARGS...]: FILTER must print exactly true.
jq_true() {
	local file=$1 desc=$2 filter=$3 got
	shift 3
	got=$(jq -r "$@" "$CHECKS_JQ_DEFS $filter" "$file" 2>&1)
	if [[ $got == true ]]; then
		ok "$desc"
	else
		not_ok "$desc" "$(printf '%s' "$got" | tr '\n' ' ' | cut -c1-300)"
	fi
}

# jq_val FILE FILTER [JQ-ARGS...]: prints FILTER's (raw) value, "?" when jq fails.
jq_val() {
	local file=$1 filter=$2
	shift 2
	jq -r "$@" "$CHECKS_JQ_DEFS $filter" "$file" 2>/dev/null || echo '?'
}

# report_fetch ID NAME: writes the JSON report of task ID to $LAB_DIR/report-NAME.json
# (errors to .err) and prints the file's path. Every report-*.json is dumped when a check
# failed.
report_fetch() {
	local f=$LAB_DIR/report-$2.json
	lab_cli --json report "$1" >"$f" 2>"$LAB_DIR/report-$2.err"
	echo "$f"
}

# report_text ID NAME: the text report, into $LAB_DIR/report-NAME.txt (for the logs).
report_text() {
	lab_cli report -n 0 "$1" >"$LAB_DIR/report-$2.txt" 2>&1
}

# report_fetch_text ID NAME: report_fetch, then report_text: both reports of task ID into
# the state dir; prints the JSON file's path.
report_fetch_text() {
	report_fetch "$1" "$2"
	report_text "$1" "$2"
}

# check_verdict FILE NAME JUDGED DELIVERED DROPPED VANISHED: the verdict's counts, and
# nothing in flight any more.
check_verdict() {
	local f=$1 name=$2 got
	got=$(jq_val "$f" '.verdict | "\(.judged) \(.delivered) \(.dropped) \(.vanished) \(.in_flight)"')
	check_eq "$name: verdict judged/delivered/dropped/vanished/in_flight" "$got" "$3 $4 $5 $6 0"
}

# check_no_color NAME: capture NAME (started with the color filter) holds no packet.
check_no_color() {
	check_eq "$2" "$(lab_capture_count "$1")" 0
}

# IPv4 ids of the packets of capture NAME that match pcap FILTER, one a line, sorted.
capture_ip_ids() {
	lab_capture_read "$1" -v "$2" | sed -nE 's/.*\(tos [^,]*, ttl [0-9]+, id ([0-9]+),.*/\1/p' | sort -n
}

# nft_counter NS FAMILY TABLE CHAIN: the packets counted by the first counter of CHAIN.
nft_counter() {
	lab_in "$1" nft list chain "$2" "$3" "$4" 2>/dev/null |
		sed -nE 's/.*counter packets ([0-9]+) bytes.*/\1/p' | head -n 1
}

# The binomial tolerance: prints "LOW HIGH" for the count of successes in N trials of
# probability P, K standard deviations either side of the mean (clamped to 0..N).
binomial_bounds() {
	awk -v n="$1" -v p="$2" -v k="$3" 'BEGIN {
		m = n * p; s = sqrt(n * p * (1 - p)); lo = m - k * s; hi = m + k * s
		if (lo < 0) lo = 0
		if (hi > n) hi = n
		printf "%.1f %.1f\n", lo, hi }'
}

# exit_counter LOG TAG KEY: the value of KEY=N in the last TAG line of LOG (a daemon's
# counters at exit, e.g. exit_counter "$LAB_DIR/agent-h1.log" DT-AGENT-EXIT drops).
exit_counter() {
	sed -nE "s/.*$2:.*[ :]$3=([0-9]+).*/\1/p" "$1" 2>/dev/null | tail -n 1
}

# checks_dump: after a failed check, the reports and the daemons' logs (once).
CHECKS_DUMPED=0
checks_dump() {
	local f
	((CHECKS_FAILED > 0 && CHECKS_DUMPED == 0)) || return 0
	CHECKS_DUMPED=1
	for f in "${LAB_DIR:-/nonexistent}"/report-*.json; do
		[[ -e $f ]] || continue
		echo "--- ${f##*/}: verdict, per-hop table, unmatched, window"
		jq -c '{verdict, hops, unmatched, window_ms}' "$f" 2>/dev/null || head -c 2000 "$f"
		[[ -s ${f%.json}.err ]] && cat "${f%.json}.err"
		if [[ -s ${f%.json}.txt ]]; then
			echo "--- ${f##*/}: text report (first 50 lines)"
			head -n 50 "${f%.json}.txt"
		fi
	done
	lab_logs_tail 25
}

checks_finish() {
	checks_dump
	lab_down
	echo "$CHECKS_PASSED passed, $CHECKS_FAILED failed"
	((CHECKS_FAILED == 0 && CHECKS_PASSED > 0))
}

# checks_trap: the summary (and lab_down) on exit, also after an interruption.
checks_trap() {
	trap 'checks_finish; exit $?' EXIT
	trap 'not_ok "interrupted by SIGINT"; exit 130' INT
	trap 'not_ok "interrupted by SIGTERM"; exit 143' TERM
}

# check_up FAIL OK CMD...: runs CMD (its output as it comes); when it fails, a failed check
# FAIL and the end of the test (exit 1), else a passed check OK. For what the rest of a test
# cannot do without (the lab, a router).
check_up() {
	local fail=$1 okdesc=$2
	shift 2
	if ! "$@"; then
		not_ok "$fail"
		exit 1
	fi
	ok "$okdesc"
}

# checks_lab_up FAIL OK [LAB_UP-ARGS...]: checks_trap, then the lab (lab_up ARGS) with
# check_up: the test ends when it does not come up.
checks_lab_up() {
	local fail=$1 okdesc=$2
	shift 2
	checks_trap
	check_up "$fail" "$okdesc" lab_up "$@"
}

# window_lab_up OK: checks_lab_up for the default lab with the analyzer's window_ms
# $WINDOW_MS ("lab up (overlay, daemons, window_ms ...)" when it fails); OK names the
# passed check.
window_lab_up() {
	checks_lab_up "lab up (overlay, daemons, window_ms $WINDOW_MS)" "$1" --window-ms "$WINDOW_MS"
}

# checks_task VAR CREATE-DESC ARMED-DESC CREATE-ARGS...: a task (lab_task_create
# CREATE-ARGS) with a check that it was created (CREATE-DESC), the end of the test when it
# was not, and a check that it is armed (ARMED-DESC); its id goes into the variable VAR
# (and CHECKS_TASK). Shellcheck cannot see VAR assigned: a test says so where it first
# reads it (shellcheck disable=SC2154).
CHECKS_TASK=
checks_task() {
	local checks__var=$1 checks__create=$2 checks__armed=$3
	shift 3
	CHECKS_TASK=$(lab_task_create "$@")
	check "$checks__create" test -n "$CHECKS_TASK"
	[[ -n $CHECKS_TASK ]] || exit 1
	printf -v "$checks__var" '%s' "$CHECKS_TASK"
	check "$checks__armed" lab_task_wait_armed "$CHECKS_TASK"
}

# checks_ping_task INSTANCE: checks_task for the ping task of the requests from i1 to
# INSTANCE (i2, i31, ...), "create the ping task (icmp i1 -> INSTANCE, requests)" and
# "task armed"; sets task.
checks_ping_task() {
	checks_task task "create the ping task (icmp i1 -> $1, requests)" "task armed" \
		--src "$LAB_I1_IP" --dst "$(lab_instance_ip "$1")" --proto icmp --vni "$LAB_VNI"
	# shellcheck disable=SC2034 # for the tests
	task=$CHECKS_TASK
}

# ping_received NS DST COUNT [PING-OPTS...]: COUNT pings from NS to DST, 50 ms apart
# (PING-OPTS before DST, e.g. -e ID); prints how many were answered.
ping_received() {
	local ns=$1 dst=$2 n=$3
	shift 3
	lab_in "$ns" ping "$@" -c "$n" -i 0.05 -W 1 -q "$dst" 2>&1 | sed -nE 's/.* ([0-9]+) received.*/\1/p'
}

# nft_bridge_drop NS TABLE HOOK MATCH: a bridge table TABLE in NS whose chain HOOK (hook
# HOOK, priority -200: before br_netfilter's bridge hook at 0, so the rule applies whatever
# br_netfilter does) counts and drops what MATCH matches (nft_counter NS bridge TABLE HOOK
# reads the count).
nft_bridge_drop() {
	lab_in "$1" nft -f - <<-EOF
		table bridge $2 {
			chain $3 {
				type filter hook $3 priority -200; policy accept;
				$4 counter drop
			}
		}
	EOF
}

# checks_teardown_clean: after lab_down, no namespace of the prefix is left.
checks_teardown_clean() {
	local ns left=()
	checks_dump
	lab_down
	for ns in "${LAB_NAMESPACES_ALL[@]}"; do
		lab__ns_exists "$ns" && left+=("$ns")
	done
	check_eq "teardown leaves no namespace" "${left[*]}" ""
}

# ---------------------------------------------------------------------------------------
# The task service (issue 4): CLI calls whose exit status matters.

# run CMD...: runs CMD; sets OUT (its stdout), ERR (its stderr) and RC (its status).
run() {
	local e
	e=$(mktemp)
	OUT=$("$@" 2>"$e")
	RC=$?
	ERR=$(cat "$e")
	rm -f "$e"
}

# check_rc DESC WANT: the last run's status is WANT (its stderr/stdout on failure).
check_rc() {
	if [[ $RC == "$2" ]]; then
		ok "$1"
	else
		not_ok "$1" "exit $RC, want $2; stderr: $(printf '%s' "$ERR" | tr '\n' ' ' | cut -c1-200); stdout: $(printf '%s' "$OUT" | tr '\n' ' ' | cut -c1-200)"
	fi
}

# jq_is_true FILE FILTER [JQ-ARGS...]: true when FILTER prints exactly "true" (jq 1.6's -e
# exits 0 on an empty input, so never rely on jq -e alone).
jq_is_true() {
	local file=$1 filter=$2
	shift 2
	[[ $(jq -r "$@" "$filter" "$file" 2>/dev/null) == true ]]
}

# json_true DESC JSON FILTER [JQ-ARGS...]: like jq_true, on a JSON text instead of a file.
json_true() {
	local desc=$1 json=$2 filter=$3 got
	shift 3
	got=$(jq -r "$@" "$CHECKS_JQ_DEFS $filter" <<<"$json" 2>&1)
	if [[ $got == true ]]; then
		ok "$desc"
	else
		not_ok "$desc" "$(printf '%s' "${got:-empty input}" | tr '\n' ' ' | cut -c1-300)"
	fi
}

# task_json ID [TENANT]: the task as JSON (as the default tenant, or TENANT).
task_json() {
	if [[ -n ${2:-} ]]; then lab_cli_as "$2" --json task show "$1"; else lab_cli --json task show "$1"; fi
}

# CLI exit statuses (dyetrace --help, EXIT STATUS).
# shellcheck disable=SC2034 # for the tests that source this file
EXIT_FAILED=1
# shellcheck disable=SC2034
EXIT_INVALID=2
# shellcheck disable=SC2034
EXIT_NOT_FOUND=3
# shellcheck disable=SC2034
EXIT_REFUSED=4
# shellcheck disable=SC2034
EXIT_UNREACHABLE=5
# shellcheck disable=SC2034
EXIT_FULL=8

# ---------------------------------------------------------------------------------------
# Daemons and traffic, for the fault tests (test/lab/test_fault_*.sh).

# stop_daemon NAME [SIG]: stops background daemon NAME (SIGTERM by default) and waits up to
# 10 s (then SIGKILL). Sets STOP_RC (its exit status; "killed" for SIGKILL) and STOP_S
# (seconds it took). Call it from this shell (not in $(...)): only the parent learns a
# child's status.
stop_daemon() {
	local name=$1 sig=${2:-TERM} pid start
	STOP_RC='?' STOP_S='?'
	pid=$(lab_pid "$name") || return 1
	start=$(lab__now)
	kill -"$sig" "$pid" 2>/dev/null
	while lab__alive "$pid"; do
		if ! lab__elapsed_lt "$start" 10; then
			echo "# $name (pid $pid) still running 10 s after SIG$sig: SIGKILL; its log ends:"
			tail -n 5 "$LAB_DIR/$name.log" | sed 's/^/#   /'
			kill -KILL "$pid" 2>/dev/null
			sleep 0.2
			break
		fi
		sleep 0.02
	done
	STOP_S=$(awk -v s="$start" -v n="$(lab__now)" 'BEGIN { printf "%.1f", n - s }')
	STOP_RC=0
	wait "$pid" 2>/dev/null || STOP_RC=$?
	((STOP_RC == 137)) && STOP_RC=killed
	rm -f "$LAB_DIR/pids/$name.pid"
}

# check_stopped NAME [SIG]: stop_daemon, and a check that it exited with status 0.
check_stopped() {
	stop_daemon "$@"
	check_eq "$1 exits cleanly on SIG${2:-TERM} (status; took ${STOP_S}s)" "$STOP_RC" 0
}

# ping_count FILE: "TRANSMITTED RECEIVED" from ping's summary in FILE.
ping_count() {
	sed -nE 's/^([0-9]+) packets transmitted, ([0-9]+) received.*/\1 \2/p' "$1"
}

# udp_sink_up: something listens on UDP $UDP_DPORT in i2.
udp_sink_up() { [[ -n $(lab_in "$LAB_I2" ss -Hlun "sport = :$UDP_DPORT" 2>/dev/null) ]]; }

# fault_tasks PORT BUDGET: a UDP sink on PORT in i2 (so that i1 gets no ICMP errors back),
# then a ping task (i1 <-> i2, both directions) and a UDP task (i1 -> i2, any port) with
# BUDGET, both armed. Sets ping_task and udp_task; exits the test when one is missing.
fault_tasks() {
	UDP_DPORT=$1
	lab_bg udp-sink "$LAB_I2" socat -u "UDP-RECV:$1,reuseaddr" /dev/null
	for _ in $(seq 50); do udp_sink_up && break; sleep 0.1; done
	check "UDP sink listens in i2 (:$1; no ICMP errors back to i1)" udp_sink_up
	ping_task=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --proto icmp \
		--vni "$LAB_VNI" --direction both --budget "$2")
	check "create the ping task (icmp i1 <-> i2, both directions)" test -n "$ping_task"
	udp_task=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --proto udp \
		--vni "$LAB_VNI" --budget "$2")
	check "create the UDP task (udp i1 -> i2, any port)" test -n "$udp_task"
	[[ -n $ping_task && -n $udp_task ]] || exit 1
	check "ping task armed" lab_task_wait_armed "$ping_task"
	check "UDP task armed" lab_task_wait_armed "$udp_task"
}

# fault_traffic_start: the fault tests' traffic from i1 to i2 until fault_traffic_stop, in
# the background: pings every 10 ms (into $LAB_DIR/ping.out), and UDP in rounds of
# UDP_FLOWS flows (source ports 40001.., to UDP_DPORT) of UDP_ROUND datagrams each, 1 ms
# apart (how many were sent: $LAB_DIR/udp-sent.out, one line a round). Sets t0 (lab__now
# at the start), udp_pid and ping_pid.
fault_traffic_start() {
	local flows=() k
	for ((k = 1; k <= UDP_FLOWS; k++)); do flows+=("$((40000 + k)):$LAB_I2_IP:$UDP_DPORT:$UDP_ROUND"); done
	rm -f "$LAB_DIR/udp.stop" "$LAB_DIR/udp-sent.out"
	t0=$(lab__now)
	(
		while [[ ! -e $LAB_DIR/udp.stop ]]; do
			lab_udp_send "$LAB_I1" 1 "${flows[@]}" >>"$LAB_DIR/udp-sent.out" 2>&1 || break
		done
	) &
	udp_pid=$!
	ip netns exec "$LAB_I1" ping -i 0.01 -W 1 "$LAB_I2_IP" >"$LAB_DIR/ping.out" 2>&1 &
	ping_pid=$!
}

# fault_traffic_stop: ends fault_traffic_start's traffic and waits for it; sets t_end (its
# seconds).
fault_traffic_stop() {
	touch "$LAB_DIR/udp.stop"
	kill -INT "$ping_pid"
	wait "$ping_pid"
	wait "$udp_pid"
	# shellcheck disable=SC2034 # for the tests
	t_end=$(awk -v s="$t0" -v n="$(lab__now)" 'BEGIN { printf "%.1f", n - s }')
}

# check_fault_traffic WHAT: a check that every ping of fault_traffic_start was answered
# ("WHAT: N pings, all answered") and one that it sent UDP ("WHAT: N UDP datagrams"); sets
# pings and udp_sent.
check_fault_traffic() {
	local tx rx
	read -r tx rx < <(ping_count "$LAB_DIR/ping.out")
	pings=${tx:-0}
	check "$1: $pings pings, all answered" test "$pings" -gt 0 -a "$pings" == "${rx:-x}"
	udp_sent=$(awk '{ n += $1 } END { print n + 0 }' "$LAB_DIR/udp-sent.out")
	check_range "$1: $udp_sent UDP datagrams" "$udp_sent" 1 100000000
}

# check_fault_judged: checks that every packet of fault_traffic_start was judged (both
# directions of the pings, every colored UDP datagram; up to 30 s each); sets udp_colored.
check_fault_judged() {
	check "ping task: all $((2 * pings)) packets judged" lab_task_wait_judged "$ping_task" $((2 * pings)) 30
	udp_colored=$(lab_task_field "$udp_task" .colored)
	check "UDP task: all ${udp_colored:-?} colored packets judged" lab_task_wait_judged "$udp_task" "${udp_colored:-1}" 30
}

# fault_stop_reports: the final counters of a fault test: the agents stop first (nothing
# more to send), then the collector, each with a check that it exits cleanly; the reports
# of ping_task and udp_task while the analyzer still runs (rp, ru; the ping task's text
# too), then the analyzer, with a check of its status.
fault_stop_reports() {
	check_stopped agent-h1
	check_stopped agent-h2
	sleep 0.5
	check_stopped collector
	# shellcheck disable=SC2034 # for the tests
	rp=$(report_fetch "$ping_task" ping)
	# shellcheck disable=SC2034
	ru=$(report_fetch "$udp_task" udp)
	report_text "$ping_task" ping
	lab_analyzer_stop TERM
	check_eq "analyzer stopped cleanly (status)" "$LAB_ANALYZER_RC" 0
}

# fault_agents_accounting: after fault_stop_reports, each agent's exit counters (h1, h2):
# sampled = samples_sent, nothing lost, no bad reply, nothing queued or spooled (a check
# each). Fills A[HOST.KEY]
# and the sums sum_sampled, sum_sent, sum_batches, sum_colored, sum_resends.
fault_agents_accounting() {
	local h log key
	declare -gA A
	sum_sampled=0 sum_sent=0 sum_batches=0 sum_colored=0 sum_resends=0
	for h in h1 h2; do
		log=$LAB_DIR/agent-$h.log
		for key in sampled samples_sent batches_sent resends bad_replies colored queued spooled \
			lost_ring_full lost_queue_full lost_bad_record lost_rejected lost_spool_full; do
			A[$h.$key]=$(exit_counter "$log" DT-AGENT-EXIT "$key")
		done
		check_eq "$h: sampled = samples_sent; nothing lost (none rejected), no bad reply, nothing queued or spooled" \
			"${A[$h.sampled]:-?} ${A[$h.lost_ring_full]:-?} ${A[$h.lost_queue_full]:-?} ${A[$h.lost_bad_record]:-?} ${A[$h.lost_rejected]:-?} ${A[$h.lost_spool_full]:-?} ${A[$h.bad_replies]:-?} ${A[$h.queued]:-?} ${A[$h.spooled]:-?}" \
			"${A[$h.samples_sent]:-x} 0 0 0 0 0 0 0 0"
		sum_sampled=$((sum_sampled + ${A[$h.sampled]:-0}))
		sum_sent=$((sum_sent + ${A[$h.samples_sent]:-0}))
		sum_batches=$((sum_batches + ${A[$h.batches_sent]:-0}))
		sum_colored=$((sum_colored + ${A[$h.colored]:-0}))
		sum_resends=$((sum_resends + ${A[$h.resends]:-0}))
	done
	echo "# agents: sampled ${A[h1.sampled]} + ${A[h2.sampled]}; batches acknowledged ${A[h1.batches_sent]} + ${A[h2.batches_sent]}; resends ${A[h1.resends]} + ${A[h2.resends]}"
}

# fault_reports_accounting: after fault_agents_accounting, the reports rp and ru against
# the agents: hops = samples the data planes wrote, nothing counted lost; packets colored
# by the tasks = by the data planes; every ping and datagram delivered once with its 4 hops
# (REQ_PATH, REP_PATH).
fault_reports_accounting() {
	local hops_p hops_u
	hops_p=$(jq_val "$rp" '[.packets[].hops | length] | add // 0')
	hops_u=$(jq_val "$ru" '[.packets[].hops | length] | add // 0')
	echo "# reports: hops ${hops_p} (ping) + ${hops_u} (udp) = sampled ${sum_sampled}?"
	check_eq "INVARIANT: hops in the reports = samples the data planes wrote (nothing counted lost)" \
		"$((hops_p + hops_u)) $(jq_val "$rp" '[.lost[]] | add')" "$sum_sampled 0"
	check_eq "packets colored by the tasks = packets colored by the data planes" \
		"$(($(jq_val "$rp" '.task.colored // "?"') + $(jq_val "$ru" '.task.colored // "?"')))" "$sum_colored"
	check_verdict "$rp" "ping task" $((2 * pings)) $((2 * pings)) 0 0
	jq_true "$rp" "ping task: $pings requests and $pings replies, each with its 4 hops" \
		'([req] | length == $n) and ([rep] | length == $n) and all(req; path == $q) and all(rep; path == $p)' \
		--argjson n "$pings" --argjson q "$REQ_PATH" --argjson p "$REP_PATH"
	check_verdict "$ru" "UDP task" "${udp_colored:-?}" "${udp_colored:-?}" 0 0
	jq_true "$ru" "UDP task: every datagram with its 4 hops" 'all(.packets[]; path == $q)' --argjson q "$REQ_PATH"
	jq_true "$rp" "ping task: no packet listed twice (identity and first hop's time)" "$FAULT_ONCE"
	jq_true "$ru" "UDP task: no packet listed twice (identity and first hop's time)" "$FAULT_ONCE"
}
# A packet listed twice would have the same identity and first-hop timestamp.
FAULT_ONCE='[.packets[] | "\(.direction)/\(.ip_id)/\(.ident)/\(.hops[0].ts_ns)"] | (unique | length) == length'


# ---------------------------------------------------------------------------------------
# Overlays that copy packets (issue 13; test/lab/test_flood_*.sh). With --fdb flood each
# colored packet becomes one copy per remote VTEP; the report (schema 2) builds each
# packet's hops as a tree: the branch towards the destination decides its fate, every
# other branch is a bystander copy with a copy_fate (filtered, dropped, vanished,
# in-flight), counted in the top-level copies[] and never in the verdict.

# flood_lab_up OK: checks_lab_up for the flood lab: 3 hosts and gw, --fdb flood, window_ms
# $WINDOW_MS; OK names the passed check.
flood_lab_up() {
	checks_lab_up "lab up (3 hosts and gw, --fdb flood, window_ms $WINDOW_MS)" "$1" \
		--hosts 3 --fdb flood --gw --window-ms "$WINDOW_MS"
}

# flood_warm_up HOST...: an untraced ping i1 -> i31 (a check), and a check per HOST that
# its bridge learned i31's MAC behind vxlan0 from it (so that it discards the copies).
flood_warm_up() {
	check "warm-up ping i1 -> i31 (untraced)" lab_in "$LAB_I1" ping -c 1 -W 1 -q "$LAB_I31_IP"
	check_bystanders_know "i31's MAC" "$LAB_I31_MAC" "$@"
}

# copies_rows DIRECTION N NODE FATE [NODE FATE...]: the JSON array of check_copies, a row
# {node, direction, fate, count: N} per NODE.
copies_rows() {
	local dir=$1 n=$2 sep='' out='['
	shift 2
	while (($# >= 2)); do
		out+="$sep{\"node\":\"$1\",\"direction\":\"$dir\",\"fate\":\"$2\",\"count\":$n}"
		sep=,
		shift 2
	done
	echo "$out]"
}

# check_tree FILE NAME: every packet's hops form a sound tree (tree_ok), its copies count
# its copy branches, no latency is negative and only the root has none.
check_tree() {
	local f=$1 name=$2
	jq_true "$f" "$name: every packet's hops form one tree (one root, parents reach it, destination hops hang on destination hops, copy branches end with a copy_fate)" \
		'(.packets | length) > 0 and all(.packets[]; tree_ok)'
	jq_true "$f" "$name: every packet's copies = its copy branches (hops with a copy_fate)" \
		'all(.packets[]; .copies == (copy_ends | length))'
	jq_true "$f" "$name: no negative latency in any packet's hops; null at the root only" \
		'all(.packets[].hops[]; if .parent == null then .latency_ns == null else .latency_ns >= 0 end)'
	jq_true "$f" "$name: every drop hop carries its drop (reason, name, where)" \
		'all(.packets[].hops[] | select(.hook == "drop"); .drop.name != null and .drop.reason != null
			and (.drop.where | type == "string"))'
}

# check_hop_latency_tree FILE NAME: hop_latency holds the tree's pairs and nothing else:
# every row is a (parent, child) pair of the packets on its branch, and each row's count
# is the number of such pairs; none has a negative minimum. A pair seen in both directions
# (a bystander's uplink-in -> drop, with replies traced) is one row per direction when the
# rows carry a direction, else one row for both: never two rows that look the same.
check_hop_latency_tree() {
	local f=$1 name=$2
	jq_true "$f" "$name: every hop_latency row is a real (parent -> child) pair of its branch in the packets" \
		'([.packets[] | .direction as $d | tree_pairs[] | . + {direction: $d}]) as $real
		| all(.hop_latency[]; {from: (.from | hkey), to: (.to | hkey), branch} as $r
			| .direction as $d | any($real[]; del(.direction) == $r and ($d == null or .direction == $d)))'
	jq_true "$f" "$name: hop_latency = the packets' (parent -> child) pairs, per branch, with their exact counts" \
		'any(.hop_latency[]; has("direction")) as $bydir
		| ([.hop_latency[] | {from: (.from | hkey), to: (.to | hkey), branch, direction: (.direction // null), count}] | sort)
		== ([.packets[] | .direction as $d | tree_pairs[] | . + {direction: (if $bydir then $d else null end)}]
			| group_by(.) | map(.[0] + {count: length}) | sort)'
	jq_true "$f" "$name: no hop_latency row has a negative minimum" 'all(.hop_latency[]; .min_ns >= 0)'
}

# check_copies FILE NAME EXPECTED: the copies[] table, as {node, direction, fate, count}
# rows, is EXPECTED (a JSON array, any order); every dropped row has a reason.
check_copies() {
	local f=$1 name=$2 want=$3
	jq_true "$f" "$name: copies[] = $(jq -r 'map("\(.node) \(.direction) \(.fate) \(.count)") | join(", ")' <<<"$want")" \
		'[.copies[] | {node, direction, fate, count}] | sort == ($w | sort)' --argjson w "$want"
	jq_true "$f" "$name: copies[]: every row has node, ifname, hook; a dropped one its reason" \
		'all(.copies[]; (.node | type == "string") and (.ifname | type == "string") and (.hook | type == "string")
			and (.fate != "dropped" or (.reason | type == "string" and length > 0)))'
}

# check_loss_table_destination FILE NAME NODES: the per-hop loss table has rows of the
# destination branches only: none at the bystander NODES (a JSON array of node names).
check_loss_table_destination() {
	jq_true "$1" "$2: per-hop loss table: no row at a bystander ($(jq -r 'join(", ")' <<<"$3"))" \
		'all(.hops[]; .node as $n | $b | index($n) == null)' --argjson b "$3"
}

# check_samples_accounted NAME FILE...: stops every agent, then: the samples they took
# (their exit counters, "sampled") = the hops of every packet of the reports FILE... (one
# per task, fetched after the last traffic was judged) + the samples the last report
# counts as lost before analysis. Bystander copies are samples too: none may go missing
# from the trees. Sets AGENT_EXIT_LOGGED; see agent_exit.
check_samples_accounted() {
	local name=$1 host v sum=0 hops lost
	shift
	for host in "${LAB_HOSTS[@]}"; do
		lab_bg_stop "agent-$host"
		v=$(exit_counter "$LAB_DIR/agent-$host.log" DT-AGENT-EXIT sampled)
		sum=$((sum + ${v:-0}))
	done
	hops=$(jq -s '[.[].packets[].hops | length] | add // 0' "$@" 2>/dev/null)
	lost=$(jq '[.lost[]] | add // 0' "${@: -1}" 2>/dev/null)
	check_eq "$name: every sample the agents took is a hop of a reported packet or counted lost (hops + lost = sampled)" \
		"$((${hops:-0} + ${lost:-0}))" "$sum"
}

# agent_exit HOST KEY: a counter of HOST's agent at its exit (after check_samples_accounted
# or lab_bg_stop agent-HOST).
agent_exit() {
	exit_counter "$LAB_DIR/agent-$1.log" DT-AGENT-EXIT "$2"
}

# capture_vxlan_count NAME PATTERN: the VXLAN packets of capture NAME (an underlay
# capture, "udp port 4789") whose decoded inner packet matches PATTERN (grep -E), e.g.
# "IP 10.100.0.1 > 10.100.0.31: ICMP echo request".
capture_vxlan_count() {
	lab_capture_read "$1" | grep -cE "$2" || true
}

# bridge_knows HOST MAC: HOST's bridge br0 has learned MAC behind its vxlan0 (so it
# discards a copy for MAC that comes in on vxlan0, instead of flooding it to its ports).
bridge_knows() {
	local fdb
	fdb=$(bridge -n "$LAB_P-$1" fdb show br br0 2>&1)
	grep -qi "^$2 dev vxlan0 " <<<"$fdb" && return 0
	printf '%s fdb: %s\n' "$1" "$(grep -v permanent <<<"$fdb" | tr '\n' ';')"
	return 1
}

# check_bystanders_know WHAT MAC HOST...: a check per HOST that its bridge knows MAC (WHAT
# names it) behind vxlan0.
check_bystanders_know() {
	local what=$1 mac=$2 host
	shift 2
	for host in "$@"; do
		check "$host's bridge has learned $what ($mac) behind vxlan0: it will discard the copies" \
			bridge_knows "$host" "$mac"
	done
}
