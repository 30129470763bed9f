#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Agent crash mid-flow: a SIGKILL of an agent loses nothing uncounted, and every window in
# which a node did not observe is reported (issue 22).
#
# A traced ping of 150 packets with no loss anywhere; the destination host's agent (h2)
# batches for 2 s (batch_delay_ms = 2000), so when it is killed with SIGKILL half way it
# holds samples it drained and never spooled. The next agent, started at once, takes its
# pinned data plane over and counts them as agent-crash loss: the samples of the report at
# h2 plus that loss equal what h2's data plane wrote, exactly. It reports a CRASHED window
# in its node state, which the collector stores and forwards. Twice: with a bpf file
# system already at /sys/fs/bpf, and without one (the agent mounts it, as on a fresh
# machine). Then a SIGTERM and an immediate restart: a STOPPED window; and the lab's own
# agent h1, under "ip netns exec", killed: its pins die with it, a CRASHED window whose
# loss is not known.
#
# h2's agent runs under nsenter (network namespace only), so that its pins live in the
# test's mount namespace and outlive it (see test_agent_restart.sh).
set -uo pipefail
if [[ -z ${DT_AC_UNSHARED:-} ]]; then
	DT_AC_UNSHARED=1 exec unshare --mount --propagation private bash "$0" "$@"
fi
: "${DT_LAB:=dtac}"
. "$(dirname "$0")/lab.sh"
. "$(dirname "$0")/checks.sh"

PIN_DIR=/sys/fs/bpf/dyetrace-$DT_LAB
checks_trap
trap 'rm -rf "$PIN_DIR"; ((CHECKS_FAILED == 0)) || lab_logs_tail 30; checks_finish; exit $?' EXIT
rm -rf "$PIN_DIR"
lab_up || { not_ok "lab up"; exit 1; }

# h2's agent: maps pinned, batches held for 2 s.
lab_bg_stop agent-h2
sed "s|^node = \"h2\";|node = \"h2\";\npin_dir = \"$PIN_DIR\";\nbatch_delay_ms = 2000;|" \
	"$LAB_DIR/h2.conf" >"$LAB_DIR/h2-pin.conf"
AGENT=
start_agent() { # NAME: h2's agent, logging to NAME.log; AGENT is its pid
	local rc=0
	lab_agent_nsenter "$1" "$LAB_P-h2" "$LAB_DIR/h2-pin.conf" || rc=$?
	AGENT=$(lab_pid "$1")
	return $rc
}
h2_metric() { lab_metric agent-h2 "$1"; }
gaps_of() { h2_metric "dyetrace_agent_gaps_total{cause=\"$1\"}"; }
coll_gaps() { grep -c "DT-COLL-GAP: node $1 .*($2;" "$LAB_DIR/collector.log"; }
# window_within LOG ID LO T HI: the window LOG's line ID logs (from S.N to S.N) holds the
# moment T and lies within [LO, HI] (times from now_s).
window_within() {
	sed -n "s/.*$2: .* from \([0-9.]*\) to \([0-9.]*\) .*/\1 \2/p" "$1" |
		awk -v lo="$3" -v t="$4" -v hi="$5" '{ f = 1; print "window " $1 " .. " $2 ", want within " lo " .. " hi " holding " t
			exit !(lo <= $1 && $1 <= t && t <= $2 && $2 <= hi) } END { if (!f) exit 1 }'
}
now_s() { date +%s.%N; }

# crash_run NAME: the ping, h2's agent killed half way and restarted at once.
crash_run() {
	local name=$1 id written0 written report hops crash logged pings started killed ready
	started=$(now_s)
	start_agent "agent-h2-$name-a" || { not_ok "$name: h2's agent starts"; return; }
	id=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --proto icmp --vni "$LAB_VNI" --budget 1000)
	check "$name: task armed" lab_task_wait_armed "$id"
	written0=$(h2_metric dyetrace_agent_samples_written_total)
	lab_in "$LAB_I1" ping -c 150 -i 0.02 -q "$LAB_I2_IP" >"$LAB_DIR/ping-$name.out" 2>&1 &
	pings=$!
	sleep 1.5
	killed=$(now_s)
	kill -KILL "$AGENT"
	wait "$AGENT" 2>/dev/null
	start_agent "agent-h2-$name-b"
	check "$name: the next agent starts at once" test $? -eq 0
	ready=$(now_s)
	check "$name: it took the data plane over" \
		grep -q 'DT-AGENT-HANDOVER.*took over a running data plane' "$LAB_DIR/agent-h2-$name-b.log"
	wait "$pings"
	check "$name: all 150 pings answered (no loss anywhere)" grep -q '150 received' "$LAB_DIR/ping-$name.out"
	lab_task_wait_judged "$id" 150 20 || true
	report=$(lab_cli --json report "$id")
	written=$(($(h2_metric dyetrace_agent_samples_written_total) - written0))
	hops=$(jq '[.packets[].hops[] | select(.node == "h2")] | length' <<<"$report")
	crash=$(jq '.lost["agent-crash"]' <<<"$report")
	check "$name: the report counts agent-crash loss (${crash:-none})" test "${crash:-0}" -gt 0
	check_eq "$name: samples at h2 in the report + agent-crash loss = what h2's data plane wrote" \
		"$((hops + crash))" "$written"
	check_eq "$name: no other loss" "$(jq '[.lost[]] | add' <<<"$report")" "$crash"
	logged=$(sed -n 's/.*DT-AGENT-CRASHED: node h2: .* the \([0-9]*\) samples it had drained.*/\1/p' \
		"$LAB_DIR/agent-h2-$name-b.log")
	check_eq "$name: the agent logs that loss once (DT-AGENT-CRASHED)" "$logged" "$crash"
	check "$name: the crashed window holds the kill, between the first agent's start and the next's" \
		window_within "$LAB_DIR/agent-h2-$name-b.log" DT-AGENT-CRASHED "$started" "$killed" "$ready"
	check_eq "$name: and counts the crashed window in its metrics" "$(gaps_of crashed)" 1
	check_eq "$name: its lost{agent-crash} metric says the same" \
		"$(h2_metric 'dyetrace_agent_samples_lost_total{reason="agent-crash"}')" "$((CRASH_BEFORE + crash))"
	CRASH_BEFORE=$((CRASH_BEFORE + crash))
	check "$name: the collector stored and forwarded the window (DT-COLL-GAP)" \
		grep -q "DT-COLL-GAP: node h2 .*(crashed; samples lost: $crash)" "$LAB_DIR/collector.log"
	lab_cli task cancel "$id" >/dev/null 2>&1
	kill -TERM "$AGENT"
	wait "$AGENT"
	check "$name: SIGTERM removes the pins" test ! -e "$PIN_DIR/h2/dt_tasks"
}

CRASH_BEFORE=0
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
check "a bpf file system at /sys/fs/bpf" test "$(stat -f -c %T /sys/fs/bpf)" = bpf_fs
crash_run mounted

while mountpoint -q /sys/fs/bpf; do umount -l /sys/fs/bpf || break; done
check "no bpf file system at /sys/fs/bpf any more" test "$(stat -f -c %T /sys/fs/bpf)" != bpf_fs
crash_run fresh
check "fresh: the first agent mounted one" \
	grep -q 'DT-AGENT-BPFFS: .*mounted one at /sys/fs/bpf' "$LAB_DIR/agent-h2-fresh-a.log"

# A stop and an immediate restart: the window between the detach and the next attach.
# (The last run's SIGTERM already left one: this restart reports it.)
start_agent agent-h2-stop-a
check_eq "stop: the restart after a SIGTERM reports a STOPPED window" "$(gaps_of stopped)" 1
check "stop: logged once (DT-AGENT-GAP)" grep -q 'DT-AGENT-GAP: node h2 did not observe from .* stopped without handing over$' \
	"$LAB_DIR/agent-h2-stop-a.log"
check_eq "stop: nothing counted lost for it" "$(h2_metric 'dyetrace_agent_samples_lost_total{reason="agent-crash"}')" "$CRASH_BEFORE"
signalled=$(now_s)
kill -TERM "$AGENT"
wait "$AGENT"
stopped=$(now_s)
start_agent agent-h2-stop-b
ready=$(now_s)
check "stop: the window holds the agent's exit, from its SIGTERM to the next one's start" \
	window_within "$LAB_DIR/agent-h2-stop-b.log" DT-AGENT-GAP "$signalled" "$stopped" "$ready"
check "stop: the collector forwarded STOPPED windows" test "$(coll_gaps h2 stopped)" -ge 2

# The lab's agent h1 runs under "ip netns exec": its pins end with it.
kill -KILL "$(lab_pid agent-h1)"
wait "$(lab_pid agent-h1)" 2>/dev/null
lab_agent_start h1
check "netns exec: the next agent says its data plane died with it" \
	grep -q 'DT-AGENT-CRASHED: node h1: .* its data plane with it: .* not known' "$LAB_DIR/agent-h1.log"
check_eq "netns exec: a crashed window in its metrics" \
	"$(lab_metric agent-h1 'dyetrace_agent_gaps_total{cause="crashed"}')" 1
check_eq "netns exec: no count claimed for it" \
	"$(lab_metric agent-h1 'dyetrace_agent_samples_lost_total{reason="agent-crash"}')" 0
for _ in $(seq 20); do (($(coll_gaps h1 crashed) > 0)) && break; sleep 0.2; done
check "netns exec: the collector forwarded it, loss unknown" \
	grep -q 'DT-COLL-GAP: node h1 .*(crashed; samples lost: unknown)' "$LAB_DIR/collector.log"
kill -TERM "$AGENT"
wait "$AGENT"
