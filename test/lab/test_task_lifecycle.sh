#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_task_lifecycle.sh - the task service's lifecycle and limits on the lab (issue 4):
#
#   budget    a task created with --budget 5 colors exactly 5 packets of 12 (in its
#             counts, in its report and on the wire), then ends DONE (budget-spent);
#             `task watch` follows it through its states and exits 0
#   duration  a task created with --duration 2 ends EXPIRED (duration) about 2 s after
#             its creation, and its packets are no longer colored; `task watch` exits 0
#   cancel    `task cancel` ends a task CANCELLED (cancelled) and disarms it: its packets
#             are no longer colored; its report stays; cancelling it again is harmless;
#             `task watch` exits 6; the same six-tuple may be traced again
#   rate      a task created with --rate 10 colors about 10 of 100 packets sent within a
#             second (the data plane's token bucket), and every colored one is delivered
#   no-host   a task whose source instance no node hosts (an unknown address, or a known
#             one in another VNI) ends FAILED (no-host) and is never armed; `task watch`
#             exits 1
#   limits    a budget, duration or rate above the configured maximum is refused (exit 4)
#             with a sentence naming the maximum
#   frozen    a task whose source's agent is stopped (SIGSTOP) ends FAILED (arm-timeout
#             or no-host, whichever the analyzer sees first); once the agent runs again, a
#             new task from the same source is armed
#   list      `task list` shows every task of the tenant, each in its final state
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtlc" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtlc}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-300}
COLOR='ip[6] & 0x80 != 0'
# The lab's maxima (lab.sh's LAB_LIMITS_DEFAULT).
BUDGET_MAX=100000
DURATION_MAX=3600
RATE_MAX=10000

created=()      # every task the default tenant created, for the list check
AGENT_STOPPED=  # the pid of a stopped agent, to continue it whatever happens

cleanup_stopped() {
	[[ -n $AGENT_STOPPED ]] && kill -CONT "$AGENT_STOPPED" 2>/dev/null
	AGENT_STOPPED=
	return 0
}
trap 'cleanup_stopped; checks_finish; exit $?' EXIT
trap 'not_ok "interrupted by SIGINT"; exit 130' INT
trap 'not_ok "interrupted by SIGTERM"; exit 143' TERM

# create NAME ARGS...: creates a task as the default tenant; sets ID (empty on failure).
create() {
	local name=$1
	shift
	ID=$(lab_task_create "$@")
	if [[ -n $ID ]]; then
		created+=("$ID")
		ok "$name: task $ID created ($*)"
	else
		not_ok "$name: create a task ($*)"
	fi
}

# field ID JQ: one field of the task, "?" when it cannot be read.
field() { lab_task_field "$1" "$2" 2>/dev/null || echo '?'; }

if ! lab_up --window-ms "$WINDOW_MS"; then
	not_ok "lab up (overlay, daemons, tenant lab, window_ms $WINDOW_MS)"
	exit 1
fi
ok "lab up: overlay, analyzer with its store, collector, agents h1 and h2"

run lab_cli --json task list
check_rc "task list answers" 0
check_eq "task list is empty before any task" "$(jq -c '.tasks' <<<"$OUT" 2>&1)" "[]"

# ---------------------------------------------------------------------------------------
# Budget: 5 of 12 pings colored, then DONE.
create budget --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --proto icmp --vni "$LAB_VNI" --budget 5
budget_task=$ID
if [[ -n $budget_task ]]; then
	t=$(task_json "$budget_task")
	json_true "budget: the task JSON names its tenant, limits and status" "$t" \
		'.tenant == "lab" and .limits.budget == 5 and (.limits.duration_s > 0)
		 and (.limits.rate_pps > 0) and (.status | type == "string")
		 and (.status_text | type == "string") and .ended_ns == null' 
	lab_cli --json task watch "$budget_task" >"$LAB_DIR/watch-budget.jsonl" 2>"$LAB_DIR/watch-budget.err" &
	watch_pid=$!
	check "budget: task armed" lab_task_wait_armed "$budget_task"
	check "capture: colored ICMP i1 -> i2 at h2 vxlan0" lab_capture_start budget-wire "$LAB_H2" vxlan0 \
		"$COLOR and icmp and src host $LAB_I1_IP"
	check "budget: 12 pings i1 -> i2, all answered" lab_in "$LAB_I1" ping -c 12 -i 0.05 -W 1 -q "$LAB_I2_IP"
	state=$(lab_task_wait_ended "$budget_task" 15)
	lab_capture_stop budget-wire
	check_eq "budget: the task ends done" "$state" "done"
	t=$(task_json "$budget_task")
	check_eq "budget: status budget-spent" "$(jq -r .status <<<"$t")" budget-spent
	check_eq "budget: colored exactly 5" "$(jq -r .colored <<<"$t")" 5
	check_eq "budget: delivered 5" "$(jq -r .delivered <<<"$t")" 5
	json_true "budget: armed_ns > 0, ended_ns >= armed_ns, a status sentence" "$t" \
		'.armed_ns > 0 and .ended_ns >= .armed_ns and (.status_text | length > 0)' 
	check_eq "budget: exactly 5 colored packets on the wire (h2 vxlan0)" "$(lab_capture_count budget-wire)" 5
	r=$(report_fetch "$budget_task" budget)
	jq_true "$r" "budget: the report lists 5 packets, every one delivered" \
		'(.packets | length == 5) and all(.packets[]; .fate == "delivered")'
	jq_true "$r" "budget: the report's task is done" '.task.state == "done"'
	# task watch: one line per change, ends with the final state, exit 0 for done.
	for _ in $(seq 50); do lab__alive "$watch_pid" || break; sleep 0.1; done
	if lab__alive "$watch_pid"; then
		not_ok "budget: task watch exits once the task is done" "still running"
		kill "$watch_pid" 2>/dev/null
		wait "$watch_pid" 2>/dev/null
	else
		rc=0
		wait "$watch_pid" || rc=$?
		RC=$rc OUT=$(cat "$LAB_DIR/watch-budget.jsonl") ERR=$(cat "$LAB_DIR/watch-budget.err")
		check_rc "budget: task watch exits 0 for done" 0
		states=$(jq -r '.state' "$LAB_DIR/watch-budget.jsonl" 2>/dev/null | tr '\n' ' ')
		if [[ $states =~ ^((new|ready|armed|running)\ )*done\ $ ]] &&
			awk -v s="$states" 'BEGIN { o["new"]=0; o["ready"]=1; o["armed"]=2; o["running"]=3; o["done"]=4
				n = split(s, a, " "); for (i = 2; i <= n; i++) if (o[a[i]] < o[a[i-1]]) exit 1 }'; then
			ok "budget: task watch printed the states in lifecycle order, ending with done ($states)"
		else
			not_ok "budget: task watch printed the states in lifecycle order, ending with done" "got '$states'"
		fi
	fi
fi

# ---------------------------------------------------------------------------------------
# Duration: EXPIRED about 2 s after creation, and disarmed.
create duration --src "$LAB_I2_IP" --dst "$LAB_I1_IP" --proto icmp --vni "$LAB_VNI" --duration 2
dur_task=$ID
if [[ -n $dur_task ]]; then
	check "duration: task armed" lab_task_wait_armed "$dur_task"
	check "duration: 3 pings i2 -> i1 while it runs" lab_in "$LAB_I2" ping -c 3 -i 0.1 -W 1 -q "$LAB_I1_IP"
	state=$(lab_task_wait_ended "$dur_task" 10)
	check_eq "duration: the task ends expired" "$state" expired
	t=$(task_json "$dur_task")
	check_eq "duration: status duration" "$(jq -r .status <<<"$t")" duration
	check_eq "duration: colored the 3 pings sent while it ran" "$(jq -r .colored <<<"$t")" 3
	secs=$(jq -r '(.ended_ns - .created_ns) / 1e9' <<<"$t" 2>/dev/null)
	check_range "duration: ended 2..4 s after its creation (got ${secs}s)" "$secs" 2 4
	sleep 1 # the nodes disarm it with their next control exchange
	check "capture: colored ICMP i2 -> i1 at h1 vxlan0" lab_capture_start dur-wire "$LAB_H1" vxlan0 \
		"$COLOR and icmp and src host $LAB_I2_IP"
	lab_in "$LAB_I2" ping -c 5 -i 0.05 -W 1 -q "$LAB_I1_IP" >/dev/null 2>&1
	sleep 0.3
	lab_capture_stop dur-wire
	check_eq "duration: a second after it expired, 5 more pings i2 -> i1 are not colored" "$(lab_capture_count dur-wire)" 0
	check_eq "duration: its counts did not move" "$(field "$dur_task" .colored)" 3
	run timeout 10 env DYETRACE_TOKEN="$LAB_TOKEN" "$LAB_BIN/dyetrace" -a "ipc://$LAB_DIR/api.sock" task watch "$dur_task"
	check_rc "duration: task watch of an expired task exits 0" 0
fi

# ---------------------------------------------------------------------------------------
# Cancel: CANCELLED and disarmed; the report stays; the tuple is free again.
create cancel --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport 40500 --dport 5500 --proto udp --vni "$LAB_VNI"
cancel_task=$ID
if [[ -n $cancel_task ]]; then
	check "cancel: task armed" lab_task_wait_armed "$cancel_task"
	check_eq "cancel: 3 datagrams i1:40500 -> i2:5500 sent" \
		"$(lab_udp_send "$LAB_I1" 20 "40500:$LAB_I2_IP:5500:3")" 3
	check "cancel: 3 colored and delivered before the cancel" lab_task_wait_counts "$cancel_task" 3 10
	check "capture: colored UDP to 5500 at h2 vxlan0" lab_capture_start cancel-wire "$LAB_H2" vxlan0 \
		"$COLOR and udp and dst port 5500"
	run lab_cli --json task cancel "$cancel_task"
	t_cancel=$(date +%s.%N)
	check_rc "cancel: task cancel exits 0" 0
	check_eq "cancel: the reply shows the task cancelled" "$(jq -r '.state + " " + .status' <<<"$OUT" 2>&1)" \
		"cancelled cancelled"
	# The nodes disarm it with their next control exchange (heartbeats): packets sent
	# right after the reply may still be colored; none a second later.
	check_eq "cancel: 75 more datagrams over 1.5 s after the cancel" \
		"$(lab_udp_send "$LAB_I1" 20 "40500:$LAB_I2_IP:5500:75")" 75
	sleep 0.2
	lab_capture_stop cancel-wire
	n=$(lab_capture_count cancel-wire)
	last=$(lab_capture_read cancel-wire -tt | awk -v t="$t_cancel" 'END { if (NR) printf "%.3f", $1 - t; else print 0 }')
	check_range "cancel: disarmed within 1 s of the reply ($n colored after it, the last ${last}s after)" "$last" -1 1
	t=$(task_json "$cancel_task")
	check_eq "cancel: state cancelled, colored still 3" "$(jq -r '"\(.state) \(.colored)"' <<<"$t")" "cancelled 3"
	json_true "cancel: ended_ns set, a status sentence" "$t" \
		'(.ended_ns | type == "number") and .ended_ns > 0 and (.status_text | length > 0)' 
	r=$(report_fetch "$cancel_task" cancel)
	jq_true "$r" "cancel: its report still lists the 3 packets" '(.packets | length == 3)'
	run lab_cli task cancel "$cancel_task"
	check_rc "cancel: cancelling it again is harmless (exit 0)" 0
	run timeout 10 env DYETRACE_TOKEN="$LAB_TOKEN" "$LAB_BIN/dyetrace" -a "ipc://$LAB_DIR/api.sock" task watch "$cancel_task"
	check_rc "cancel: task watch of a cancelled task exits 6" 6
	create "cancel: the same six-tuple again" --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport 40500 \
		--dport 5500 --proto udp --vni "$LAB_VNI"
	[[ -n $ID ]] && lab_cli task cancel "$ID" >/dev/null 2>&1
fi

# ---------------------------------------------------------------------------------------
# Rate: about 10 of 100 datagrams in a second colored.
create rate --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport 40600 --dport 5600 --proto udp --vni "$LAB_VNI" --rate 10
rate_task=$ID
if [[ -n $rate_task ]]; then
	check "rate: task armed" lab_task_wait_armed "$rate_task"
	check_eq "rate: 100 datagrams i1:40600 -> i2:5600 in about a second" \
		"$(lab_udp_send "$LAB_I1" 10 "40600:$LAB_I2_IP:5600:100")" 100
	lab_task_wait_settled "$rate_task" 1 10 || true
	t=$(task_json "$rate_task")
	colored=$(jq -r .colored <<<"$t")
	check_range "rate: colored $colored of 100 (10 pps for ~1 s, plus the bucket's burst)" "$colored" 5 25
	check_eq "rate: every colored packet delivered" "$(jq -r .delivered <<<"$t")" "$colored"
	check_eq "rate: the task is still active" "$(jq -r '.state | IN("armed", "running")' <<<"$t")" true
	lab_cli task cancel "$rate_task" >/dev/null 2>&1
fi

# ---------------------------------------------------------------------------------------
# No host: FAILED, never armed.
create no-host --src 10.100.0.77 --dst "$LAB_I2_IP" --proto icmp --vni "$LAB_VNI"
nohost_task=$ID
create "no-host (known address, other VNI)" --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --proto icmp --vni 200
nohost_vni_task=$ID
for id in $nohost_task $nohost_vni_task; do
	state=$(lab_task_wait_ended "$id" 15)
	t=$(task_json "$id")
	check_eq "no-host: task $id ($(jq -r '.flow | "\(.src) vni \(.vni)"' <<<"$t")) ends failed, status no-host" \
		"$state $(jq -r .status <<<"$t")" "failed no-host"
	json_true "no-host: task $id was never armed (armed_ns null), and says why" "$t" \
		'.armed_ns == null and (.status_text | length > 0)' 
	echo "# task $id: $(jq -r .status_text <<<"$t")"
done
if [[ -n $nohost_task ]]; then
	run timeout 10 env DYETRACE_TOKEN="$LAB_TOKEN" "$LAB_BIN/dyetrace" -a "ipc://$LAB_DIR/api.sock" task watch "$nohost_task"
	check_rc "no-host: task watch exits 1 for a failed task" 1
fi

# ---------------------------------------------------------------------------------------
# Limits above the maxima.
for lim in "budget $BUDGET_MAX" "duration $DURATION_MAX" "rate $RATE_MAX"; do
	# shellcheck disable=SC2086 # two words on purpose
	set -- $lim
	run lab_cli task create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport 40700 --dport 5700 --proto udp \
		--vni "$LAB_VNI" "--$1" $(($2 + 1))
	if [[ $RC == "$EXIT_REFUSED" && $ERR == *"$2"* ]]; then
		ok "limits: --$1 $(($2 + 1)) refused (exit 4) naming the maximum $2 ($ERR)"
	else
		not_ok "limits: --$1 $(($2 + 1)) refused (exit 4) naming the maximum $2" "exit $RC: $ERR $OUT"
	fi
done

# ---------------------------------------------------------------------------------------
# A frozen agent: the task fails with a clear status; the agent recovers.
h2_pid=$(lab_pid agent-h2)
if kill -STOP "$h2_pid"; then
	AGENT_STOPPED=$h2_pid
	ok "frozen: agent h2 stopped (SIGSTOP pid $h2_pid)"
	create frozen --src "$LAB_I2_IP" --dst "$LAB_I1_IP" --sport 40800 --dport 5800 --proto udp --vni "$LAB_VNI"
	frozen_task=$ID
	if [[ -n $frozen_task ]]; then
		state=$(lab_task_wait_ended "$frozen_task" 20)
		t=$(task_json "$frozen_task")
		st=$(jq -r .status <<<"$t")
		if [[ $state == failed && ($st == arm-timeout || $st == no-host) ]]; then
			ok "frozen: the task ends failed, status $st"
		else
			not_ok "frozen: the task ends failed, status arm-timeout or no-host" "state $state, status $st"
		fi
		echo "# task $frozen_task: $(jq -r .status_text <<<"$t")"
	fi
	kill -CONT "$h2_pid"
	AGENT_STOPPED=
	create "frozen: after SIGCONT" --src "$LAB_I2_IP" --dst "$LAB_I1_IP" --sport 40801 --dport 5801 --proto udp --vni "$LAB_VNI"
	[[ -n $ID ]] && check "frozen: a new task from i2 is armed once agent h2 runs again" lab_task_wait_armed "$ID" 15
	[[ -n $ID ]] && lab_cli task cancel "$ID" >/dev/null 2>&1
else
	not_ok "frozen: stop agent h2 (pid $h2_pid)"
fi

# ---------------------------------------------------------------------------------------
# The tenant's list: every task it created, each ended.
run lab_cli --json task list
check_rc "list: task list exits 0" 0
want=$(printf '%s\n' "${created[@]}" | sort -n | tr '\n' ' ')
check_eq "list: shows exactly the tenant's ${#created[@]} tasks" \
	"$(jq -r '.tasks[].id' <<<"$OUT" 2>/dev/null | sort -n | tr '\n' ' ')" "$want"
check_eq "list: every one ended" \
	"$(jq -r '[.tasks[] | select(.state | IN("done","expired","cancelled","failed") | not) | .id] | join(" ")' <<<"$OUT" 2>&1)" ""
run lab_cli task list
check_rc "list: text task list exits 0" 0
lines=$(grep -c . <<<"$OUT")
check_range "list: text task list has a line per task ($lines lines)" "$lines" "${#created[@]}" $((${#created[@]} + 5))

checks_teardown_clean
