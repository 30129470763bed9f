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

CHECKS_PASSED=0
CHECKS_FAILED=0

ok() {
	CHECKS_PASSED=$((CHECKS_PASSED + 1))
	printf 'ok   - %s\n' "$1"
}

not_ok() {
	CHECKS_FAILED=$((CHECKS_FAILED + 1))
	printf 'FAIL - %s%s\n' "$1" "${2:+ ($2)}"
}

# check DESC CMD...: one check; CMD's output is shown on failure.
check() {
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$desc"
	else
		not_ok "$desc" "$(printf '%s' "$out" | tr '\n' ' ' | cut -c1-300)"
	fi
}

# check_eq DESC GOT WANT
check_eq() {
	if [[ $2 == "$3" ]]; then ok "$1"; else not_ok "$1" "got '$2', want '$3'"; fi
}

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
