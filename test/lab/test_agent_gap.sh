#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Blind windows are never blamed on the network (issue 22). A traced ping of 150 packets
# with no loss anywhere, whose destination host's agent (h2) goes away half way and is
# started again at once, without handing over (the lab's agents run under "ip netns exec":
# their data plane ends with them):
#  - SIGKILL: a CRASHED window, its loss not known;
#  - SIGTERM: a STOPPED window.
# The requests that crossed h2 meanwhile have no sample there. Each report must say "no
# loss", with those packets unobserved at h2 and the window named, never "vanished after
# h1/... uplink-out". Nothing is faked: the agents report the windows, the analyzer judges.
# Then h2's agent is killed and left down: until it runs again the analyzer knows only that
# h2 is silent (no collector relays its state), and says so in the same way.
set -uo pipefail
: "${DT_LAB:=dtag}"
. "$(dirname "$0")/lab.sh"
. "$(dirname "$0")/checks.sh"

checks_trap
lab_up || { not_ok "lab up"; exit 1; }

# logged_within SECONDS PATTERN: whether the analyzer logs PATTERN within SECONDS.
logged_within() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		grep -q "$2" "$LAB_DIR/analyzer.log" && return 0
		sleep 0.1
	done
	return 1
}

# gap_run NAME SIGNAL CAUSE WORDS [down]: the ping, h2's agent sent SIGNAL half way and
# started again at once, or with "down" only once the report has been read. CAUSE and
# WORDS: the window's cause as the JSON and the verdict name it.
gap_run() {
	local name=$1 sig=$2 cause=$3 words=$4 down=${5:-} id pings pid r missing lost
	id=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --proto icmp --vni "$LAB_VNI" --budget 1000)
	check "$name: task armed" lab_task_wait_armed "$id"
	lab_in "$LAB_I1" ping -c 150 -i 0.02 -q "$LAB_I2_IP" >"$LAB_DIR/ping-$name.out" 2>&1 &
	pings=$!
	sleep 1.5
	pid=$(lab_pid agent-h2)
	kill -"$sig" "$pid"
	wait "$pid" 2>/dev/null
	[[ $down ]] || check "$name: h2's agent starts again at once" lab_agent_start h2
	wait "$pings"
	check "$name: all 150 pings answered (no loss anywhere)" grep -q '150 received' "$LAB_DIR/ping-$name.out"
	if [[ $down ]]; then
		check "$name: the analyzer says h2 is no longer heard of (DT-ANA-SILENT)" \
			logged_within 15 'DT-ANA-SILENT: node h2 is no longer heard of'
		check_eq "$name: the analyzer's metrics count one silent node" \
			"$(lab_metric analyzer dyetrace_analyzer_nodes_silent)" 1
	fi
	lab_task_wait_judged "$id" 150 30 || true
	r="$LAB_DIR/report-$name.json"
	lab_cli --json report "$id" >"$r"
	missing=$(jq '[.packets[] | select(.direction == "request" and
		([.hops[] | select(.node == "h2")] | length) == 0)] | length' "$r")
	check "$name: some requests crossed h2 unseen (${missing:-none})" test "${missing:-0}" -gt 0
	jq_true "$r" "$name: the verdict says no loss" \
		'.verdict | .dropped == 0 and .vanished == 0 and .in_flight == 0 and
		 (.sentence | startswith("no loss: "))'
	lost=$(jq '[.packets[] | select(.fate != "delivered")] | length' "$r")
	jq_true "$r" "$name: every packet not delivered ($lost) is unobserved, counted apart" \
		'([.packets[] | select(.fate != "delivered") | .fate == "unobserved"] | all) and
		 .unobserved.packets == $m and .verdict.judged == .verdict.delivered + .unobserved.packets' \
		--argjson m "${lost:-0}"
	jq_true "$r" "$name: the verdict names h2 and the window" \
		'.verdict.sentence | test("; [0-9]+ packets? unobserved at h2 \\('"$words"' between [0-9TZ:.-]+ and [0-9TZ:.-]+")'
	jq_true "$r" "$name: the report lists h2's $cause window with those packets" \
		'[.unobserved.windows[] | select(.node == "h2" and .cause == "'"$cause"'")] |
		 length >= 1 and (map(.packets) | add) == $m' --argjson m "${lost:-0}"
	check "$name: no hop is blamed in the loss table" \
		test "$(jq '[.hops[].vanished] | add' "$r")" -eq 0
	if [[ $down ]]; then
		check "$name: h2's agent starts again" lab_agent_start h2
		check "$name: the analyzer says h2 is heard again" \
			logged_within 15 'DT-ANA-SILENT: node h2 is heard again'
		check_eq "$name: and counts no silent node once it is" \
			"$(lab_metric analyzer dyetrace_analyzer_nodes_silent)" 0
	fi
	lab_cli task cancel "$id" >/dev/null 2>&1
}

# loss_unknown NAME: the window's loss is not known, and the verdict says so.
loss_unknown() {
	jq_true "$LAB_DIR/report-$1.json" "$1: its loss is not known, and the verdict says so" \
		'(.unobserved.windows | map(.samples_lost_unknown) | any) and
		 (.verdict.sentence | test("samples lost: how many is not known"))'
}

gap_run kill KILL crashed "agent crashed"
loss_unknown kill
gap_run term TERM stopped "agent stopped"
# No agent has reported a window yet: the analyzer only knows that no collector relays
# h2's state any more.
gap_run silent KILL silent "node not heard" down
loss_unknown silent

checks_teardown_clean
