#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_ring_full.sh - DONE means the budget was colored (issue 22): a full ring buffer
# turns into counted ring-full loss, not into EXPIRED. h1's agent runs with the smallest
# ring buffer (ring_kib = 4: 17 samples) and is stopped (SIGSTOP) while a burst of
# traced pings from i1 to i2 passes, more than the task's budget; then it goes on
# (SIGCONT) and drains what the ring kept. The data plane colored the whole budget and
# counted the samples it could not write.
#
# Checks: the task ends done (budget-spent), not expired; its status says how many the
# data plane colored (the budget) and how many of them were sampled at their first hop
# (the port-in hops in the report, fewer than the budget: ring-full loss happened), and
# the difference; the report's lost ring-full is exactly what h1's data plane could not
# write: for each of h1's hops (port-in, uplink-out) the budget minus the hops sampled
# there, and the same as h1's agent's own ring-full counter; no other loss; h2 (its ring
# not full) sampled every colored packet at both of its hops; h1's data plane colored
# exactly the budget (its metrics).
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtrf" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtrf}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
BUDGET=60
PINGS=80 # more than the budget: the data plane stops coloring at the budget

window_lab_up "lab up: overlay, analyzer (window_ms $WINDOW_MS), collector, agents h1 and h2"

# h1's agent again, with the smallest ring buffer.
sed -i 's|^node = "h1";|node = "h1";\nring_kib = 4;   # test_ring_full.sh|' "$LAB_DIR/h1.conf"
lab_bg_stop agent-h1
check_up "h1's agent restarted with ring_kib = 4" "h1's agent restarted with ring_kib = 4" \
	lab_agent_start h1
check "static neighbours i1 <-> i2" lab_static_neighbours i1 i2
# Its node state reaches the analyzer with its next heartbeat.
sleep 1

checks_task task "create the ping task (icmp i1 -> i2, requests, budget $BUDGET)" "task armed" \
	--src "$LAB_I1_IP" --dst "$LAB_I2_IP" --proto icmp --vni "$LAB_VNI" \
	--budget "$BUDGET" --rate 10000 --duration 60

# The burst passes while h1's agent is stopped: its ring fills up after 17 samples.
pid=$(lab_pid agent-h1)
check "h1's agent stopped (SIGSTOP)" kill -STOP "$pid"
received=$(lab_in "$LAB_I1" ping -c "$PINGS" -i 0.01 -W 1 -q "$LAB_I2_IP" 2>&1 |
	sed -nE 's/.* ([0-9]+) received.*/\1/p')
check "h1's agent goes on (SIGCONT)" kill -CONT "$pid"
check_eq "every ping answered" "${received:-0}" "$PINGS"

state=$(lab_task_wait_ended "$task" 30)
check_eq "the task ends done, not expired" "$state" "done"
check_eq "its status is budget-spent" "$(lab_task_field "$task" .status)" "budget-spent"

r=$(report_fetch_text "$task" ringfull)
hops_at() { # NODE HOOK: the report's hops of the requests at NODE's HOOK
	jq_val "$r" '[.packets[].hops[] | select(.node == $n and .hook == $h)] | length' \
		--arg n "$1" --arg h "$2"
}
port_in=$(hops_at h1 port-in)
uplink_out=$(hops_at h1 uplink-out)
ring_full=$(jq_val "$r" '.lost["ring-full"]')
echo "# h1: $port_in port-in and $uplink_out uplink-out hops of $BUDGET colored; lost ring-full $ring_full"
check "ring-full loss happened at the first hop (fewer than $BUDGET port-in hops)" \
	test "${port_in:-$BUDGET}" -lt "$BUDGET"
check_eq "the task's colored is the first-hop samples that arrived" \
	"$(jq_val "$r" '.task.colored')" "$port_in"
text=$(lab_task_field "$task" .status_text)
echo "# status: $text"
want="$BUDGET colored by the data plane, $port_in of them sampled at their first hop: $((BUDGET - port_in)) samples did not reach the analyzer"
check "the status says: $want" grep -qF "$want" <<<"$text"
check_eq "lost ring-full = what h1 could not write: (budget - port-in) + (budget - uplink-out)" \
	"$ring_full" "$((2 * BUDGET - port_in - uplink_out))"
check_eq "lost ring-full = h1's agent's own ring-full counter" "$ring_full" \
	"$(lab_metric agent-h1 'dyetrace_agent_samples_lost_total{reason="ring-full"}')"
check_eq "no other loss" "$(jq_val "$r" '.lost | ([.[]] | add) - .["ring-full"]')" 0
check_eq "h2 sampled every colored packet at uplink-in and port-out" \
	"$(hops_at h2 uplink-in) $(hops_at h2 port-out)" "$BUDGET $BUDGET"
check_eq "h1's data plane colored exactly the budget (metrics)" \
	"$(lab_metric agent-h1 dyetrace_agent_packets_colored_total)" "$BUDGET"

checks_teardown_clean
