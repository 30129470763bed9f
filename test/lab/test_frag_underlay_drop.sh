#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_frag_underlay_drop.sh - fragments, scenario 5 (issue 19): one fragment of every
# datagram dropped in the underlay. Three hosts, unicast FDB, instance MTU 1450; in each
# phase i1 sends 20 UDP datagrams of 4000 bytes (3 fragments: offsets 0, 1424, 2848) to
# i31, with its own ports, task and sink. The rule drops the VXLAN packets whose inner
# packet is the middle fragment of a datagram from i1 to i31: behind the outer IPv4 (20
# bytes), UDP (8), VXLAN (8) and Ethernet (14) headers the inner IPv4 header starts at
# byte 50 of the outer packet, its flags and offset are bytes 56-57 (offset 1424 is 178
# units of 8), its addresses bytes 62-69.
#
# A. On h3's input (iptables INPUT, u32): the kernel frees the VXLAN packet with reason
#    NETFILTER_DROP on h3, and the drop tracer sees the colored inner fragment. Every
#    datagram dropped at h3, NETFILTER_DROP; the other fragments reach i31, whose kernel
#    times their reassembly out (no hook of dyetrace there).
# B. On the wire (nftables in the underlay bridge's namespace, where no agent runs): the
#    middle fragments vanish after h1 uplink-out; so does every datagram.
# C. On the wire again, and conntrack on h3's bridge with a reassembly timeout of 1 s in
#    h3: h3's kernel holds the first and last fragments for reassembly, and when its timer
#    fires (IpReasmTimeout +20) ip_expire frees the first fragment with reason
#    FRAG_REASM_TIMEOUT on h3. The datagram is lost at reassembly on h3, with the kernel's
#    reason: its first missing fragment (offset 0) was dropped there. The middle fragment
#    vanished on the wire; the last one is freed with the queue (its fate is printed).
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtff" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtff}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
# shellcheck source=test/lab/frag.sh
. "$(dirname "${BASH_SOURCE[0]}")/frag.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
N=20
MIDDLE=178 # the middle fragment's offset, in 8-byte units (1424 bytes)
PATH4='["h1/pt1/port-in","h1/ul0/uplink-out","h3/ul0/uplink-in","h3/pt1/port-out"]'
PATH_TO_UL_DROP='["h1/pt1/port-in","h1/ul0/uplink-out","h3/ul0/uplink-in"]'
PATH_TO_WIRE='["h1/pt1/port-in","h1/ul0/uplink-out"]'

frag_lab_up
check "static neighbours i1 <-> i31 (no ARP in the traced window)" lab_static_neighbours i1 i31
check "i31: reassembly timeout 1 s (net.ipv4.ipfrag_time)" \
	lab_in "$LAB_I31" sysctl -q -w net.ipv4.ipfrag_time=1

# phase_run NAME SPORT DPORT: a sink in i31 on DPORT, an armed task for i1:SPORT ->
# i31:DPORT, N datagrams sent and judged, the sink checked empty; sets task and r (the
# report).
phase_run() {
	frag_phase_task "$1" "$2" "$3"
	check_eq "$1: i1 sent $N datagrams of $FRAG_SIZE bytes" \
		"$(frag_send "$LAB_I1" "$LAB_I31_IP" "$3" "$N" "$FRAG_SIZE" 20 "$2")" "$N"
	check "$1: every datagram judged (window passed)" lab_task_wait_judged "$task" "$N" 30
	[[ -n ${SETTLE:-} ]] && $SETTLE
	check_eq "$1: the sink in i31 received nothing" "$(frag_sink_count "sink-$1")" 0
	r=$(report_fetch_text "$task" "$1")
	frag_check_layout "$r" "$1" "$N"
	jq_true "$r" "$1: every fragment: datagram_fate not delivered" \
		'all(.packets[]; .datagram_fate != "delivered")'
	jq_true "$r" "$1: every middle fragment lost (its fate not delivered)" \
		'[.packets[] | select(foff == 1424)] | length == $n and all(.[]; .fate != "delivered")' \
		--argjson n "$N"
	jq_true "$r" "$1: no sample left unmatched" '.unmatched == 0'
	echo "# $1: $(jq_val "$r" '.verdict.sentence')"
}

IFS=. read -r a1 a2 a3 a4 <<<"$LAB_I1_IP"
IFS=. read -r b1 b2 b3 b4 <<<"$LAB_I31_IP"
I1_HEX=$(printf '0x%02x%02x%02x%02x' "$a1" "$a2" "$a3" "$a4")
I31_HEX=$(printf '0x%02x%02x%02x%02x' "$b1" "$b2" "$b3" "$b4")

# A. iptables on h3's INPUT: u32 reads 4 bytes at 56 (flags and offset, TTL, protocol).
U32_MIDDLE="56>>16&0x1FFF=$MIDDLE && 62=$I1_HEX && 66=$I31_HEX"
check "A: h3: iptables INPUT drops the VXLAN packets carrying a middle fragment i1 -> i31 (u32)" \
	lab_in "$LAB_H3" iptables -w -I INPUT 1 -i ul0 -p udp --dport 4789 -m u32 --u32 "$U32_MIDDLE" -j DROP
phase_run A 40051 5051
check_eq "A: h3's rule counted $N drops" \
	"$(lab_in "$LAB_H3" iptables -w -L INPUT 1 -v -x -n | awk '{ print $1 }')" "$N"
check_verdict "$r" A "$N" 0 "$N" 0
jq_true "$r" "A: verdict: dropped at h3, reason NETFILTER_DROP" \
	'.verdict.at.node == "h3" and .verdict.reason == "NETFILTER_DROP"'
jq_true "$r" "A: verdict sentence names $N of $N, h3 and NETFILTER_DROP" \
	'.verdict.sentence | test("\($n) of \($n)") and test("h3") and test("NETFILTER_DROP")' \
	--argjson n "$N"
jq_true "$r" "A: every middle fragment dropped on h3 after h3 uplink-in, NETFILTER_DROP with a kernel location" \
	'all(.packets[] | select(foff == 1424); .fate == "dropped" and path[:-1] == $p
		and lasthop.node == "h3" and lasthop.hook == "drop" and .drop.name == "NETFILTER_DROP"
		and (.drop.where | type == "string" and length > 0))' --argjson p "$PATH_TO_UL_DROP"
jq_true "$r" "A: the first and last fragments delivered to i31's port (their own fate)" \
	'[.packets[] | select(foff != 1424)] | length == 2 * $n and all(.[]; .fate == "delivered" and path == $p)' \
	--argjson n "$N" --argjson p "$PATH4"
check "A: h3: remove the rule" lab_in "$LAB_H3" iptables -w -D INPUT 1
check "A: cancel the task" lab_cli task cancel "$task"

# B. The same drop on the wire: the underlay bridge, no agent there.
check "B: underlay bridge: nftables drops the VXLAN packets carrying a middle fragment i1 -> i31" \
	nft_bridge_drop "$LAB_UL" dtlab_wire forward "ether type ip udp dport 4789 @nh,448,16 & 0x1fff == $MIDDLE @nh,496,32 $I1_HEX @nh,528,32 $I31_HEX"
phase_run B 40052 5052
check_eq "B: the wire's rule counted $N drops" "$(nft_counter "$LAB_UL" bridge dtlab_wire forward)" "$N"
check_verdict "$r" B "$N" 0 0 "$N"
jq_true "$r" "B: verdict: vanished after h1 uplink-out" \
	'.verdict.at.node == "h1" and .verdict.at.hook == "uplink-out"'
jq_true "$r" "B: every middle fragment vanished after h1 uplink-out (lost on the wire)" \
	'all(.packets[] | select(foff == 1424); .fate == "vanished" and path == $p)' --argjson p "$PATH_TO_WIRE"
jq_true "$r" "B: no drop anywhere in the report" 'all(.packets[]; .drop == null)'
check "B: cancel the task" lab_cli task cancel "$task"

# C. The wire drop, and reassembly on h3 (conntrack on its bridge), timing out after 1 s
# (within the analyzer's four windows of 500 ms, so the drop meets its packet unjudged).
check "C: conntrack on h3's bridge (br_netfilter, iptables FORWARD -m conntrack)" frag_bridge_conntrack h3
check "C: h3: reassembly timeout 1 s (net.ipv4.ipfrag_time)" \
	lab_in "$LAB_H3" sysctl -q -w net.ipv4.ipfrag_time=1
reasm_to=$(frag_snmp "$LAB_H3" Ip ReasmTimeout)
# A datagram may be judged (vanished) before its reassembly times out; the drop sample
# revises it when it comes. Wait for the kernel's timeouts, then for their samples.
reasm_settled() {
	local start
	start=$(lab__now)
	while (($(frag_snmp_delta "$LAB_H3" Ip ReasmTimeout "$reasm_to") < N)) && lab__elapsed_lt "$start" 10; do
		sleep 0.2
	done
	start=$(lab__now)
	until [[ $(lab_cli --json report "$task" 2>/dev/null | jq -r '.verdict.dropped') == "$N" ]]; do
		lab__elapsed_lt "$start" 5 || return 0
		sleep 0.25
	done
}
SETTLE=reasm_settled
phase_run C 40053 5053
check_eq "C: kernel: h3 timed out reassembling $N datagrams (IpReasmTimeout)" \
	"$(frag_snmp_delta "$LAB_H3" Ip ReasmTimeout "$reasm_to")" "$N"
check_verdict "$r" C "$N" 0 "$N" 0
jq_true "$r" "C: verdict: dropped at h3, reason FRAG_REASM_TIMEOUT" \
	'.verdict.at.node == "h3" and .verdict.reason == "FRAG_REASM_TIMEOUT"'
jq_true "$r" "C: every first fragment dropped on h3 after h3 uplink-in, FRAG_REASM_TIMEOUT in ip_expire" \
	'all(.packets[] | select(foff == 0); .fate == "dropped" and path[:-1] == $p
		and lasthop.node == "h3" and lasthop.hook == "drop" and .drop.name == "FRAG_REASM_TIMEOUT"
		and (.drop.where | startswith("ip_expire")))' --argjson p "$PATH_TO_UL_DROP"
jq_true "$r" "C: every middle fragment vanished after h1 uplink-out (lost on the wire)" \
	'all(.packets[] | select(foff == 1424); .fate == "vanished" and path == $p)' --argjson p "$PATH_TO_WIRE"
jq_true "$r" "C: no last fragment delivered" 'all(.packets[] | select(foff == 2848); .fate != "delivered")'
echo "# C: the last fragments: $(jq_val "$r" '[.packets[] | select(foff == 2848) | "\(.fate) after \(lasthop | hopkey)\(if .drop then " " + .drop.name else "" end)"] | group_by(.) | map("\(length) \(.[0])") | join(", ")')"

lab_bg_stop agent-h1
lab_bg_stop agent-h3
check_eq "drops reported: h3 $((2 * N)) ($N NETFILTER_DROP in A, $N FRAG_REASM_TIMEOUT in C), h1 0" \
	"$(agent_exit h3 drops) $(agent_exit h1 drops)" "$((2 * N)) 0"

checks_teardown_clean
