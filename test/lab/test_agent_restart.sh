#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Agent restart mid-task: an agent stopped with SIGUSR1 leaves its data plane attached and
# its maps pinned; armed tasks keep coloring while no agent runs, and the next agent takes
# the data plane over and drains what was sampled meanwhile. Every ping of the flow is
# colored exactly once, sampled and delivered; nothing is lost in the gap.
#
# The agent runs under nsenter (network namespace only), not "ip netns exec", so that its
# pins live in the test's mount namespace and outlive it. The test runs in a mount namespace
# of its own with no bpf file system at /sys/fs/bpf, as on a fresh machine: the first agent
# must mount one itself, and the next finds it mounted.
set -uo pipefail
if [[ -z ${DT_AR_UNSHARED:-} ]]; then
	DT_AR_UNSHARED=1 exec unshare --mount --propagation private bash "$0" "$@"
fi
while mountpoint -q /sys/fs/bpf; do umount -l /sys/fs/bpf || break; done
DT_LAB=${DT_LAB:-dtar}
. "$(dirname "$0")/lab.sh"
. "$(dirname "$0")/checks.sh"

PIN_DIR=/sys/fs/bpf/dyetrace-$DT_LAB
checks_trap
trap 'rm -rf "$PIN_DIR"; ((CHECKS_FAILED == 0)) || lab_logs_tail 30; checks_finish; exit $?' EXIT
rm -rf "$PIN_DIR"
lab_up || { not_ok "lab up"; exit 1; }

# Replace the lab's h1 agent by one that pins its maps.
lab_bg_stop agent-h1
sed "s|^node = \"h1\";|node = \"h1\";\npin_dir = \"$PIN_DIR\";|" "$LAB_DIR/h1.conf" >"$LAB_DIR/h1-pin.conf"
start_agent() { lab_agent_nsenter "$1" "$LAB_H1" "$LAB_DIR/h1-pin.conf"; } # NAME
check "no bpf file system at /sys/fs/bpf before the agent starts" test "$(stat -f -c %T /sys/fs/bpf)" != bpf_fs
start_agent agent-h1a
check "agent with pinned maps starts" test $? -eq 0
check "it mounted a bpf file system at /sys/fs/bpf and said so" \
	grep -q 'DT-AGENT-BPFFS: no bpf file system under .*: mounted one at /sys/fs/bpf' "$LAB_DIR/agent-h1a.log"
check "its ready line says handover is available" \
	grep -q 'DT-AGENT-READY: .*handover available' "$LAB_DIR/agent-h1a.log"
check "an agent under 'ip netns exec' says handover is unavailable" \
	grep -q 'DT-AGENT-READY: .*handover unavailable' "$LAB_DIR/agent-h2.log"
check "its maps are pinned on the bpf file system" test -e "$PIN_DIR/h1/dt_tasks"

id=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --proto icmp --vni "$LAB_VNI" --budget 1000)
check "task created" test -n "$id"
check "task armed" lab_task_wait_armed "$id"

# 40 pings over 2 s; the agent hands over in the middle, with a 0.5 s gap without agent.
lab_in "$LAB_I1" ping -c 40 -i 0.05 -q "$LAB_I2_IP" >"$LAB_DIR/ping.out" 2>&1 &
ping_pid=$!
sleep 0.5
kill -USR1 "$(lab_pid agent-h1a)"
rc=0
wait "$(lab_pid agent-h1a)" || rc=$?
check "agent exits 0 on SIGUSR1 (status $rc)" test "$rc" -eq 0
check "it left the data plane running" grep -q 'DT-AGENT-HANDOVER.*leaving the data plane running' "$LAB_DIR/agent-h1a.log"
check "the pins outlive it" test -e "$PIN_DIR/h1/dt_tasks"
sleep 0.5
start_agent agent-h1b
check "the next agent starts" test $? -eq 0
check "it found the bpf file system mounted (no second mount)" \
	bash -c "! grep -q DT-AGENT-BPFFS '$LAB_DIR/agent-h1b.log'"
check "it took the data plane over" grep -q 'DT-AGENT-HANDOVER.*took over a running data plane: 1 keys armed' "$LAB_DIR/agent-h1b.log"
wait "$ping_pid"
check "all 40 pings answered" grep -q '40 received' "$LAB_DIR/ping.out"
lab_task_wait_judged "$id" 15 || true
report=$(lab_cli --json report "$id")
check "40 packets colored, each once (no coloring twice)" \
	test "$(jq '[.packets[] | select(.direction == "request")] | length' <<<"$report")" -eq 40
check "40 delivered with the four-hop path" \
	test "$(jq '[.packets[] | select(.fate == "delivered" and (.hops | length) == 4)] | length' <<<"$report")" -eq 40
check "no loss in the verdict" test "$(jq -r '.verdict.dropped + .verdict.vanished' <<<"$report")" -eq 0
check "no sample lost before analysis" test "$(jq '[.lost[]] | add' <<<"$report")" -eq 0

# A plain stop detaches and unpins.
kill -TERM "$(lab_pid agent-h1b)"
wait "$(lab_pid agent-h1b)"
check "SIGTERM removes the pins" test ! -e "$PIN_DIR/h1/dt_tasks"
lab_in "$LAB_I1" ping -c 3 -i 0.1 -q "$LAB_I2_IP" >/dev/null
sleep 1
check "and no packet is colored once the agent is gone" \
	test "$(lab_cli --json task show "$id" | jq .colored)" -eq 40
