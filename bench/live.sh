#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# live.sh - benchmark 2: live forwarding of untraced traffic in the lab, with the agents
# attached, detached, and with tcpdump capturing on the same interfaces instead.
#
# The lab (test/lab/lab.sh, prefix $DT_LAB, default "dtb") runs its daemons; one task is
# armed (a TCP flow i1:40000 -> i2:5201 that no packet here belongs to), so the agents run
# as in production: prefilter on, one task. The traffic: dt-bench-blast sends 18-byte UDP
# datagrams (60-byte frames) from instance i1 to instance i2 (10.100.0.1 -> 10.100.0.2
# :9000, the only addresses used) for ROUND_MS per round; a sink in i2 reads them all. The
# rate is what arrives at i2's eth0 (its rx_packets) per second. On veth the whole path
# (i1 -> pt1 -> br0 -> vxlan0 -> ul0 -> h2 ul0 -> vxlan0 -> br0 -> pt1 -> i2) runs in the
# sender's softirq on its CPU, so the sender is pinned to the last CPU and the sink to
# CPU 0, polling so that no packet has to wake it.
#
# Each round measures, in a rotating order: detached (agents stopped: no clsact qdisc, no
# program), attached (the agents started again; ready once they applied the control set),
# tcpdump with a filter for the traced flow on h1 pt1, h1 ul0, h2 ul0, h2 pt1 (the way an
# operator traces one flow without dyetrace; -w to a file), and tcpdump capturing every
# packet (-s 128) on the same four. Figures are medians of ROUNDS rounds. A last round,
# attached, turns on the kernel's BPF run-time statistics to show how much of the
# difference is the programs themselves (dt-bench-progstats); its rate is not used.
#
# Prints rows (bench/common.h). Environment: ROUNDS (default 7), ROUND_MS (default 700).
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lab_common.sh
. "$BENCH_DIR/lab_common.sh"

ROUNDS=${ROUNDS:-7}
ROUND_MS=${ROUND_MS:-700}
MAX_PACKETS=50000000
PORT=9000
NCPU=$(nproc)
SEND_CPU=$((NCPU - 1))
SINK_CPU=0

# The traced flow, as a task and as capture filters (on a port: the inner packet; on the
# uplink: the inner packet inside VXLAN, at fixed offsets: 14 + 20 + 8 + 8 + 14 = 64).
TSPORT=40000
TDPORT=5201
F_PORT="ip src $LAB_I1_IP and ip dst $LAB_I2_IP and tcp src port $TSPORT and tcp dst port $TDPORT"
F_UPLINK="udp dst port 4789 and ether[73] = 6 and ether[76:4] = 0x0a640001 and ether[80:4] = 0x0a640002 and ether[84:2] = $TSPORT and ether[86:2] = $TDPORT"

lab_trap
if ! lab_up >"${TMPDIR:-/tmp}/dtb-live-up.$$.log" 2>&1; then
	cat "${TMPDIR:-/tmp}/dtb-live-up.$$.log" >&2
	rm -f "${TMPDIR:-/tmp}/dtb-live-up.$$.log"
	bench_note "the lab did not come up"
	exit 1
fi
rm -f "${TMPDIR:-/tmp}/dtb-live-up.$$.log"
task=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport $TSPORT --dport $TDPORT \
	--proto tcp --vni "$LAB_VNI") || exit 1
lab_task_wait_armed "$task" || exit 1
lab_bg sink "$LAB_I2" taskset -c $SINK_CPU "$LAB_BIN/dt-bench-blast" sink $PORT || exit 1
sleep 0.2

rx_i2() { lab_in "$LAB_I2" cat /sys/class/net/eth0/statistics/rx_packets; }

# blast: one round of traffic; prints packets per second arrived at i2.
blast() {
	local rx0 rx1 out ns
	rx0=$(rx_i2)
	out=$(lab_in "$LAB_I1" taskset -c $SEND_CPU "$LAB_BIN/dt-bench-blast" send "$LAB_I2_IP" $PORT \
		"$ROUND_MS" $MAX_PACKETS) || return 1
	rx1=$(rx_i2)
	ns=$(awk '{ print $3 }' <<<"$out")
	bench_calc "($rx1 - $rx0) / ($ns / 1e9)"
}

agents_up() { bench_agent_start h1 && bench_agent_start h2; }
agents_down() { bench_agent_stop h1 && bench_agent_stop h2; }

# cap_start NAME NS IFACE SNAPLEN FILTER: tcpdump -w into the state dir; returns once it
# listens. SNAPLEN 0: tcpdump's default (whole packets).
cap_start() {
	local name=$1 ns=$2 ifc=$3 snap=$4 filter=$5 start
	local -a opt=()
	((snap > 0)) && opt=(-s "$snap")
	lab_bg "$name" "$ns" tcpdump -i "$ifc" -nn -Z root "${opt[@]}" -w "$LAB_DIR/$name.pcap" ${filter:+"$filter"} ||
		return 1
	start=$(lab__now)
	until grep -q 'listening on' "$LAB_DIR/$name.log" 2>/dev/null; do
		if ! lab__alive "$(lab_pid "$name")" || ! lab__elapsed_lt "$start" 10; then
			bench_note "tcpdump $name on $ns/$ifc did not start: $(cat "$LAB_DIR/$name.log")"
			return 1
		fi
		sleep 0.05
	done
}

# captures_up flow|all / captures_down: tcpdump on h1 pt1, h1 ul0, h2 ul0, h2 pt1.
captures_up() {
	local snap=0 fp=$F_PORT fu=$F_UPLINK
	if [[ $1 == all ]]; then
		snap=128 fp='' fu=''
	fi
	cap_start cap-h1-pt1 "$LAB_H1" pt1 $snap "$fp" &&
		cap_start cap-h1-ul0 "$LAB_H1" ul0 $snap "$fu" &&
		cap_start cap-h2-ul0 "$LAB_H2" ul0 $snap "$fu" &&
		cap_start cap-h2-pt1 "$LAB_H2" pt1 $snap "$fp"
}
captures_down() {
	local c
	for c in cap-h1-pt1 cap-h1-ul0 cap-h2-ul0 cap-h2-pt1; do
		lab_bg_stop "$c" 5
		rm -f "$LAB_DIR/$c.pcap"
	done
}

declare -a R_DET=() R_ATT=() R_TDF=() R_TDA=()
modes=(detached attached tcpdump-flow tcpdump-all)
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
		case $mode in
		tcpdump-flow) captures_up flow || exit 1 ;;
		tcpdump-all) captures_up all || exit 1 ;;
		esac
		v=$(blast) || exit 1
		case $mode in
		detached) R_DET+=("$v") ;;
		attached) R_ATT+=("$v") ;;
		tcpdump-flow) R_TDF+=("$v") ;;
		tcpdump-all) R_TDA+=("$v") ;;
		esac
		[[ $mode == tcpdump-* ]] && captures_down
	done
	bench_note "round $((r + 1)): $(printf '%s ' "${modes[@]}")... rates: det ${R_DET[-1]} att ${R_ATT[-1]} tcpdump-flow ${R_TDF[-1]} tcpdump-all ${R_TDA[-1]}"
done

# The programs' own time, attached, with BPF run-time statistics on (vxlan0 too: since
# c9d1422 every VXLAN device has dt_overlay_egress, which h1's vxlan0 runs on the path).
((agents_on)) || agents_up || exit 1
ids=()
for h in "$LAB_H1" "$LAB_H2"; do
	for d in pt1 ul0 vxlan0; do
		for dir in ingress egress; do
			while read -r id; do
				ids+=("$id")
			done < <(lab_in "$h" tc filter show dev "$d" "$dir" | sed -nE 's/.* id ([0-9]+) .*/\1/p')
		done
	done
done
stats_out=$(mktemp)
"$LAB_BIN/dt-bench-progstats" $((ROUND_MS + 300)) "${ids[@]}" >"$stats_out" &
stats_pid=$!
sleep 0.1
rx0=$(rx_i2)
blast >/dev/null
rx1=$(rx_i2)
wait "$stats_pid"
# ns of program time per packet that arrived at i2, summed over the hooks it crossed.
prog_ns=$(awk -v n=$((rx1 - rx0)) '{ ns += $5; runs += $4 } END { if (n > 0) printf "%.1f %.2f", ns / n, runs / n; else print "0 0" }' "$stats_out")
per_hook=$(awk '{ n = $2; sub(/^dt_/, "", n); printf "%s%s %.0f", sep, n, $5 / $4; sep = ", " } END { printf " ns" }' "$stats_out")
rm -f "$stats_out"

det=$(bench_median "${R_DET[@]}")
att=$(bench_median "${R_ATT[@]}")
tdf=$(bench_median "${R_TDF[@]}")
tda=$(bench_median "${R_TDA[@]}")
ratio=$(bench_calc "$att / $det")
kpps() { bench_calc "$1 / 1000" | awk '{ printf "%.0f kpps", $1 }'; }
x() { awk -v v="$1" 'BEGIN { printf "x%.3f", v }'; }

status=$(awk -v r="$ratio" 'BEGIN { if (r >= 0.97) print "meets"; else printf "misses by %.3f", 0.97 - r }')
bench_row "live untraced forwarding, agents attached (1 task armed), median of $ROUNDS" \
	"$(kpps "$att")" "detached $(kpps "$det")" "$(x "$ratio")" ">= x0.97" "$status"
bench_row "live untraced forwarding, tcpdump -w on the same 4 interfaces, filter = the traced flow" \
	"$(kpps "$tdf")" "detached $(kpps "$det")" "$(x "$(bench_calc "$tdf / $det")")" "" \
	"info (agents vs this: $(x "$(bench_calc "$att / $tdf")"))"
bench_row "live untraced forwarding, tcpdump -w -s 128 of every packet on the same 4 interfaces" \
	"$(kpps "$tda")" "detached $(kpps "$det")" "$(x "$(bench_calc "$tda / $det")")" "" \
	"info (agents vs this: $(x "$(bench_calc "$att / $tda")"))"
add_ns=$(bench_calc "1e9 / $att - 1e9 / $det")
read -r pns pruns <<<"$prog_ns"
bench_row "live: time the agents add per forwarded packet" \
	"$(awk -v v="$add_ns" 'BEGIN { printf "%+.0f ns/pkt", v }')" \
	"$(awk -v v="$det" 'BEGIN { printf "path without agents %.0f ns/pkt", 1e9 / v }')" \
	"$(awk -v a="$add_ns" -v d="$det" 'BEGIN { printf "%+.1f%%", 100 * a * d / 1e9 }')" "" "info"
bench_row "live: of which the dyetrace programs ($pruns runs/pkt, BPF run-time stats, clock reads included: $per_hook)" \
	"$(awk -v v="$pns" 'BEGIN { printf "%.0f ns/pkt", v }')" \
	"$(awk -v v="$add_ns" 'BEGIN { printf "agents add %.0f ns/pkt", v }')" \
	"$(awk -v p="$pns" -v a="$add_ns" 'BEGIN { if (a > 0) printf "%.0f%%", 100 * p / a; else print "-" }')" "" "info"
