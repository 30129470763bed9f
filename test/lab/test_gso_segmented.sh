#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_gso_segmented.sh - packets segmented after their first hop (issue 19). Three hosts,
# unicast FDB; h1's underlay interface does no segmentation offload (TSO, GSO and UDP
# tunnel segmentation off, as on a NIC without VXLAN offloads), so the kernel segments in
# software, after the uplink-out hook: the first hop and h1's uplink see one large packet,
# h3 sees its segments, each with the color (the IPv4 header is copied), the next IPv4 ids
# and, for TCP, its own sequence number. The report must count the packet once, delivered
# only when its segments cover it, and lost where one of them was.
#
#  A. UDP GSO (UDP_SEGMENT): i1 sends 20 packets of 3 x 1400 bytes; i31 receives 60
#     datagrams. Verdict: 20 of 20 delivered, colored 20; the segments, seen only at h3,
#     each tied to its packet.
#  B. The same with an nftables rule in h3's bridge that drops every third segment (its
#     payload starts with "Z"): 20 of 20 dropped at h3, NETFILTER_DROP; i31 receives 40.
#  C. TCP: i1 sends 1 MiB to i31. Every byte arrives; the report says no loss with as many
#     packets judged as colored, and segments were tied (packets without a first hop).
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtgs" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtgs}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
# shellcheck source=test/lab/frag.sh
. "$(dirname "${BASH_SOURCE[0]}")/frag.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
N=20
SEG=1400
PATH4='["h1/pt1/port-in","h1/ul0/uplink-out","h3/ul0/uplink-in","h3/pt1/port-out"]'

frag_lab_up
check "static neighbours i1 <-> i31 (no ARP in the traced window)" lab_static_neighbours i1 i31
check "h1/ul0: TSO, GSO and UDP tunnel segmentation off (the kernel segments in software)" \
	lab_in "$LAB_H1" ethtool -K ul0 tso off gso off tx-udp_tnl-segmentation off \
	tx-udp_tnl-csum-segmentation off

# udp_gso_send NS DST DPORT SPORT N: N sendmsg calls of three 1400-byte segments (UDP_SEGMENT),
# payloads starting "A", "B" and "Z"; prints how many calls succeeded.
udp_gso_send() {
	lab_in "$1" python3 -c '
import socket, sys
dst, dport, sport, n, seg = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_UDP, 103, seg)  # UDP_SEGMENT
s.bind(("0.0.0.0", sport))
sent = 0
for i in range(n):
    s.sendto(b"A" * seg + b"B" * seg + b"Z" * seg, (dst, dport))
    sent += 1
print(sent)
' "$2" "$3" "$4" "$5" "$SEG"
}

# udp_phase NAME SPORT DPORT: a task for i1:SPORT -> i31:DPORT, a sink, N sends; prints the
# task id (checks on the way).
udp_phase() {
	local name=$1 sport=$2 dport=$3 task
	check "UDP sink in i31 (:$dport)" frag_sink_start "sink-$name" "$LAB_I31" "$dport"
	task=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_I31_IP" --sport "$sport" \
		--dport "$dport" --proto udp --vni "$LAB_VNI" --budget 1000)
	check "$name: create the UDP task (i1:$sport -> i31:$dport)" test -n "$task"
	check "$name: task armed" lab_task_wait_armed "$task"
	check_eq "$name: i1 sent $N UDP GSO packets of 3 x $SEG bytes" \
		"$(udp_gso_send "$LAB_I1" "$LAB_I31_IP" "$dport" "$sport" "$N")" "$N"
	check "$name: every packet judged (window passed)" lab_task_wait_judged "$task" "$N"
	TASK=$task
}

# --- A: UDP GSO, every segment delivered --------------------------------------------------
udp_phase udp 40021 5021
r=$(report_fetch_text "$TASK" udp)
check_eq "A: i31 received $((3 * N)) datagrams of $SEG bytes" "$(frag_sink_count sink-udp "$SEG")" \
	$((3 * N))
check_verdict "$r" "A" "$N" "$N" 0 0
jq_true "$r" "A: task colored $N, delivered $N" '.task.colored == $n and .task.delivered == $n' \
	--argjson n "$N"
jq_true "$r" "A: the $N packets as the first hop saw them: one of 3 x $SEG bytes each, through h1's uplink" \
	'[.packets[] | select(.hops[0].hook == "port-in")] | length == $n and all(.[];
		.len == 28 + 3 * $seg and .datagram_fate == "delivered"
		and (path | index(["h1/ul0/uplink-out"])) != null)' --argjson n "$N" --argjson seg "$SEG"
jq_true "$r" "A: their $((3 * N)) segments, seen from h3's uplink on, each delivered, datagram delivered" \
	'[.packets[] | select(.hops[0].hook != "port-in")] | length == 3 * $n and all(.[];
		.len == 28 + $seg and .fate == "delivered" and .datagram_fate == "delivered"
		and path == ["h3/ul0/uplink-in", "h3/pt1/port-out"])' --argjson n "$N" \
	--argjson seg "$SEG"
jq_true "$r" "A: verdict says no loss, $N of $N" '.verdict.sentence | startswith("no loss: \($n) of \($n) ")' \
	--argjson n "$N"
rA=$r

# --- B: UDP GSO, every third segment dropped at h3 ----------------------------------------
check "h3: nftables bridge rule drops every UDP segment to :5022 whose payload starts with Z" \
	nft_bridge_drop "$LAB_H3" dtlab_gso forward "ip daddr $LAB_I31_IP udp dport 5022 @th,64,8 0x5a"
udp_phase drop 40022 5022
r=$(report_fetch_text "$TASK" drop)
check_eq "B: h3's rule counted $N drops (the third segment of each packet)" \
	"$(nft_counter "$LAB_H3" bridge dtlab_gso forward)" "$N"
check_eq "B: i31 received $((2 * N)) datagrams" "$(frag_sink_count sink-drop "$SEG")" $((2 * N))
check_verdict "$r" "B" "$N" 0 "$N" 0
jq_true "$r" "B: verdict: dropped at node h3, reason NETFILTER_DROP, $N of $N" \
	'.verdict.at.node == "h3" and .verdict.reason == "NETFILTER_DROP"
		and (.verdict.sentence | test("^\($n) of \($n) packets dropped at h3"))' --argjson n "$N"
jq_true "$r" "B: every packet and segment: datagram_fate dropped" \
	'all(.packets[]; .datagram_fate == "dropped")'
jq_true "$r" "B: the $N dropped segments: NETFILTER_DROP at h3 after h3 uplink-in" \
	'[.packets[] | select(.fate == "dropped")] | length == $n and all(.[];
		.drop.name == "NETFILTER_DROP" and .hops[0].node == "h3" and lasthop.hook == "drop")' \
	--argjson n "$N"
jq_true "$r" "B: per-hop table: h1 lost nothing" \
	'all(.hops[] | select(.node == "h1"); .dropped == 0 and .vanished == 0)'
check_samples_accounted "A and B" "$rA" "$r"
check_eq "A and B: h1's agent colored $((2 * N)) packets (the segments were cut after it)" \
	"$(agent_exit h1 colored)" $((2 * N))

# The accounting stopped the agents; C needs them again.
for h in h1 h2 h3; do
	check "agent $h restarted" lab_agent_start "$h"
done

# --- C: TCP, 1 MiB ---------------------------------------------------------------------------
BYTES=1048576
task=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_I31_IP" --sport 40023 --dport 5023 \
	--proto tcp --vni "$LAB_VNI" --budget 100000)
check "C: create the TCP task (i1:40023 -> i31:5023)" test -n "$task"
check "C: task armed" lab_task_wait_armed "$task"
lab_bg tcp-sink "$LAB_I31" python3 -u -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 5023)); s.listen(1)
c, _ = s.accept(); n = 0
while True:
    b = c.recv(1 << 20)
    if not b:
        break
    n += len(b)
print(n, flush=True)
'
check "C: TCP sink in i31 (:5023)" lab_wait_listen "$LAB_I31" 5023
check "C: i1 sends $BYTES bytes" lab_in "$LAB_I1" python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 40023)); s.connect((sys.argv[1], 5023))
for i in range(16):
    s.sendall(b"x" * 65536)
s.close()
' "$LAB_I31_IP"
for _ in $(seq 100); do
	[[ $(cat "$LAB_DIR/tcp-sink.log" 2>/dev/null) == "$BYTES" ]] && break
	sleep 0.1
done
check_eq "C: i31 received all $BYTES bytes" "$(cat "$LAB_DIR/tcp-sink.log" 2>/dev/null)" "$BYTES"
# The transfer ends before the last samples reach the analyzer: wait until the colored
# and delivered counts are settled, then read them.
check "C: the first hop colored packets, and the counts settled" lab_task_wait_settled "$task" 1
colored=$(lab_cli --json report "$task" 2>/dev/null | jq -r '.task.colored')
check "C: every packet judged (window passed)" lab_task_wait_judged "$task" "${colored:-1}"
r=$(report_fetch_text "$task" tcp)
jq_true "$r" "C: no loss; judged == colored == delivered; nothing dropped or vanished" \
	'.verdict.dropped == 0 and .verdict.vanished == 0 and .verdict.judged == .task.colored
		and .task.delivered == .task.colored and (.verdict.sentence | startswith("no loss"))'
jq_true "$r" "C: segments were cut after the first hop (packets listed without one), each with its packet delivered" \
	'[.packets[] | select(.hops[0].hook != "port-in")] | length > 0 and all(.[];
		.datagram_fate == "delivered")'
jq_true "$r" "C: packets the first hop saw larger than one segment (the kernel segmented them later)" \
	'[.packets[] | select(.hops[0].hook == "port-in" and .len > 1500)] | length > 0'
echo "# C: $(jq_val "$r" '"colored \(.task.colored), listed \(.packets | length)"'); verdict: $(jq_val "$r" '.verdict.sentence')"

checks_teardown_clean
