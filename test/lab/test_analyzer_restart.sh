#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_analyzer_restart.sh - the task store (issue 4): an analyzer restart loses no
# finished report, on SIGTERM and on SIGKILL.
#
#   1. Finished tasks, one per way to end: DONE (--budget 5), CANCELLED, EXPIRED
#      (--duration 8), FAILED (no-host), and a cancelled task of tenant t1; a running task
#      R1 with 5 packets judged.
#   2. SIGTERM, 2.5 s down, start again: the analyzer stopped with status 0; every
#      finished task and its report are byte for byte what they were (JSON), each tenant's
#      list is the same and tenants still see only their own; R1 is resumed (armed again,
#      its 5 packets kept, 5 more counted after the restart) or ended with a clear status;
#      R3, whose 2 s ran out while the analyzer was down, is expired with a sentence; a
#      new task gets a new id.
#   3. A task finished (DONE) just before a SIGKILL, a running task R2, 3 packets of R2 sent
#      while the analyzer is down: after the restart the finished reports are identical
#      again (nothing committed is lost in a crash), and R2, when resumed, counts all its
#      packets, those sent while the analyzer was down included (the collector keeps what
#      the analyzer did not acknowledge).
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtrs" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtrs}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-300}

checks_lab_up "lab up (overlay, daemons, tenants lab, t1, t2, window_ms $WINDOW_MS)" \
	"lab up: overlay, analyzer with its store in $LAB_DIR/analyzer-store, tenants lab, t1, t2" --window-ms "$WINDOW_MS" --tenants 2

declare -A OWNER=() # task id -> tenant, for the finished tasks
finished=()
max_id=0

# snapshot TAG: every finished task's JSON and report, canonical (jq -S), into
# $LAB_DIR/snap-TAG/ID.{task,report}.json; and each tenant's list.
snapshot() {
	local d=$LAB_DIR/snap-$1 id t
	mkdir -p "$d"
	for id in "${finished[@]}"; do
		lab_cli_as "${OWNER[$id]}" --json task show "$id" 2>&1 | jq -S . >"$d/$id.task.json" 2>&1
		lab_cli_as "${OWNER[$id]}" --json report "$id" 2>&1 | jq -S . >"$d/$id.report.json" 2>&1
	done
	local ids
	ids=$(printf '%s\n' "${finished[@]}" | jq -s -c .)
	for t in lab t1 t2; do
		lab_cli_as "$t" --json task list 2>&1 |
			jq -S --argjson ids "$ids" '[.tasks[] | select(.id | IN($ids[]))] | sort_by(.id)' \
				>"$d/list-$t.json" 2>&1
	done
}

# compare A B WHAT: the snapshots A and B are identical, file by file.
compare() {
	local a=$LAB_DIR/snap-$1 b=$LAB_DIR/snap-$2 id diffs=()
	for id in "${finished[@]}"; do
		[[ -e $a/$id.task.json ]] || continue
		cmp -s "$a/$id.task.json" "$b/$id.task.json" || diffs+=("task $id")
		cmp -s "$a/$id.report.json" "$b/$id.report.json" || diffs+=("report $id")
	done
	check_eq "$3: every finished task and report identical (${#finished[@]} tasks)" "${diffs[*]}" ""
	for id in "${finished[@]}"; do
		if [[ -e $a/$id.task.json ]] && ! cmp -s "$a/$id.report.json" "$b/$id.report.json"; then
			echo "# diff of report $id:"
			diff "$a/$id.report.json" "$b/$id.report.json" | head -n 20 | sed 's/^/#   /'
		fi
		if [[ -e $a/$id.task.json ]] && ! cmp -s "$a/$id.task.json" "$b/$id.task.json"; then
			echo "# diff of task $id:"
			diff "$a/$id.task.json" "$b/$id.task.json" | head -n 20 | sed 's/^/#   /'
		fi
	done
	for t in lab t1 t2; do
		check "$3: tenant $t lists the same finished tasks" cmp "$a/list-$t.json" "$b/list-$t.json"
	done
}

# finish_as TENANT ID STATE: records a finished task once it reached STATE.
finished_as() {
	local t=$1 id=$2 want=$3 state
	state=$(lab_as "$t" lab_task_wait_ended "$id" 15)
	check_eq "task $id ($t) ends $want" "$state" "$want"
	OWNER[$id]=$t
	finished+=("$id")
	((id > max_id)) && max_id=$id
}

# create TENANT ARGS...: sets ID.
create() {
	local t=$1
	shift
	ID=$(lab_as "$t" lab_task_create "$@")
	if [[ -n $ID ]]; then
		((ID > max_id)) && max_id=$ID
		ok "$t: task $ID created ($*)"
	else
		not_ok "$t: create a task ($*)"
	fi
}

# resumed NAME ID SENT MORE-FLOW: after a restart, a task that ran before is either active
# again (status "restarted" or "ok") and then counts every packet, before, during and
# after the restart; or ended with a clear status, keeping the packets it had (it then
# joins the finished tasks). Sets SENT to the packets it now holds, RESUMED to 1 or 0.
resumed() {
	local name=$1 id=$2 sent=$3 flow=$4 t state st text
	RESUMED=0
	t=$(task_json "$id")
	state=$(jq -r .state <<<"$t" 2>/dev/null) st=$(jq -r .status <<<"$t" 2>/dev/null)
	text=$(jq -r .status_text <<<"$t" 2>/dev/null)
	echo "# $name (task $id) after the restart: $state, status $st: $text"
	case $state in
	new | ready | armed | running)
		ok "$name: resumed ($state, status $st)"
		check "$name: armed again after the restart" lab_task_wait_armed "$id" 15
		check_eq "$name: 5 more datagrams after the restart" "$(lab_udp_send "$LAB_I1" 20 "$flow:5")" 5
		sent=$((sent + 5))
		check "$name: every packet counted, before and after the restart ($sent)" \
			lab_task_wait_judged "$id" "$sent" 15
		r=$(report_fetch "$id" "$name")
		jq_true "$r" "$name: its report lists exactly the $sent packets, all delivered" \
			'(.packets | length == $n) and all(.packets[]; .fate == "delivered")
				and .task.colored == $n' --argjson n "$sent"
		RESUMED=1
		;;
	done | expired | cancelled | failed)
		if [[ -n $text && $st != ok ]]; then
			ok "$name: ended $state with a clear status ($st: $text)"
		else
			not_ok "$name: ended $state with a clear status" "status '$st', text '$text'"
		fi
		r=$(report_fetch "$id" "$name")
		jq_true "$r" "$name: its report keeps the $sent packets counted before the restart" \
			'(.packets | length >= $n)' --argjson n "$sent"
		OWNER[$id]=lab
		finished+=("$id")
		;;
	*) not_ok "$name: readable after the restart" "state '$state': $t" ;;
	esac
	SENT=$sent
}

# ---------------------------------------------------------------------------------------
# 1. Finished tasks, and a running one.
create lab --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --proto icmp --vni "$LAB_VNI" --budget 5
done_task=$ID
create lab --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport 41100 --dport 6100 --proto udp --vni "$LAB_VNI"
cancel_task=$ID
create lab --src "$LAB_I2_IP" --dst "$LAB_I1_IP" --sport 41101 --dport 6101 --proto udp --vni "$LAB_VNI" --duration 8
expire_task=$ID
create lab --src 10.100.0.77 --dst "$LAB_I2_IP" --proto icmp --vni "$LAB_VNI"
fail_task=$ID
create t1 --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport 41102 --dport 6102 --proto udp --vni "$LAB_VNI"
t1_task=$ID
create lab --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport 41200 --dport 6200 --proto udp --vni "$LAB_VNI"
r1=$ID
for id in "$done_task" "$cancel_task" "$expire_task" "$r1"; do
	[[ -n $id ]] && check "task $id armed" lab_task_wait_armed "$id"
done
[[ -n $t1_task ]] && check "task $t1_task (t1) armed" lab_as t1 lab_task_wait_armed "$t1_task"

# The expiring task's datagrams first: it lives 8 s from its creation (its end is waited
# for below, up to 15 s), and on a loaded machine arming the others, the pings and the
# other datagrams could take seconds.
check_eq "3 datagrams of the expiring task" "$(lab_udp_send "$LAB_I2" 20 "41101:$LAB_I1_IP:6101:3")" 3
check "8 pings i1 -> i2" lab_in "$LAB_I1" ping -c 8 -i 0.05 -W 1 -q "$LAB_I2_IP"
check_eq "datagrams of the cancel, t1 and R1 tasks (4, 3, 5)" \
	"$(lab_udp_send "$LAB_I1" 20 "41100:$LAB_I2_IP:6100:4" "41102:$LAB_I2_IP:6102:3" "41200:$LAB_I2_IP:6200:5")" 12
check "cancel task: 4 packets judged" lab_task_wait_judged "$cancel_task" 4
check "t1's task: 3 packets judged" lab_as t1 lab_task_wait_judged "$t1_task" 3
check "R1: 5 packets judged" lab_task_wait_judged "$r1" 5
check "cancel the cancel task" lab_cli task cancel "$cancel_task"
check "t1 cancels its task" lab_cli_as t1 task cancel "$t1_task"
finished_as lab "$done_task" "done"
finished_as lab "$cancel_task" cancelled
finished_as lab "$expire_task" expired
finished_as lab "$fail_task" failed
finished_as t1 "$t1_task" cancelled
snapshot before
check "the finished reports hold their packets (5, 4, 3, 0, 3)" bash -c '
	d=$1; set -- "$2:5" "$3:4" "$4:3" "$5:0" "$6:3"
	for x; do n=$(jq ".packets | length" "$d/${x%:*}.report.json") || exit 1
		[[ $n == "${x#*:}" ]] || { echo "task ${x%:*}: $n packets"; exit 1; }; done' _ \
	"$LAB_DIR/snap-before" "$done_task" "$cancel_task" "$expire_task" "$fail_task" "$t1_task"

# ---------------------------------------------------------------------------------------
# 2. SIGTERM.
# R3: its duration runs out while the analyzer is down.
create lab --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport 41210 --dport 6210 --proto udp --vni "$LAB_VNI" --duration 2
r3=$ID
[[ -n $r3 ]] && check "R3 (--duration 2) armed" lab_task_wait_armed "$r3"
# (lab_analyzer_* run in this shell, not in check's $(...): the analyzer is its child.)
if lab_analyzer_stop TERM; then
	ok "analyzer stopped by SIGTERM (exit status 0)"
else
	not_ok "analyzer stopped by SIGTERM (exit status 0)" "status ${LAB_ANALYZER_RC:-?}"
fi
sleep 2.5 # R3's duration runs out meanwhile
if lab_analyzer_start; then ok "analyzer started again (API answers)"; else not_ok "analyzer started again"; fi
snapshot term
compare before term "after SIGTERM"
run lab_cli_as t2 --json task show "$t1_task"
check_rc "after SIGTERM: t2 still cannot see t1's task" "$EXIT_NOT_FOUND"
run lab_cli --json task show "$t1_task"
check_rc "after SIGTERM: the default tenant still cannot see t1's task" "$EXIT_NOT_FOUND"
resumed R1 "$r1" 5 "41200:$LAB_I2_IP:6200"
r1_sent=$SENT r1_resumed=$RESUMED
if [[ -n $r3 ]]; then
	state=$(lab_task_wait_ended "$r3" 5)
	t=$(task_json "$r3")
	echo "# R3 (task $r3) after the restart: $state, status $(jq -r .status <<<"$t"): $(jq -r .status_text <<<"$t")"
	json_true "R3: expired while the analyzer was down: ended expired, with a sentence, 2 s or more after its creation" "$t" \
		'.state == "expired" and (.status_text | length > 0) and (.ended_ns - .created_ns) >= 2e9'
fi
prev=$max_id
create lab --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport 41300 --dport 6300 --proto udp --vni "$LAB_VNI"
if [[ -n $ID ]]; then
	if ((ID > prev)); then
		ok "after SIGTERM: a new task gets a new id ($ID > $prev)"
	else
		not_ok "after SIGTERM: a new task gets a new id" "got $ID, ids so far up to $prev"
	fi
	lab_cli task cancel "$ID" >/dev/null 2>&1
fi

# ---------------------------------------------------------------------------------------
# 3. SIGKILL, right after a task finished, with a running task and packets sent while the
# analyzer is down.
create lab --src "$LAB_I2_IP" --dst "$LAB_I1_IP" --proto icmp --vni "$LAB_VNI" --budget 5
done2=$ID
create lab --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport 41400 --dport 6400 --proto udp --vni "$LAB_VNI"
r2=$ID
[[ -n $done2 ]] && check "task $done2 armed" lab_task_wait_armed "$done2"
[[ -n $r2 ]] && check "R2 armed" lab_task_wait_armed "$r2"
check "6 pings i2 -> i1" lab_in "$LAB_I2" ping -c 6 -i 0.05 -W 1 -q "$LAB_I1_IP"
check_eq "R2: 5 datagrams" "$(lab_udp_send "$LAB_I1" 20 "41400:$LAB_I2_IP:6400:5")" 5
check "R2: 5 packets judged" lab_task_wait_judged "$r2" 5
finished_as lab "$done2" "done"
snapshot before-kill
if lab_analyzer_stop KILL; then ok "analyzer killed (SIGKILL, status $LAB_ANALYZER_RC)"; else not_ok "analyzer killed (SIGKILL)"; fi
check_eq "R2: 3 datagrams while the analyzer is down" "$(lab_udp_send "$LAB_I1" 20 "41400:$LAB_I2_IP:6400:3")" 3
sleep 0.5
if lab_analyzer_start; then ok "analyzer started again after SIGKILL (API answers)"; else not_ok "analyzer started again after SIGKILL"; fi
snapshot kill
compare before-kill kill "after SIGKILL"
resumed R2 "$r2" 8 "41400:$LAB_I2_IP:6400"
((r1_resumed)) && resumed "R1 (after SIGKILL)" "$r1" "$r1_sent" "41200:$LAB_I2_IP:6200"
prev=$max_id
create lab --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport 41500 --dport 6500 --proto udp --vni "$LAB_VNI"
if [[ -n $ID ]]; then
	if ((ID > prev)); then
		ok "after SIGKILL: a new task gets a new id ($ID > $prev)"
	else
		not_ok "after SIGKILL: a new task gets a new id" "got $ID, ids so far up to $prev"
	fi
fi
check "the analyzer logged its restart from the store" grep -qiE 'store|restor|resum|reload' "$LAB_DIR/analyzer.log"

checks_teardown_clean
