#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# memory.sh - benchmark 5: the agent's memory with 10,000 armed tasks, against the agent
# with none.
#
# The lab's network only (lab_up --net-only, prefix $DT_LAB, default "dtb"). A collector
# stand-in (dt-bench-fakecoll) listens where the lab's collector would, in the management
# namespace, and answers the agent's first heartbeat with a control set of N tasks. The
# real dyetrace-agent runs in host h1 with h1's configuration (port pt1, uplink ul0). Once
# it has logged that it applied the set (DT-AGENT-ARMED) and a second has passed, the
# figures are read:
#   - RSS: VmHWM (the peak, which covers applying the set) and VmRSS from
#     /proc/PID/status;
#   - BPF map memory: the sum of "memlock" over the agent's map fds in /proc/PID/fdinfo
#     (the kernel's own account of each map, what bpftool map show prints), each map once.
# Baseline: the same with N = 0. Prints rows (bench/common.h).
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lab_common.sh
. "$BENCH_DIR/lab_common.sh"

TASKS=${TASKS:-10000}

lab_trap
if ! lab_up --net-only >"${TMPDIR:-/tmp}/dtb-mem-up.$$.log" 2>&1; then
	cat "${TMPDIR:-/tmp}/dtb-mem-up.$$.log" >&2
	rm -f "${TMPDIR:-/tmp}/dtb-mem-up.$$.log"
	bench_note "the lab network did not come up"
	exit 1
fi
rm -f "${TMPDIR:-/tmp}/dtb-mem-up.$$.log"

conf=$LAB_DIR/mem-h1.conf
{
	echo "node = \"h1\";"
	echo "collector = \"$LAB_COLLECTOR_URL\";"
	echo "interfaces = ("
	echo "	{ name = \"pt1\"; role = \"port\"; vni = $LAB_VNI; },"
	echo "	{ name = \"ul0\"; role = \"uplink\"; }"
	echo ");"
	if "$LAB_BIN/dyetrace-agent" --help 2>&1 | grep -q spool_dir; then
		echo "spool_dir = \"$LAB_DIR/spool-mem-h1\";"
	fi
} >"$conf"

# The agent's BPF map memory in bytes: memlock of each map fd, each map id once.
map_bytes() {
	local pid=$1 f id m sum=0
	local -A seen=()
	for f in /proc/"$pid"/fdinfo/*; do
		id=$(awk '/^map_id:/ { print $2 }' "$f" 2>/dev/null)
		[[ -n $id && -z ${seen[$id]:-} ]] || continue
		seen[$id]=1
		m=$(awk '/^memlock:/ { print $2 }' "$f" 2>/dev/null)
		sum=$((sum + ${m:-0}))
	done
	echo "$sum"
}

# measure N: prints "hwm_kib rss_kib map_bytes maps"
measure() {
	local n=$1 pid hwm rss maps nmaps
	lab_bg fakecoll "$LAB_MGMT" "$LAB_BIN/dt-bench-fakecoll" "$LAB_COLLECTOR_URL" "$n" || return 1
	lab__wait fakecoll "ready in fakecoll.log" grep -q ready "$LAB_DIR/fakecoll.log" || return 1
	lab_bg agent-mem "$LAB_H1" "$LAB_BIN/dyetrace-agent" -c "$conf" || return 1
	lab__wait agent-mem "$n tasks armed" \
		grep -q "DT-AGENT-ARMED.* $n tasks armed" "$LAB_DIR/agent-mem.log" || return 1
	sleep 1
	pid=$(lab_pid agent-mem)
	hwm=$(awk '/^VmHWM:/ { print $2 }' /proc/"$pid"/status)
	rss=$(awk '/^VmRSS:/ { print $2 }' /proc/"$pid"/status)
	maps=$(map_bytes "$pid")
	nmaps=$(grep -l '^map_id:' /proc/"$pid"/fdinfo/* 2>/dev/null | wc -l)
	lab_bg_stop agent-mem 5
	lab_bg_stop fakecoll 5
	echo "$hwm $rss $maps $nmaps"
}

read -r b_hwm b_rss b_maps b_n < <(measure 0) || exit 1
read -r t_hwm t_rss t_maps t_n < <(measure "$TASKS") || exit 1
[[ -n ${t_maps:-} && -n ${b_maps:-} ]] || {
	bench_note "no figures: see $LAB_DIR/agent-mem.log"
	exit 1
}
bench_note "agent with 0 tasks: VmHWM $b_hwm KiB, VmRSS $b_rss KiB, $b_n map fds; with $TASKS: VmHWM $t_hwm KiB, VmRSS $t_rss KiB, $t_n map fds"

mib() { awk -v v="$1" -v d="$2" 'BEGIN { printf "%.1f MiB", v / d }'; }
diff_mib() { awk -v a="$1" -v b="$2" -v d="$3" 'BEGIN { printf "%+.1f MiB", (a - b) / d }'; }
status() { # VALUE LIMIT DIV
	awk -v v="$1" -v l="$2" -v d="$3" 'BEGIN { if (v / d <= l) print "meets"; else printf "misses by %.1f MiB", v / d - l }'
}

bench_row "agent RSS, peak (VmHWM), $TASKS tasks armed" "$(mib "$t_hwm" 1024)" \
	"0 tasks $(mib "$b_hwm" 1024)" "$(diff_mib "$t_hwm" "$b_hwm" 1024)" "<= 32 MiB" \
	"$(status "$t_hwm" 32 1024)"
bench_row "agent RSS, now (VmRSS), $TASKS tasks armed" "$(mib "$t_rss" 1024)" \
	"0 tasks $(mib "$b_rss" 1024)" "$(diff_mib "$t_rss" "$b_rss" 1024)" "<= 32 MiB" \
	"$(status "$t_rss" 32 1024)"
bench_row "agent BPF map memory (memlock, $t_n maps incl. 4 MiB ring), $TASKS tasks armed" \
	"$(mib "$t_maps" 1048576)" "0 tasks $(mib "$b_maps" 1048576)" \
	"$(diff_mib "$t_maps" "$b_maps" 1048576)" "<= 64 MiB" "$(status "$t_maps" 64 1048576)"
