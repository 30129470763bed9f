#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_arm_failed.sh - ARMED means applied (issue 22), on the 3-host lab with h1's agent
# configured with a task map of 3 keys (task_map_entries = 3):
#
#   fits      three tasks that start at i1 (h1) are created and armed; h1's agent reports
#             its map's size (metrics: dyetrace_agent_bpf_map_max_entries 3)
#   refused   a fourth and a fifth task that start at i1 (one of them tracing both
#             directions) are refused at creation: exit 8 (status "full"), a sentence that
#             names h1 and its task map; no task is created (task list)
#   room      cancelling a task makes room: a new task from i1 is armed (the agent disarms
#             the cancelled key before arming the new one, also when both arrive in one
#             control set)
#   behind    `bpftool map update` fills h1's task map behind the agent's back (the
#             analyzer still counts 2 of 3 keys): the next task from i1 is accepted, its
#             key cannot be armed, and the task ends failed, status arm-failed, with a
#             sentence naming h1 and the full map; it is never shown armed (task watch
#             follows every state it takes; armed_ns stays null) and `task watch` exits 1;
#             the agent logs DT-AGENT-ARM; the key written behind its back is gone after
#             that apply, and a new task from i1 is armed again
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtaf" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtaf}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

MAP=3
I31_IP=10.100.0.31
# A key nobody traces (10.99.0.1 -> 10.99.0.2 icmp, VNI 100), and a value, as dt_tasks
# holds them (struct dt_tuple, struct dt_task_val: bpf/dt_sample.h).
JUNK_KEY=(0a 63 00 01 0a 63 00 02 00 00 00 00 64 00 00 00 01 00 00 00)
JUNK_VAL=(ff ff 00 00 00 00 00 00 00 00 00 00 00 00 00 00)

checks_lab_up "lab up (3 hosts)" "lab up: 3 hosts" --hosts 3

# h1's agent again, with a small task map.
sed -i "s|^node = \"h1\";|node = \"h1\";\ntask_map_entries = $MAP;   # test_arm_failed.sh|" "$LAB_DIR/h1.conf"
lab_bg_stop agent-h1
check_up "h1's agent restarted with task_map_entries = $MAP" \
	"h1's agent restarted with task_map_entries = $MAP" lab_agent_start h1

# map_max: h1's agent's task map size, from its metrics.
map_max() {
	lab_metrics_scrape agent-h1 2>/dev/null |
		sed -nE 's/^dyetrace_agent_bpf_map_max_entries\{map="dt_tasks"\} ([0-9]+)$/\1/p'
}
check_eq "h1's agent has a task map of $MAP keys (metrics)" "$(map_max)" "$MAP"
# Its node state reaches the analyzer with its next heartbeat.
sleep 1

# ---------------------------------------------------------------------------------------
# Three keys fit.
ids=()
for dst in "$LAB_I2_IP" "$I31_IP" "$LAB_I2_IP:udp"; do
	if [[ $dst == *:udp ]]; then
		args=(--src "$LAB_I1_IP" --sport 4000 --dst "${dst%:udp}" --dport 5000 --proto udp)
	else
		args=(--src "$LAB_I1_IP" --dst "$dst" --proto icmp)
	fi
	id=$(lab_task_create "${args[@]}" --vni "$LAB_VNI")
	check "fits: task ${#ids[@]} of $MAP created (${args[*]})" test -n "$id"
	[[ -n $id ]] || exit 1
	check "fits: task $id armed" lab_task_wait_armed "$id"
	ids+=("$id")
done

# ---------------------------------------------------------------------------------------
# The next ones do not fit: refused at creation, naming h1.
before=$(lab_cli --json task list | jq '.tasks | length')
run lab_cli --json task create --src "$LAB_I1_IP" --sport 4001 --dst "$LAB_I2_IP" --dport 5000 \
	--proto udp --vni "$LAB_VNI"
check_rc "refused: a fourth task from i1 exits $EXIT_FULL (no room)" "$EXIT_FULL"
json_true "refused: status full, a sentence naming h1's task map ($OUT)" "$OUT" \
	'.error.status == "full" and (.error.message | test("no room on node h1, the first hop of the requests: its task map holds 3 keys, active tasks use 3 and this task needs 1"))'
run lab_cli task create --src "$LAB_I1_IP" --dst "$I31_IP" --sport 4002 --dport 5000 --proto tcp \
	--vni "$LAB_VNI" --direction both
check_rc "refused: a task of both directions from i1 exits $EXIT_FULL" "$EXIT_FULL"
check "refused: the text error names h1 ($ERR)" grep -q "dyetrace: no room on node h1" <<<"$ERR"
check_eq "refused: no task was created (task list)" \
	"$(lab_cli --json task list | jq '.tasks | length')" "$before"

# ---------------------------------------------------------------------------------------
# Cancelling one makes room at once. h1's agent is stopped meanwhile, so that it gets the
# cancel and the new task in one control set: it must disarm the old key before it arms
# the new one, in a map that holds 3.
AGENT_PID=$(lab_pid agent-h1)
applies=$(grep -c 'DT-AGENT-ARMED:' "$LAB_DIR/agent-h1.log")
kill -STOP "$AGENT_PID"
trap 'kill -CONT "$AGENT_PID" 2>/dev/null; checks_finish; exit $?' EXIT
run lab_cli task cancel "${ids[2]}"
check_rc "room: task ${ids[2]} cancelled" 0
id=$(lab_task_create --src "$LAB_I1_IP" --sport 4003 --dst "$LAB_I2_IP" --dport 5000 \
	--proto udp --vni "$LAB_VNI")
# The new task is in a control set once the analyzer waits for h1 to apply it; a second
# later (five of the collector's heartbeats) the collector holds that set too, so that h1
# gets both changes at once when it wakes up, however loaded the machine.
for _ in $(seq 100); do
	[[ $(lab_task_field "$id" .status_text 2>/dev/null) == *"apply control set"* ]] && break
	sleep 0.1
done
sleep 1
kill -CONT "$AGENT_PID"
check "room: a new task from i1 is created in the freed room" test -n "$id"
check "room: task $id is armed (h1 disarmed the cancelled key first)" lab_task_wait_armed "$id"
check_eq "room: h1 applied the cancel and the new task in one control set (3 armed, 0 not)" \
	"$(($(grep -c 'DT-AGENT-ARMED:' "$LAB_DIR/agent-h1.log") - applies)) $(grep 'DT-AGENT-ARMED:' \
		"$LAB_DIR/agent-h1.log" | tail -n 1 | grep -oE '[0-9]+ tasks armed, [0-9]+ not armed')" \
	"1 3 tasks armed, 0 not armed"
check_eq "room: it stays armed, not arm-failed" "$(lab_task_field "$id" .status)" ok
run lab_cli task cancel "$id"
check_rc "room: task $id cancelled, 2 of $MAP keys in use" 0

# ---------------------------------------------------------------------------------------
# A map filled behind the agent's back: the analyzer's view is stale, the arm fails.

# tasks_map_id: the id of h1's agent's dt_tasks map (a map fd of its process whose map is
# named dt_tasks).
tasks_map_id() {
	local pid fd id
	pid=$(lab_pid agent-h1) || return 1
	for fd in /proc/"$pid"/fdinfo/*; do
		id=$(sed -n 's/^map_id:[[:space:]]*//p' "$fd" 2>/dev/null)
		[[ -n $id ]] || continue
		if [[ $(bpftool -j map show id "$id" 2>/dev/null | jq -r .name) == dt_tasks ]]; then
			echo "$id"
			return 0
		fi
	done
	return 1
}
MAP_ID=$(tasks_map_id)
check "behind: h1's agent's dt_tasks map found (id ${MAP_ID:-none})" test -n "$MAP_ID"
check "behind: bpftool map update writes a key into it" \
	bpftool map update id "$MAP_ID" key hex "${JUNK_KEY[@]}" value hex "${JUNK_VAL[@]}"
check_eq "behind: the map is full ($MAP keys)" \
	"$(bpftool -j map dump id "$MAP_ID" 2>/dev/null | jq length)" "$MAP"

armed_logged=$(grep -c 'DT-AGENT-ARM:' "$LAB_DIR/agent-h1.log")
id=$(lab_task_create --src "$LAB_I1_IP" --sport 4004 --dst "$LAB_I2_IP" --dport 5000 \
	--proto udp --vni "$LAB_VNI")
check "behind: the analyzer accepts a task from i1 (it counts 2 of $MAP keys)" test -n "$id"
[[ -n $id ]] || exit 1
# Every state it takes, from its creation on.
lab_bg watch-behind "$LAB_MGMT" env DYETRACE_TOKEN="$LAB_TOKEN" "$LAB_BIN/dyetrace" \
	-a "ipc://$LAB_DIR/api.sock" --json task watch --interval 10 "$id"
state=$(lab_task_wait_ended "$id")
check_eq "behind: task $id ends failed" "$state" failed
t=$(task_json "$id")
json_true "behind: status arm-failed, naming h1 and its full task map" "$t" \
	'.status == "arm-failed" and (.status_text | test("^failed: node h1, the first hop of the requests, could not arm it: its task map is full \\(3 keys"))'
json_true "behind: never armed (armed_ns null)" "$t" '.armed_ns == null'
for ((i = 0; i < 50; i++)); do
	lab__alive "$(lab_pid watch-behind)" || break
	sleep 0.1
done
check "behind: task watch followed it to its end" \
	grep -q '"state":"failed"' "$LAB_DIR/watch-behind.log"
check "behind: task watch never saw it armed or running" \
	bash -c '! grep -qE "\"state\":\"(armed|running)\"" "$1"' _ "$LAB_DIR/watch-behind.log"
run lab_cli task watch "$id"
check_rc "behind: task watch exits 1 for the failed task" 1
run lab_cli task show "$id"
check "behind: task show prints the status and the sentence" \
	grep -q "arm-failed.*could not arm it: its task map is full" <<<"$OUT"
check "behind: h1's agent logged the key it could not arm (DT-AGENT-ARM)" \
	test "$(grep -c 'DT-AGENT-ARM:' "$LAB_DIR/agent-h1.log")" -gt "$armed_logged"
check "behind: the key written behind the agent's back is gone" \
	bash -c '! bpftool map lookup id "$1" key hex "${@:2}" >/dev/null 2>&1' _ "$MAP_ID" \
	"${JUNK_KEY[@]}"
id=$(lab_task_create --src "$LAB_I1_IP" --sport 4005 --dst "$LAB_I2_IP" --dport 5000 \
	--proto udp --vni "$LAB_VNI")
check "behind: then a new task from i1 is created" test -n "$id"
check "behind: and armed" lab_task_wait_armed "$id"

checks_teardown_clean
