#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_frag_last_dropped.sh - fragments, scenario 2 (issue 19): the last fragment of every
# datagram dropped on the destination host. Three hosts, unicast FDB, instance MTU 1450:
# i1 sends 20 UDP datagrams of 4000 bytes (3 fragments each) to i31. An nftables rule in
# h3's bridge (family bridge, forward hook, priority -200) drops every fragment with an
# offset and no MF flag, that is the last one of each datagram; the kernel frees it with
# reason NETFILTER_DROP (nft_do_chain). The first two fragments reach i31, whose kernel
# holds them until its reassembly timer fires (set to 1 s in i31 here; the default is
# 30 s) and frees them there, in the instance, where dyetrace has no hook.
#
# The application receives nothing, and the report must say so: 20 of 20 datagrams
# dropped at h3, NETFILTER_DROP; every fragment's datagram_fate dropped; the last
# fragments dropped at h3 after h3 uplink-in, the others delivered to i31's port (their
# own fate) as they were.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtfb" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtfb}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
# shellcheck source=test/lab/frag.sh
. "$(dirname "${BASH_SOURCE[0]}")/frag.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
N=20
PATH4='["h1/pt1/port-in","h1/ul0/uplink-out","h3/ul0/uplink-in","h3/pt1/port-out"]'
PATH_TO_DROP='["h1/pt1/port-in","h1/ul0/uplink-out","h3/ul0/uplink-in"]'

frag_lab_up
check "static neighbours i1 <-> i31 (no ARP in the traced window)" lab_static_neighbours i1 i31
check "UDP sink in i31 (:$FRAG_DPORT)" frag_sink_start sink "$LAB_I31" "$FRAG_DPORT"
check "i31: reassembly timeout 1 s (net.ipv4.ipfrag_time)" \
	lab_in "$LAB_I31" sysctl -q -w net.ipv4.ipfrag_time=1

frag_task

# The last fragment: an offset (frag-off & 0x1fff != 0) and no MF (frag-off & 0x2000 == 0).
# The color bit (0x8000) is outside both masks.
check "h3: nftables bridge rule drops the last fragment of every datagram i1 -> i31" \
	nft_bridge_drop "$LAB_H3" dtlab_frag forward "ip saddr $LAB_I1_IP ip daddr $LAB_I31_IP ip frag-off & 0x1fff != 0 ip frag-off & 0x2000 == 0"

reasm_to=$(frag_snmp "$LAB_I31" Ip ReasmTimeout)
check_eq "i1 sent $N datagrams of $FRAG_SIZE bytes" \
	"$(frag_send "$LAB_I1" "$LAB_I31_IP" "$FRAG_DPORT" "$N" "$FRAG_SIZE")" "$N"
check "every datagram judged (window passed)" lab_task_wait_judged "$task" "$N"
check_eq "h3's rule counted $N drops (one last fragment per datagram)" \
	"$(nft_counter "$LAB_H3" bridge dtlab_frag forward)" "$N"
check_eq "the sink in i31 received no datagram" "$(frag_sink_count sink)" 0
sleep 1
check_eq "kernel: i31 timed out reassembling the $N datagrams (IpReasmTimeout; no hook of dyetrace there)" \
	"$(frag_snmp_delta "$LAB_I31" Ip ReasmTimeout "$reasm_to")" "$N"

r=$(report_fetch_text "$task" last-dropped)
check_verdict "$r" "last dropped" "$N" 0 "$N" 0
jq_true "$r" "verdict: dropped at node h3, reason NETFILTER_DROP" \
	'.verdict.at.node == "h3" and .verdict.reason == "NETFILTER_DROP"'
jq_true "$r" "verdict sentence names $N of $N, h3 and NETFILTER_DROP" \
	'.verdict.sentence | test("\($n) of \($n)") and test("h3") and test("NETFILTER_DROP")' \
	--argjson n "$N"
frag_check_layout "$r" "last dropped" "$N"
jq_true "$r" "every fragment: datagram_fate dropped" 'all(.packets[]; .datagram_fate == "dropped")'
jq_true "$r" "every last fragment: dropped, NETFILTER_DROP with a kernel location, at h3 after h3 uplink-in" \
	'[.packets[] | select(.fragment.more == false)] | length == $n and all(.[]; .fate == "dropped"
		and .drop.name == "NETFILTER_DROP" and (.drop.where | type == "string" and length > 0)
		and path[:-1] == $p and lasthop.node == "h3" and lasthop.hook == "drop")' \
	--argjson n "$N" --argjson p "$PATH_TO_DROP"
jq_true "$r" "every other fragment: its own fate delivered (it reached i31's port), the full path" \
	'[.packets[] | select(.fragment.more == true)] | length == 2 * $n and all(.[]; .fate == "delivered"
		and .drop == null and path == $p)' --argjson n "$N" --argjson p "$PATH4"
jq_true "$r" "per-hop table: h3 uplink-in seen $((3 * N)) fragments, dropped $N, top reason NETFILTER_DROP" \
	'row("h3"; "ul0"; "uplink-in"; "request") | .seen == 3 * $n and .dropped == $n
		and .top_reason == "NETFILTER_DROP"' --argjson n "$N"
jq_true "$r" "per-hop table: h1 lost nothing" \
	'all(.hops[] | select(.node == "h1"); .dropped == 0 and .vanished == 0)'
jq_true "$r" "no sample left unmatched" '.unmatched == 0'
jq_true "$r" "task: colored $N (datagrams), delivered 0" \
	'.task.colored == $n and .task.delivered == 0' --argjson n "$N"

check_samples_accounted "last dropped" "$r"
check_eq "drops reported: h3 $N, h1 0, h2 0 (only h3's agent reports h3's drops)" \
	"$(agent_exit h3 drops) $(agent_exit h1 drops) $(agent_exit h2 drops)" "$N 0 0"
check_eq "h1's agent: colored $N datagrams, $((2 * N)) later fragments, 0 orphans" \
	"$(agent_exit h1 colored) $(agent_exit h1 frag_colored) $(agent_exit h1 frag_orphan)" "$N $((2 * N)) 0"
echo "# verdict: $(jq_val "$r" '.verdict.sentence')"

checks_teardown_clean
