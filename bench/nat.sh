#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# nat.sh - benchmark 7: what dyetrace costs on a node with conntrack (issue 20). Live
# forwarding of untraced traffic through a translating router inside the overlay, with the
# agents attached and detached.
#
# The lab: 3 hosts with unicast FDB and router rt (test/lab/router.sh), which serves the
# VIP 10.99.0.100 with full NAT (nftables DNAT to i31 on h3, SNAT to rt): conntrack looks
# up every packet, NAT rewrites it. One task is armed (a TCP flow i1:40000 -> VIP:5201 that
# no packet here belongs to), so the agents run as in production: prefilter on, one task.
# The traffic: dt-bench-blast sends 18-byte UDP datagrams (60-byte frames) from i1 to
# VIP:9000 for ROUND_MS per round (one flow, one conntrack entry); a sink in i31 reads them
# all. The rate is what arrives at i31's eth0 (rx_packets) per second. The path: i1 -> h1
# (port, bridge, VXLAN) -> underlay bridge -> rt (VXLAN, bridge, conntrack + DNAT,
# forward, SNAT, bridge, VXLAN) -> underlay bridge -> h3 (VXLAN, bridge, port) -> i31;
# the dyetrace programs on it when attached (8 runs a packet): h1 port-in, h1 vxlan0
# overlay, h1 uplink-out, rt uplink-in, rt vxlan0 overlay (where translations are learned),
# rt uplink-out, h3 uplink-in, h3 port-out. The sender is pinned to the last CPU, the sink
# to CPU 0 (as in live.sh).
#
# Each round measures, in a rotating order: detached (every agent stopped: no qdisc, no
# program) and attached (the agents of h1, h3 and rt started again; ready once they applied
# the control set). Figures are medians of ROUNDS rounds. A last round, attached, turns on
# the kernel's BPF run-time statistics to show the programs' own time, on the router and in
# all (dt-bench-progstats); its rate is not used. Then traced against untraced on the
# router: 1,000 datagrams paced 1 ms apart on a traced flow, then on an untraced one, and
# the router's programs' time per packet for each (see the end of this file).
#
# Prints rows (bench/common.h). Environment: ROUNDS (default 7), ROUND_MS (default 700).
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lab_common.sh
. "$BENCH_DIR/lab_common.sh"
# shellcheck source=test/lab/router.sh
. "$BENCH_DIR/../test/lab/router.sh"

ROUNDS=${ROUNDS:-7}
ROUND_MS=${ROUND_MS:-700}
MAX_PACKETS=50000000
PORT=9000
NCPU=$(nproc)
SEND_CPU=$((NCPU - 1))
SINK_CPU=0
AGENTS=(h1 h3 rt) # the nodes on the path (h2 is a bystander with unicast FDB: stopped)

lab_trap
up_log=${TMPDIR:-/tmp}/dtb-nat-up.$$.log
if ! {
	lab_up --hosts 3 --fdb unicast && lab_router_up rt &&
		lab_route_via "$LAB_I1" "$LAB_VIP_NET" "$LAB_RT_IP" &&
		lab_router_lb rt "$LAB_VIP" "$(lab_instance_ip i31)" full &&
		lab__ping "$LAB_I1" "$LAB_VIP" "the VIP through rt's NAT"
} >"$up_log" 2>&1; then
	cat "$up_log" >&2
	rm -f "$up_log"
	bench_note "the lab with router rt did not come up"
	exit 1
fi
rm -f "$up_log"
bench_agent_stop h2
task=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_VIP" --sport 40000 --dport 5201 \
	--proto tcp --vni "$LAB_VNI") || exit 1
lab_task_wait_armed "$task" || exit 1
lab_bg sink "$LAB_I31" taskset -c $SINK_CPU "$LAB_BIN/dt-bench-blast" sink $PORT || exit 1
sleep 0.2

rx_i31() { lab_in "$LAB_I31" cat /sys/class/net/eth0/statistics/rx_packets; }

# blast: one round of traffic; prints packets per second arrived at i31.
blast() {
	local rx0 rx1 out ns
	rx0=$(rx_i31)
	out=$(lab_in "$LAB_I1" taskset -c $SEND_CPU "$LAB_BIN/dt-bench-blast" send "$LAB_VIP" $PORT \
		"$ROUND_MS" $MAX_PACKETS) || return 1
	rx1=$(rx_i31)
	ns=$(awk '{ print $3 }' <<<"$out")
	bench_calc "($rx1 - $rx0) / ($ns / 1e9)"
}

agents_up() {
	local h
	for h in "${AGENTS[@]}"; do bench_agent_start "$h" || return 1; done
}
agents_down() {
	local h
	for h in "${AGENTS[@]}"; do bench_agent_stop "$h" || return 1; done
}

declare -a R_DET=() R_ATT=()
modes=(detached attached)
agents_on=1
for ((r = 0; r < ROUNDS; r++)); do
	for ((k = 0; k < ${#modes[@]}; k++)); do
		mode=${modes[$(((r + k) % ${#modes[@]}))]}
		if [[ $mode == attached ]]; then
			((agents_on)) || agents_up || exit 1
			agents_on=1
		elif ((agents_on)); then
			agents_down
			agents_on=0
		fi
		v=$(blast) || exit 1
		case $mode in
		detached) R_DET+=("$v") ;;
		attached) R_ATT+=("$v") ;;
		esac
	done
	bench_note "round $((r + 1)): rates: det ${R_DET[-1]} att ${R_ATT[-1]}"
done
ct=$(lab_in "$LAB_RT" cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null || echo '?')

# The programs' own time, attached, with BPF run-time statistics on: every dyetrace tc
# program of the nodes on the path, by node.
((agents_on)) || agents_up || exit 1
declare -A node_of=()
ids=()
for h in "${AGENTS[@]}"; do
	while read -r id; do
		[[ -n $id ]] || continue
		ids+=("$id")
		node_of[$id]=$h
	done < <(bench_agent_prog_ids "$h")
done
stats_out=$(mktemp)
# A window that holds the whole blast even when a loaded machine delays its start.
"$LAB_BIN/dt-bench-progstats" $((ROUND_MS + 2000)) "${ids[@]}" >"$stats_out" &
stats_pid=$!
sleep 0.3
rx0=$(rx_i31)
blast >/dev/null
rx1=$(rx_i31)
wait "$stats_pid"
n=$((rx1 - rx0))
# ns of program time per packet that arrived at i31: all nodes, and the router alone
rt_ids=" "
for id in "${!node_of[@]}"; do [[ ${node_of[$id]} == rt ]] && rt_ids+="$id "; done
prog_all=$(awk -v n="$n" '{ ns += $5; runs += $4 } END { if (n > 0) printf "%.1f %.2f", ns / n, runs / n; else print "0 0" }' "$stats_out")
prog_rt=$(awk -v n="$n" -v ids="$rt_ids" 'index(ids, " " $3 " ") { ns += $5; runs += $4 } END { if (n > 0) printf "%.1f %.2f", ns / n, runs / n; else print "0 0" }' "$stats_out")
per_hook_rt=$(awk -v ids="$rt_ids" 'index(ids, " " $3 " ") { nm = $2; sub(/^dt_/, "", nm); printf "%s%s %.0f", sep, nm, $5 / $4; sep = ", " } END { printf " ns" }' "$stats_out")
rm -f "$stats_out"

det=$(bench_median "${R_DET[@]}")
att=$(bench_median "${R_ATT[@]}")
ratio=$(bench_calc "$att / $det")
kpps() { bench_calc "$1 / 1000" | awk '{ printf "%.0f kpps", $1 }'; }
x() { awk -v v="$1" 'BEGIN { printf "x%.3f", v }'; }

status=$(awk -v r="$ratio" 'BEGIN { if (r >= 0.97) print "meets"; else printf "misses by %.3f", 0.97 - r }')
bench_row "live untraced forwarding through a translating router (conntrack + full NAT, $ct entries), agents attached on h1, rt, h3 (1 task armed), median of $ROUNDS" \
	"$(kpps "$att")" "detached $(kpps "$det")" "$(x "$ratio")" ">= x0.97" "$status"
add_ns=$(bench_calc "1e9 / $att - 1e9 / $det")
read -r pns pruns <<<"$prog_all"
read -r rns rruns <<<"$prog_rt"
bench_row "NAT path: time the agents add per forwarded packet" \
	"$(awk -v v="$add_ns" 'BEGIN { printf "%+.0f ns/pkt", v }')" \
	"$(awk -v v="$det" 'BEGIN { printf "path without agents %.0f ns/pkt", 1e9 / v }')" \
	"$(awk -v a="$add_ns" -v d="$det" 'BEGIN { printf "%+.1f%%", 100 * a * d / 1e9 }')" "" "info"
bench_row "NAT path: of which the dyetrace programs ($pruns runs/pkt, BPF run-time stats, clock reads included)" \
	"$(awk -v v="$pns" 'BEGIN { printf "%.0f ns/pkt", v }')" \
	"$(awk -v v="$add_ns" 'BEGIN { printf "agents add %.0f ns/pkt", v }')" \
	"$(awk -v p="$pns" -v a="$add_ns" 'BEGIN { if (a > 0) printf "%.0f%%", 100 * p / a; else print "-" }')" "" "info"
bench_row "NAT path: of which on the router rt ($rruns runs/pkt: $per_hook_rt)" \
	"$(awk -v v="$rns" 'BEGIN { printf "%.0f ns/pkt", v }')" \
	"$(awk -v v="$pns" 'BEGIN { printf "all programs %.0f ns/pkt", v }')" \
	"$(awk -v p="$rns" -v a="$pns" 'BEGIN { if (a > 0) printf "%.0f%%", 100 * p / a; else print "-" }')" "" "info"

# Traced against untraced on the router: PACED datagrams at about 1 ms apart (under the
# task's rate limit, so every one of the traced flow is colored), one flow traced (task:
# udp i1:41000 -> VIP:9000), then the same on an untraced flow (i1:41001 -> VIP:9000).
# The router's programs' time per packet (uplink-in, overlay egress, uplink-out) from BPF
# run-time statistics: a traced packet there is sampled twice with its 128-byte prefix and
# carries its translation (orig, from dt_nat).
PACED=1000
rt_list=()
for id in $rt_ids; do rt_list+=("$id"); done
traced=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_VIP" --sport 41000 --dport $PORT \
	--proto udp --vni "$LAB_VNI" --budget 100000 --rate 10000) || exit 1
lab_task_wait_armed "$traced" || exit 1
# paced SPORT: the router's programs' ns per packet over PACED datagrams from SPORT
paced() {
	local out st
	st=$(mktemp)
	"$LAB_BIN/dt-bench-progstats" $((PACED * 2 + 1500)) "${rt_list[@]}" >"$st" &
	local pid=$!
	sleep 0.2
	out=$(lab_udp_send "$LAB_I1" 1 "$1:$LAB_VIP:$PORT:$PACED") || return 1
	wait "$pid"
	awk -v n="$out" '{ ns += $5; runs += $4; nm = $2; sub(/^dt_/, "", nm); h = h sep nm " " int($5 / $4 + 0.5); sep = ", " }
		END { printf "%.1f %.2f %s ns", ns / n, runs / n, h }' "$st"
	rm -f "$st"
}
read -r t_ns t_runs t_hooks <<<"$(paced 41000)"
colored=$(lab_task_field "$traced" .colored)
read -r u_ns _ u_hooks <<<"$(paced 41001)"
bench_row "NAT router: a traced packet, rt's programs ($t_runs runs/pkt: $t_hooks; untraced $u_hooks; $colored of $PACED colored; paced 1 ms apart, BPF run-time stats)" \
	"$(awk -v v="$t_ns" 'BEGIN { printf "%.0f ns/pkt", v }')" \
	"$(awk -v v="$u_ns" 'BEGIN { printf "untraced %.0f ns/pkt", v }')" \
	"$(awk -v t="$t_ns" -v u="$u_ns" 'BEGIN { printf "%+.0f ns", t - u }')" "" "info"
