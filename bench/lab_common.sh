# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# lab_common.sh - what the lab benchmarks (bench/live.sh, memory.sh, verdict.sh) share.
# Sourced; sources test/lab/lab.sh with the benchmarks' own namespace prefix, so that a
# benchmark never touches a test's lab.
#
#     . bench/lab_common.sh         # DT_LAB defaults to "dtb", DT_BIN to build-bench/bin
#     bench_row FIGURE VALUE BASELINE VS GOAL STATUS   # one row of the table (common.h)

: "${DT_LAB:=dtb}"
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${DT_BIN:=$BENCH_DIR/../build-bench/bin}"
export DT_LAB DT_BIN
# shellcheck source=test/lab/lab.sh
. "$BENCH_DIR/../test/lab/lab.sh"

# The agent keeps a spool (LMDB) whose default is a system directory shared by every agent
# of the machine; two lab agents cannot share it. Until lab.sh gives each agent its own,
# the agents' configurations get one in the lab's state dir (a no-op once lab.sh does it,
# or with an agent that has no spool).
eval "$(declare -f lab__write_configs | sed '1s/^lab__write_configs/bench__lab_write_configs/')"
lab__write_configs() {
	local host
	bench__lab_write_configs || return 1
	"$LAB_BIN/dyetrace-agent" --help 2>&1 | grep -q spool_dir || return 0
	for host in "${LAB_HOSTS[@]}"; do
		grep -q '^[[:space:]]*spool_dir' "$LAB_DIR/$host.conf" ||
			echo "spool_dir = \"$LAB_DIR/spool-$host\";" >>"$LAB_DIR/$host.conf"
	done
}

bench_row() {
	local IFS='|'
	printf 'row|%s\n' "$*"
}

bench_note() {
	printf '%s: %s\n' "${0##*/}" "$*" >&2
}

# bench_median V...: the median of numbers (fractions allowed).
bench_median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print 0; exit }
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# bench_calc EXPR: awk arithmetic, e.g. bench_calc '1/3' -> 0.333333
bench_calc() {
	awk "BEGIN { print $1 }"
}

# bench_agent_start HOST / bench_agent_stop HOST: the lab's agent of HOST, with the
# configuration lab.sh wrote. Start returns once the agent is ready and has applied a
# control set (it logs DT-AGENT-ARMED), so that its prefilter is on.
bench_agent_start() {
	local host=$1
	lab_bg "agent-$host" "$LAB_P-$host" "$LAB_BIN/dyetrace-agent" -c "$LAB_DIR/$host.conf" || return 1
	lab__wait "agent-$host" "DT-AGENT-ARMED in agent-$host.log" \
		grep -q 'DT-AGENT-ARMED' "$LAB_DIR/agent-$host.log"
}

bench_agent_stop() {
	lab_bg_stop "agent-$1" 5
}

# bench_agent_prog_ids HOST: the ids of the programs HOST's agent attached, one a line: by
# tcx link (the kernel's fdinfo of the agent's link fds) or by clsact filter (on every
# interface of HOST's namespace).
bench_agent_prog_ids() {
	local ns=$LAB_P-$1 d dir
	{
		grep -l '^link_type:[[:space:]]*tcx' /proc/"$(lab_pid "agent-$1")"/fdinfo/* 2>/dev/null |
			xargs -r sed -nE 's/^prog_id:[[:space:]]*([0-9]+)$/\1/p'
		for d in $(lab_in "$ns" ls /sys/class/net); do
			for dir in ingress egress; do
				lab_in "$ns" tc filter show dev "$d" "$dir" 2>/dev/null |
					sed -nE 's/.* id ([0-9]+) .*/\1/p'
			done
		done
	} | sort -un
}
