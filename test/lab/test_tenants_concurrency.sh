#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_tenants_concurrency.sh - the task service under concurrent tenants (issue 4): 8
# tenants submit 64 tasks at once, over 64 different flows between 4 instances (i1, i3 on
# h1; i2, i4 on h2), traffic runs on all of them at the same time, and every report
# contains exactly its own flow's packets and nothing else.
#
#   - tenant tK (K = 1..8) owns tasks k = 8(K-1) .. 8K-1, all 64 created by 64 CLI
#     processes started together;
#   - task k traces the flow of pair k % 8 (i1->i2, i2->i1, i3->i4, i4->i3, i1->i4,
#     i3->i2, i1->i3, i4->i2: across the overlay and within a host's bridge);
#     pairs 1 and 5 are TCP (source port 43000+k to an echo server on port 7000: one
#     exchange), the others UDP (source port 42000+k to port 6000+k, 3 + k % 5 datagrams,
#     so that no two neighbouring flows have the same count);
#   - every report: exactly as many packets as its flow sent (UDP: what was sent; TCP: the
#     segments the destination instance received, from a capture), each on the task's own
#     six-tuple, in the request direction, entering at the source instance's port and
#     delivered at the destination instance's port; colored == delivered == that count;
#     nothing unmatched;
#   - every tenant lists exactly its 8 tasks; no instance ever sees the color.
#
# One line per check (per tenant for the 64 reports), "N passed, M failed" at the end; exit
# status 0 only when all pass. Namespace prefix "dttc" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dttc}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-300}
TENANTS=8
PER_TENANT=8
NTASKS=$((TENANTS * PER_TENANT))
PAIRS=(i1:i2 i2:i1 i3:i4 i4:i3 i1:i4 i3:i2 i1:i3 i4:i2)
TCP_PAIRS=" 1 5 "
TCP_DPORT=7000
COLOR='ip[6] & 0x80 != 0'

checks_lab_up "lab up (4 instances, $TENANTS tenants, window_ms $WINDOW_MS)" \
	"lab up: i1, i3 on h1, i2, i4 on h2, tenants t1..t$TENANTS" --instances 4 --tenants "$TENANTS" --window-ms "$WINDOW_MS"

# The flow of task k: SRC DST SPORT DPORT PROTO COUNT (COUNT 0 for TCP: from the capture).
declare -a F_SRC F_DST F_SPORT F_DPORT F_PROTO F_COUNT F_TENANT F_ID
for ((k = 0; k < NTASKS; k++)); do
	j=$((k % 8))
	F_SRC[k]=${PAIRS[j]%:*} F_DST[k]=${PAIRS[j]#*:}
	F_TENANT[k]=t$((k / PER_TENANT + 1))
	if [[ $TCP_PAIRS == *" $j "* ]]; then
		F_PROTO[k]=tcp F_SPORT[k]=$((43000 + k)) F_DPORT[k]=$TCP_DPORT F_COUNT[k]=0
	else
		F_PROTO[k]=udp F_SPORT[k]=$((42000 + k)) F_DPORT[k]=$((6000 + k)) F_COUNT[k]=$((3 + k % 5))
	fi
done

# Neighbour tables first (untraced), so that no flow waits for ARP.
warm=()
for p in "${PAIRS[@]}"; do
	lab_in "$(lab_instance_ns "${p%:*}")" ping -c 1 -W 1 -q "$(lab_instance_ip "${p#*:}")" >/dev/null 2>&1 ||
		warm+=("$p")
done
check_eq "every pair of instances reaches the other (untraced ping)" "${warm[*]}" ""

# ---------------------------------------------------------------------------------------
# 64 tasks from 8 tenants, all at once.
mkdir -p "$LAB_DIR/create" "$LAB_DIR/conc"
start=$(lab__now)
pids=()
for ((k = 0; k < NTASKS; k++)); do
	(
		rc=0
		lab_cli_as "${F_TENANT[k]}" --json task create --src "$(lab_instance_ip "${F_SRC[k]}")" \
			--dst "$(lab_instance_ip "${F_DST[k]}")" --sport "${F_SPORT[k]}" --dport "${F_DPORT[k]}" \
			--proto "${F_PROTO[k]}" --vni "$LAB_VNI" >"$LAB_DIR/create/$k.json" 2>"$LAB_DIR/create/$k.err" || rc=$?
		echo "$rc" >"$LAB_DIR/create/$k.rc"
	) &
	pids+=($!)
done
wait "${pids[@]}"
secs=$(awk -v s="$start" -v n="$(lab__now)" 'BEGIN { printf "%.2f", n - s }')
bad=()
for ((k = 0; k < NTASKS; k++)); do
	F_ID[k]=$(jq -r '.id // empty' "$LAB_DIR/create/$k.json" 2>/dev/null)
	[[ $(cat "$LAB_DIR/create/$k.rc" 2>/dev/null) == 0 && -n ${F_ID[k]} ]] ||
		bad+=("$k: rc $(cat "$LAB_DIR/create/$k.rc" 2>/dev/null) $(head -c 200 "$LAB_DIR/create/$k.err")")
done
check_eq "$NTASKS tasks created concurrently by $TENANTS tenants (${secs}s)" "${bad[*]}" ""
check_eq "$NTASKS distinct ids" "$(printf '%s\n' "${F_ID[@]}" | grep -c .) $(printf '%s\n' "${F_ID[@]}" | sort -u | grep -c .)" \
	"$NTASKS $NTASKS"
bad=()
for ((k = 0; k < NTASKS; k++)); do
	[[ $(jq -r .tenant "$LAB_DIR/create/$k.json" 2>/dev/null) == "${F_TENANT[k]}" ]] || bad+=("$k")
done
check_eq "every created task names its own tenant" "${bad[*]}" ""

# Every tenant lists exactly its 8 tasks; wait until all 64 are armed.
bad=()
for ((K = 1; K <= TENANTS; K++)); do
	want=$(for ((k = (K - 1) * PER_TENANT; k < K * PER_TENANT; k++)); do echo "${F_ID[k]}"; done | sort -n | tr '\n' ' ')
	got=$(lab_cli_as "t$K" --json task list 2>/dev/null | jq -r '.tasks[].id' | sort -n | tr '\n' ' ')
	[[ $got == "$want" ]] || bad+=("t$K lists '$got', owns '$want'")
done
check_eq "every tenant lists exactly its own $PER_TENANT tasks" "${bad[*]}" ""

all_armed() {
	local K n
	for ((K = 1; K <= TENANTS; K++)); do
		n=$(lab_cli_as "t$K" --json task list 2>/dev/null |
			jq '[.tasks[] | select(.state | IN("armed", "running"))] | length' 2>/dev/null)
		[[ $n == "$PER_TENANT" ]] || return 1
	done
}
start=$(lab__now)
until all_armed; do
	lab__elapsed_lt "$start" 20 || break
	sleep 0.2
done
if all_armed; then
	ok "all $NTASKS tasks armed ($(awk -v s="$start" -v n="$(lab__now)" 'BEGIN { printf "%.1f", n - s }')s)"
else
	states=$(for ((K = 1; K <= TENANTS; K++)); do lab_cli_as "t$K" --json task list 2>/dev/null; done |
		jq -r '.tasks[] | "\(.id):\(.state)/\(.status)"' | sort | uniq -c | head -n 20 | tr '\n' ' ')
	not_ok "all $NTASKS tasks armed within 20 s" "$states"
fi

# ---------------------------------------------------------------------------------------
# Traffic on all 64 flows at once.
for i in $(lab_instances); do
	check "capture at $i eth0 (TCP of the traced flows, and any colored packet)" \
		lab_capture_start "cap-$i" "$(lab_instance_ns "$i")" eth0 "(tcp port $TCP_DPORT) or ($COLOR)"
	lab_bg "echo-$i" "$(lab_instance_ns "$i")" socat -T 5 "TCP-LISTEN:$TCP_DPORT,reuseaddr,fork" PIPE
done
for i in $(lab_instances); do
	check "TCP echo server listens in $i" lab_wait_listen "$(lab_instance_ns "$i")" "$TCP_DPORT"
done

mkdir -p "$LAB_DIR/traffic"
pids=()
want_udp=0
n_udp=0
for src in $(lab_instances); do
	flows=()
	for ((k = 0; k < NTASKS; k++)); do
		[[ ${F_SRC[k]} == "$src" && ${F_PROTO[k]} == udp ]] || continue
		flows+=("${F_SPORT[k]}:$(lab_instance_ip "${F_DST[k]}"):${F_DPORT[k]}:${F_COUNT[k]}")
		want_udp=$((want_udp + F_COUNT[k]))
		n_udp=$((n_udp + 1))
	done
	((${#flows[@]} > 0)) || continue
	lab_udp_send "$(lab_instance_ns "$src")" 5 "${flows[@]}" >"$LAB_DIR/traffic/udp-$src.out" 2>&1 &
	pids+=($!)
done
for ((k = 0; k < NTASKS; k++)); do
	[[ ${F_PROTO[k]} == tcp ]] || continue
	lab_tcp_echo "$(lab_instance_ns "${F_SRC[k]}")" "${F_SPORT[k]}" "$(lab_instance_ip "${F_DST[k]}")" \
		"$TCP_DPORT" "task $k" >"$LAB_DIR/traffic/tcp-$k.out" 2>&1 &
	pids+=($!)
done
wait "${pids[@]}"
sent_udp=$(cat "$LAB_DIR"/traffic/udp-*.out 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
check_eq "UDP: every datagram of the $n_udp UDP flows sent ($want_udp)" "$sent_udp" "$want_udp"
bad=()
for ((k = 0; k < NTASKS; k++)); do
	[[ ${F_PROTO[k]} == tcp ]] || continue
	[[ $(cat "$LAB_DIR/traffic/tcp-$k.out") == "task $k" ]] || bad+=("$k")
done
check_eq "TCP: every exchange echoed" "${bad[*]}" ""
# A late segment (the ACK of a FIN retransmitted under load, 200 ms and more after the
# exchange) is colored and reported too: the captures stop only once they have stopped
# growing for a second (at most 10 s), so that they count it as well.
prev='' same=0
for _ in $(seq 50); do
	now=$(for i in $(lab_instances); do lab_capture_count "cap-$i"; done | tr '\n' ' ')
	if [[ $now == "$prev" ]]; then
		((++same >= 5)) && break
	else
		same=0
	fi
	prev=$now
	sleep 0.2
done
for i in $(lab_instances); do lab_capture_stop "cap-$i"; done

# TCP counts from the captures: the segments the destination received on the flow.
for ((k = 0; k < NTASKS; k++)); do
	[[ ${F_PROTO[k]} == tcp ]] || continue
	F_COUNT[k]=$(lab_capture_read "cap-${F_DST[k]}" "tcp and src host $(lab_instance_ip "${F_SRC[k]}") and src port ${F_SPORT[k]} and dst port $TCP_DPORT" | wc -l)
done
colored_seen=0
for i in $(lab_instances); do
	colored_seen=$((colored_seen + $(lab_capture_read "cap-$i" "$COLOR" | wc -l)))
done
check_eq "no instance ever sees the color" "$colored_seen" 0

# ---------------------------------------------------------------------------------------
# Every report: exactly its own flow's packets.
# Wait until every task colored what its flow sent (the list carries the counts).
counted() {
	local K
	for ((K = 1; K <= TENANTS; K++)); do lab_cli_as "t$K" --json task list 2>/dev/null; done |
		jq -r '.tasks[] | "\(.id) \(.colored)"' >"$LAB_DIR/counted.txt"
	for ((k = 0; k < NTASKS; k++)); do
		grep -qx "${F_ID[k]} ${F_COUNT[k]}" "$LAB_DIR/counted.txt" || return 1
	done
}
start=$(lab__now)
until counted; do
	lab__elapsed_lt "$start" 20 || break
	sleep 0.3
done

# report_ok K: task k's report is exactly its flow's (a sentence on stdout when not).
report_ok() {
	local k=$1 f=$LAB_DIR/conc/report-$1.json host_s port_s host_d port_d
	host_s=$(lab_instance_host "${F_SRC[k]}") host_d=$(lab_instance_host "${F_DST[k]}")
	case ${F_SRC[k]} in i1 | i2) port_s=pt1 ;; *) port_s=pt2 ;; esac
	case ${F_DST[k]} in i1 | i2) port_d=pt1 ;; *) port_d=pt2 ;; esac
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		lab_cli_as "${F_TENANT[k]}" --json report "${F_ID[k]}" >"$f" 2>"$LAB_DIR/conc/report-$k.err"
		jq_is_true "$f" '.verdict.in_flight == 0 and .verdict.judged == $n' --argjson n "${F_COUNT[k]}" && break
		sleep 0.3
	done
	if ! jq_is_true "$f" '.task.id | type == "number"'; then
		echo "no report: $(head -c 200 "$LAB_DIR/conc/report-$k.err") $(head -c 200 "$f")"
		return
	fi
	jq -r --argjson n "${F_COUNT[k]}" --arg s "$(lab_instance_ip "${F_SRC[k]}")" \
		--arg d "$(lab_instance_ip "${F_DST[k]}")" --argjson sp "${F_SPORT[k]}" \
		--argjson dp "${F_DPORT[k]}" --arg p "${F_PROTO[k]}" --argjson id "${F_ID[k]}" \
		--arg t "${F_TENANT[k]}" --arg first "$host_s/$port_s/port-in" \
		--arg last "$host_d/$port_d/port-out" '
		def hk: "\(.node)/\(.ifname)/\(.hook)";
		def own: .flow.src == $s and .flow.dst == $d and .flow.sport == $sp
			and .flow.dport == $dp and .flow.proto == $p and .direction == "request";
		[ (if .task.id != $id or .task.tenant != $t then "task \(.task.id) of \(.task.tenant)" else empty end),
		  (if (.packets | length) != $n then "\(.packets | length) packets, want \($n)" else empty end),
		  (if .task.colored != $n then "colored \(.task.colored)" else empty end),
		  (if .task.delivered != $n then "delivered \(.task.delivered)" else empty end),
		  ([.packets[] | select(own | not) | "\(.flow.proto) \(.flow.src):\(.flow.sport) -> \(.flow.dst):\(.flow.dport) \(.direction)"]
			| if length > 0 then "foreign packets: \(unique | join(", "))" else empty end),
		  ([.packets[] | select(.fate != "delivered")] | if length > 0 then "\(length) not delivered" else empty end),
		  ([.packets[] | select((.hops[0] | hk) != $first or (.hops[-1] | hk) != $last)]
			| if length > 0 then "\(length) not \($first) ... \($last)" else empty end),
		  (if .verdict.in_flight != 0 then "\(.verdict.in_flight) in flight" else empty end),
		  (if .unmatched != 0 then "unmatched \(.unmatched)" else empty end)
		] | join("; ")' "$f" 2>&1 | head -c 400
}

total=0
for ((K = 1; K <= TENANTS; K++)); do
	bad=()
	counts=()
	for ((k = (K - 1) * PER_TENANT; k < K * PER_TENANT; k++)); do
		[[ -n ${F_ID[k]} ]] || { bad+=("task $k: not created"); continue; }
		why=$(report_ok "$k")
		[[ -z $why ]] || bad+=("task ${F_ID[k]} (${F_PROTO[k]} ${F_SRC[k]}:${F_SPORT[k]}->${F_DST[k]}:${F_DPORT[k]}): $why")
		counts+=("${F_COUNT[k]}")
		total=$((total + F_COUNT[k]))
	done
	if ((${#bad[@]} == 0)); then
		ok "t$K: $PER_TENANT reports, each exactly its own flow's packets ($(IFS=,; echo "${counts[*]}"))"
	else
		not_ok "t$K: $PER_TENANT reports, each exactly its own flow's packets" "$(printf '%s | ' "${bad[@]}")"
	fi
done
all=$(cat "$LAB_DIR"/conc/report-*.json 2>/dev/null | jq -s '[.[].packets | length] | add' 2>/dev/null)
check_eq "the $NTASKS reports hold $total packets in all, every packet of every flow once" "$all" "$total"
if ((CHECKS_FAILED > 0)); then
	for f in "$LAB_DIR"/conc/report-*.json; do
		jq_is_true "$f" '.verdict.in_flight == 0' && continue
		echo "--- ${f##*/}: $(jq -c '{task: .task | {id, state, colored, delivered}, verdict, unmatched}' "$f" 2>/dev/null | head -c 600)"
	done
fi
checks_teardown_clean
