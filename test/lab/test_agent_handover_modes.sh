#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_agent_handover_modes.sh - SIGUSR1 handovers across a change of attach mode (issue 16).
# h1's agent pins its maps (and, with tcx, its links) and is restarted four times while a
# ping task stays armed: tcx -> clsact -> tcx -> tcx. Each new agent takes the running data
# plane over and removes the other mode's attachment once its own runs: after a switch to
# clsact no tcx link is pinned any more, after a switch to tcx no clsact filter is left, and
# a tcx agent that follows a tcx agent swaps its programs into the pinned links (as many
# pins as before, the very links of the agent before it). Every ping is colored once and delivered along its
# four hops; SIGTERM at the end removes the pins.
#
# Runs in a mount namespace of its own, with no bpf file system at /sys/fs/bpf, and starts
# the agent under nsenter, as lab.test_agent_restart does.
set -uo pipefail
if [[ -z ${DT_AR_UNSHARED:-} ]]; then
	DT_AR_UNSHARED=1 exec unshare --mount --propagation private bash "$0" "$@"
fi
while mountpoint -q /sys/fs/bpf; do umount -l /sys/fs/bpf || break; done
DT_LAB=${DT_LAB:-dtam}
. "$(dirname "$0")/lab.sh"
. "$(dirname "$0")/checks.sh"

PIN_DIR=/sys/fs/bpf/dyetrace-$DT_LAB
LINKS=5 # h1's tcx links: pt1 and ul0 both ways, vxlan0 egress
PINGS=5
checks_trap
trap 'rm -rf "$PIN_DIR"; ((CHECKS_FAILED == 0)) || lab_logs_tail 30; checks_finish; exit $?' EXIT
rm -rf "$PIN_DIR"
check_up "lab up" "lab up" lab_up
lab_bg_stop agent-h1

# start_agent NAME MODE: h1's agent with pinned maps and attach = MODE, until it is ready.
start_agent() {
	sed "s|^node = \"h1\";|node = \"h1\";\npin_dir = \"$PIN_DIR\";\nattach = \"$2\";|" \
		"$LAB_DIR/h1.conf" >"$LAB_DIR/h1-$2.conf"
	lab_agent_nsenter "$1" "$LAB_H1" "$LAB_DIR/h1-$2.conf"
	check "$1 starts and attaches with $2" grep -q "DT-AGENT-READY: .* attached with $2, " "$LAB_DIR/$1.log"
}

# handover NAME: SIGUSR1 to agent NAME; it exits 0 and leaves the data plane running.
handover() {
	local rc=0
	kill -USR1 "$(lab_pid "$1")"
	wait "$(lab_pid "$1")" || rc=$?
	check "$1 hands over (exit status $rc)" test "$rc" -eq 0
}

# link_ids NAME: the ids of agent NAME's tcx links (the kernel's fdinfo of its fds), sorted.
link_ids() {
	grep -l '^link_type:[[:space:]]*tcx' /proc/"$(lab_pid "$1")"/fdinfo/* 2>/dev/null |
		xargs -r sed -nE 's/^link_id:[[:space:]]*([0-9]+)$/\1/p' | sort -n | tr '\n' ' '
}
pins() { find "$PIN_DIR/h1" -maxdepth 1 -name 'tcx_*' 2>/dev/null | wc -l; }
filters() {
	local dir
	for dir in ingress egress; do
		lab_in "$LAB_H1" tc filter show dev pt1 "$dir" | grep -c 'handle 0xd7e'
	done | tr '\n' ' '
}
pings() { check_eq "$1: $PINGS pings answered" "$(ping_received "$LAB_I1" "$LAB_I2_IP" "$PINGS")" "$PINGS"; }

start_agent a1 tcx
id=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --proto icmp --vni "$LAB_VNI" --budget 1000)
check "task created" test -n "$id"
check "task armed" lab_task_wait_armed "$id"
check_eq "a1: its $LINKS tcx links are pinned" "$(pins)" "$LINKS"
pings a1
handover a1
check_eq "the links stay pinned for the next agent" "$(pins)" "$LINKS"

start_agent a2 clsact
check_eq "a2 (clsact after tcx): no tcx link pinned any more" "$(pins)" 0
check_eq "a2: one filter of ours at each direction of pt1" "$(filters)" "1 1 "
pings a2
handover a2
check_eq "the filters stay for the next agent" "$(filters)" "1 1 "

start_agent a3 tcx
check_eq "a3 (tcx after clsact): no filter of ours left on pt1" "$(filters)" "0 0 "
check_eq "a3: its $LINKS tcx links are pinned" "$(pins)" "$LINKS"
pings a3
a3_links=$(link_ids a3)
handover a3

start_agent a4 tcx
check "a4 took the data plane over" grep -q 'DT-AGENT-HANDOVER: took over' "$LAB_DIR/a4.log"
check_eq "a4 (tcx after tcx): $LINKS pins" "$(pins)" "$LINKS"
check "a3 held $LINKS tcx links" test "$(wc -w <<<"$a3_links")" -eq "$LINKS"
check_eq "a4 runs in a3's links (swapped its programs in, no second set)" "$(link_ids a4)" "$a3_links"
pings a4

lab_task_wait_judged "$id" $((4 * PINGS)) 15 || true
report=$(lab_cli --json report "$id")
check_eq "every ping colored once" \
	"$(jq '[.packets[] | select(.direction == "request")] | length' <<<"$report")" $((4 * PINGS))
check_eq "every ping delivered along the four hops" \
	"$(jq '[.packets[] | select(.fate == "delivered" and (.hops | length) == 4)] | length' <<<"$report")" \
	$((4 * PINGS))
kill -TERM "$(lab_pid a4)"
wait "$(lab_pid a4)"
check "SIGTERM removes the pins" test ! -e "$PIN_DIR/h1"
check_eq "and leaves no filter" "$(filters)" "0 0 "
checks_teardown_clean
