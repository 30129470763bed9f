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
# Each round measures, in a rotating order: detached (agents stopped: no qdisc, no link, no
# program), attached once per attach mode of LIVE_ATTACH (the agents started again with
# attach = "tcx" or "clsact" in their configuration; ready once they applied the control
# set), tcpdump with a filter for the traced flow on h1 pt1, h1 ul0, h2 ul0, h2 pt1 (the
# way an operator traces one flow without dyetrace; -w to a file), and tcpdump capturing
# every packet (-s 128) on the same four. Figures are medians of ROUNDS rounds. Last, one
# round per attach mode turns on the kernel's BPF run-time statistics to show how much of
# the time the agents add is the programs themselves (dt-bench-progstats) and how much the
# kernel's hook around them; their rates are not used.
#
# Prints rows (bench/common.h). Environment: ROUNDS (default 7), ROUND_MS (default 700),
# LIVE_ATTACH (default "tcx clsact": the attach modes measured, each its own row),
# LIVE_CLOCK (cpu, the default, or wall: what a rate is per second of, see blast()).
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lab_common.sh
. "$BENCH_DIR/lab_common.sh"

ROUNDS=${ROUNDS:-7}
ROUND_MS=${ROUND_MS:-700}
read -r -a ATTACH <<<"${LIVE_ATTACH:-tcx clsact}"
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

# The forwarding CPU's softirq thread: the softirq work the kernel defers there is not in
# the sender's CPU time.
KSOFTIRQD=$(pgrep -x "ksoftirqd/$SEND_CPU" | head -1)
ksoft_ns() { if [[ -n $KSOFTIRQD ]]; then cut -d' ' -f1 "/proc/$KSOFTIRQD/schedstat"; else echo 0; fi; }

# blast: one round of traffic; prints packets arrived at i2 per second: per second of CPU
# time on the forwarding CPU (the sender's thread, which on veth runs the whole path in its
# softirq, plus that CPU's ksoftirqd) with LIVE_CLOCK=cpu, the default, so that other work
# on a shared machine does not count; per wall-clock second with LIVE_CLOCK=wall.
blast() {
	local rx0 rx1 out ns k0 k1
	rx0=$(rx_i2)
	k0=$(ksoft_ns)
	out=$(lab_in "$LAB_I1" taskset -c $SEND_CPU "$LAB_BIN/dt-bench-blast" send "$LAB_I2_IP" $PORT \
		"$ROUND_MS" $MAX_PACKETS) || return 1
	k1=$(ksoft_ns)
	rx1=$(rx_i2)
	if [[ ${LIVE_CLOCK:-cpu} == wall ]]; then
		ns=$(awk '{ print $3 }' <<<"$out")
	else
		ns=$(awk -v k=$((k1 - k0)) '{ print $4 + k }' <<<"$out")
	fi
	bench_calc "($rx1 - $rx0) / ($ns / 1e9)"
}

# agents_up MODE: the agents of h1 and h2 with attach = MODE. agents_down: stopped.
agents_up() {
	local h
	for h in h1 h2; do
		sed -i '/^attach = /d' "$LAB_DIR/$h.conf"
		echo "attach = \"$1\";" >>"$LAB_DIR/$h.conf"
		bench_agent_start "$h" || return 1
		lab__wait "agent-$h" "DT-AGENT-READY in agent-$h.log" \
			grep -q DT-AGENT-READY "$LAB_DIR/agent-$h.log" || return 1
		grep -q "DT-AGENT-READY: .* attached with $1," "$LAB_DIR/agent-$h.log" || {
			bench_note "agent $h did not attach with $1: $(grep DT-AGENT-READY "$LAB_DIR/agent-$h.log")"
			return 1
		}
	done
}
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

declare -A R=() # mode -> the rates of its rounds, space-separated
modes=(detached)
for m in "${ATTACH[@]}"; do modes+=("attached-$m"); done
modes+=(tcpdump-flow tcpdump-all)
agents_on=tcx # lab_up started the agents (auto: tcx on this kernel)
agents_down
agents_on=
for ((r = 0; r < ROUNDS; r++)); do
	for ((k = 0; k < ${#modes[@]}; k++)); do
		mode=${modes[$(((r + k) % ${#modes[@]}))]}
		want=''
		[[ $mode == attached-* ]] && want=${mode#attached-}
		if [[ $want != "$agents_on" ]]; then
			[[ -n $agents_on ]] && agents_down
			agents_on=
			if [[ -n $want ]]; then
				agents_up "$want" || exit 1
				agents_on=$want
			fi
		fi
		case $mode in
		tcpdump-flow) captures_up flow || exit 1 ;;
		tcpdump-all) captures_up all || exit 1 ;;
		esac
		v=$(blast) || exit 1
		R[$mode]+="$v "
		[[ $mode == tcpdump-* ]] && captures_down
	done
	line="round $((r + 1)):"
	for mode in "${modes[@]}"; do
		read -r -a vs <<<"${R[$mode]}"
		line+=" $mode ${vs[-1]}"
	done
	bench_note "$line"
done

# The programs' own time, attached, with BPF run-time statistics on: one round per mode.
# Prints "NS_PER_PKT RUNS_PER_PKT PER_HOOK".
prog_round() {
	local stats_out rx0 rx1 ids
	mapfile -t ids < <(bench_agent_prog_ids h1 && bench_agent_prog_ids h2)
	stats_out=$(mktemp)
	# A window that holds the whole blast even when a loaded machine delays its start: no
	# other traffic crosses the path, so the per-packet figures stay exact.
	"$LAB_BIN/dt-bench-progstats" $((ROUND_MS + 2000)) "${ids[@]}" >"$stats_out" &
	stats_pid=$!
	sleep 0.3
	rx0=$(rx_i2)
	blast >/dev/null
	rx1=$(rx_i2)
	wait "$stats_pid"
	# ns of program time per packet that arrived at i2, summed over the hooks it crossed.
	awk -v n=$((rx1 - rx0)) '{ ns += $5; runs += $4; nm = $2; sub(/^dt_/, "", nm)
		hooks = hooks sep sprintf("%s %.0f", nm, $5 / $4); sep = ", " }
		END { if (n > 0) printf "%.1f %.2f %s ns", ns / n, runs / n, hooks; else print "0 0 -" }' "$stats_out"
	rm -f "$stats_out"
}
declare -A PROG=()
for m in "${ATTACH[@]}"; do
	[[ $agents_on == "$m" ]] || { [[ -n $agents_on ]] && agents_down; agents_up "$m" || exit 1; }
	agents_on=$m
	PROG[$m]=$(prog_round)
done

median() { # MODE
	local -a vs
	read -r -a vs <<<"${R[$1]}"
	bench_median "${vs[@]}"
}
kpps() { bench_calc "$1 / 1000" | awk '{ printf "%.0f kpps", $1 }'; }
x() { awk -v v="$1" 'BEGIN { printf "x%.3f", v }'; }

det=$(median detached)
tdf=$(median tcpdump-flow)
tda=$(median tcpdump-all)
first=${ATTACH[0]}
att1=$(median "attached-$first")
for m in "${ATTACH[@]}"; do
	att=$(median "attached-$m")
	ratio=$(bench_calc "$att / $det")
	status=$(awk -v r="$ratio" 'BEGIN { if (r >= 0.97) print "meets"; else printf "misses by %.3f", 0.97 - r }')
	bench_row "live untraced forwarding, agents attached with $m (1 task armed), median of $ROUNDS" \
		"$(kpps "$att")" "detached $(kpps "$det")" "$(x "$ratio")" ">= x0.97" "$status"
done
bench_row "live untraced forwarding, tcpdump -w on the same 4 interfaces, filter = the traced flow" \
	"$(kpps "$tdf")" "detached $(kpps "$det")" "$(x "$(bench_calc "$tdf / $det")")" "" \
	"info (agents with $first vs this: $(x "$(bench_calc "$att1 / $tdf")"))"
bench_row "live untraced forwarding, tcpdump -w -s 128 of every packet on the same 4 interfaces" \
	"$(kpps "$tda")" "detached $(kpps "$det")" "$(x "$(bench_calc "$tda / $det")")" "" \
	"info (agents with $first vs this: $(x "$(bench_calc "$att1 / $tda")"))"
for m in "${ATTACH[@]}"; do
	att=$(median "attached-$m")
	add_ns=$(bench_calc "1e9 / $att - 1e9 / $det")
	read -r pns pruns per_hook <<<"${PROG[$m]}"
	bench_row "live ($m): time the agents add per forwarded packet" \
		"$(awk -v v="$add_ns" 'BEGIN { printf "%+.0f ns/pkt", v }')" \
		"$(awk -v v="$det" 'BEGIN { printf "path without agents %.0f ns/pkt", 1e9 / v }')" \
		"$(awk -v a="$add_ns" -v d="$det" 'BEGIN { printf "%+.1f%%", 100 * a * d / 1e9 }')" "" "info"
	bench_row "live ($m): of which the dyetrace programs ($pruns runs/pkt, BPF run-time stats, clock reads included: $per_hook)" \
		"$(awk -v v="$pns" 'BEGIN { printf "%.0f ns/pkt", v }')" \
		"$(awk -v v="$add_ns" 'BEGIN { printf "agents add %.0f ns/pkt", v }')" \
		"$(awk -v p="$pns" -v a="$add_ns" 'BEGIN { if (a > 0) printf "%.0f%%", 100 * p / a; else print "-" }')" "" "info"
	bench_row "live ($m): the rest, the kernel's hook around the programs" \
		"$(awk -v p="$pns" -v a="$add_ns" 'BEGIN { printf "%.0f ns/pkt", a - p }')" \
		"$(awk -v v="$add_ns" 'BEGIN { printf "agents add %.0f ns/pkt", v }')" \
		"$(awk -v p="$pns" -v a="$add_ns" 'BEGIN { if (a > 0) printf "%.0f%%", 100 * (a - p) / a; else print "-" }')" "" "info"
done
