#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_frag_router.sh - fragments (issue 19): conntrack's defragmentation on a router.
# Three hosts, unicast FDB, instance MTU 1450 everywhere (consistent), router rt
# (test/lab/router.sh) with a second subnet 10.101.0.250/24 on its br0; the backend i31
# (on h3) readdressed to 10.101.0.31/24, default route via rt (h3's agent lists it); i1
# routes 10.101.0.0/24 and the VIP net 10.99.0.0/24 via rt. rt has conntrack: an iptables
# FORWARD rule with -m conntrack (no NAT), which registers conntrack and its
# defragmentation in rt's namespace. i1 sends 20 UDP datagrams of 4000 bytes (3 fragments
# each) in each phase, each phase with its own ports, task and sink.
#
# 1. Plain routing i1 -> i31 (10.101.0.31), no NAT. rt's kernel reassembles each datagram
#    before routing it (IpReasmOKs +20), which writes the flags field afresh and erases the
#    color, and fragments it again on its way out of br0 to the sender's sizes (IpFragOKs
#    +20, IpFragCreates +60). rt's uplink received the colored fragments (dt_frags), so
#    rt colors the new fragments again at its VXLAN device (recolored), and its uplink-out
#    samples are REFRAG. The new fragments have the old ones' IP id, offsets and sizes,
#    so the analyzer continues each old fragment's path with its new one: 60 fragments,
#    each h1 port-in -> h1 uplink-out -> rt uplink-in -> rt uplink-out -> h3 uplink-in ->
#    h3 port-out. The report must say: 20 of 20 delivered, none blamed on rt, rt's
#    uplink-out hops (and only those) `refragmented`, the verdict adds "20 datagrams
#    refragmented at rt".
# 2. The same, with a DNAT rule on rt (nftables, VIP 10.99.0.100 -> 10.101.0.31, no SNAT):
#    the task is i1 -> VIP. rt reassembles, translates the whole datagram (nat prerouting
#    after conntrack's defragmentation; all 20 datagrams are one UDP connection, so the
#    nat chain sees the first only), and fragments it again; the new fragments go to
#    10.101.0.31. rt remembered the datagram as it arrived (to the VIP); the new fragments'
#    conntrack entry gives that form back, so rt colors them again too, its uplink-out
#    samples are REFRAG, the first new fragment teaches the translation, and the later
#    ones follow it. The report must say: 20 of 20 delivered, refragmented at rt, the
#    packets named i1 -> VIP, the hops after rt addressed to the backend.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtfo" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtfo}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/router.sh
. "$(dirname "${BASH_SOURCE[0]}")/router.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
# shellcheck source=test/lab/frag.sh
. "$(dirname "${BASH_SOURCE[0]}")/frag.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
N=20
BACKEND=$LAB_I31_BACKEND_IP
TO_RT='["h1/pt1/port-in","h1/ul0/uplink-out","rt/ul0/uplink-in"]'
THROUGH_RT='["h1/pt1/port-in","h1/ul0/uplink-out","rt/ul0/uplink-in","rt/ul0/uplink-out","h3/ul0/uplink-in","h3/pt1/port-out"]'

frag_lab_up
nat_router_up
nat_backend_subnet
check "i1 routes $LAB_BACKEND_NET via rt" lab_route_via "$LAB_I1" "$LAB_BACKEND_NET" "$LAB_RT_IP"
check "i1 routes $LAB_VIP_NET via rt" lab_route_via "$LAB_I1" "$LAB_VIP_NET" "$LAB_RT_IP"
check "rt: conntrack (iptables FORWARD -m conntrack, no NAT)" \
	lab_in "$LAB_RT" iptables -A FORWARD -m conntrack --ctstate NEW,ESTABLISHED -j ACCEPT
check_eq "rt: no NAT chain (nftables ruleset: no 'type nat')" \
	"$(lab_in "$LAB_RT" nft list ruleset 2>/dev/null | grep -c 'type nat')" 0
# the neighbours on the way (i1 -> rt, rt -> i31) learned before any traced datagram
check "an untraced ping i1 -> $BACKEND is answered (through rt)" \
	lab_in "$LAB_I1" ping -c 1 -W 2 -q "$BACKEND"

# phase_send NAME DST SPORT DPORT: i1 sends N datagrams; the sink gets them all; rt
# reassembled each and fragmented it again to the sender's sizes; i31 reassembled them.
phase_send() {
	local name=$1
	frag_snmp_save "$LAB_RT" "$LAB_I31"
	check_eq "$name: i1 sent $N datagrams of $FRAG_SIZE bytes" \
		"$(frag_send "$LAB_I1" "$2" "$4" "$N" "$FRAG_SIZE" 20 "$3")" "$N"
	frag_sink_wait "sink-$name" "$N" "$FRAG_SIZE"
	check_eq "$name: the sink in i31 received $N whole datagrams" \
		"$(frag_sink_count "sink-$name" "$FRAG_SIZE")" "$N"
	check_eq "$name: kernel: rt took $((3 * N)) fragments, reassembled $N datagrams, none failed (IpReasmReqds IpReasmOKs IpReasmFails)" \
		"$(frag_snmp_since "$LAB_RT" ReasmReqds ReasmOKs ReasmFails)" "$((3 * N)) $N 0"
	check_eq "$name: kernel: rt fragmented $N datagrams again into $((3 * N)) fragments (IpFragOKs IpFragCreates IpFragFails)" \
		"$(frag_snmp_since "$LAB_RT" FragOKs FragCreates FragFails)" "$N $((3 * N)) 0"
	check_eq "$name: kernel: i31 got $((3 * N)) fragments, reassembled $N (IpReasmReqds IpReasmOKs)" \
		"$(frag_snmp_since "$LAB_I31" ReasmReqds ReasmOKs)" "$((3 * N)) $N"
	check "$name: every datagram judged (window passed)" lab_task_wait_judged "$task" "$N"
}

# 1. Plain routing through rt: reassembled and fragmented anew there, colored again.
frag_phase_task route 40061 5061 "$BACKEND"
phase_send route "$BACKEND" 40061 5061
r1=$(report_fetch_text "$task" route)
check_verdict "$r1" "route" "$N" "$N" 0 0
jq_true "$r1" "route: verdict sentence: $N of $N delivered" \
	'.verdict.sentence | test("\\b\($n) of \($n) packets delivered")' --argjson n "$N"
jq_true "$r1" "route: every datagram_fate delivered" 'all(.packets[]; .datagram_fate == "delivered")'
jq_true "$r1" "route: no datagram blamed on rt (no fragment dropped or vanished at rt)" \
	'all(.packets[]; .fate == "delivered")
		and all(.hops[] | select(.node == "rt"); .dropped == 0 and .vanished == 0)'
jq_true "$r1" "route: every fragment h1 port-in -> h1 uplink-out -> rt uplink-in -> rt uplink-out -> h3 uplink-in -> h3 port-out" \
	'all(.packets[]; path == $p)' --argjson p "$THROUGH_RT"
frag_check_layout "$r1" "route" "$N"
jq_true "$r1" "route: per-hop table: 6 rows, each saw $((3 * N)) fragments, nothing lost" \
	'(.hops | length) == 6 and all(.hops[]; .seen == 3 * $n and .dropped == 0 and .vanished == 0)' \
	--argjson n "$N"
jq_true "$r1" "route: every rt uplink-out hop marked refragmented" \
	'[.packets[].hops[] | select(.node == "rt" and .hook == "uplink-out")]
		| length == 3 * $n and all(.[]; .refragmented == true)' --argjson n "$N"
jq_true "$r1" "route: only rt's uplink-out hops marked refragmented" \
	'all(.packets[].hops[] | select(.refragmented == true); .node == "rt" and .hook == "uplink-out")'
jq_true "$r1" "route: verdict sentence: $N datagrams refragmented at rt" \
	'.verdict.sentence | test("\($n) datagrams refragmented at rt")' --argjson n "$N"
jq_true "$r1" "route: every hop named i1 -> $BACKEND (no translation)" \
	'all(.packets[]; . as $p | .flow.src == $c and .flow.dst == $b
		and all(.hops[]; hflow($p) | .src == $c and .dst == $b))' \
	--arg c "$LAB_I1_IP" --arg b "$BACKEND"
jq_true "$r1" "route: task: colored $N (datagrams), delivered $N" \
	'.task.colored == $n and .task.delivered == $n' --argjson n "$N"
jq_true "$r1" "route: no sample left unmatched" '.unmatched == 0'
echo "# route: $(jq_val "$r1" '.verdict.sentence')"
check "route: cancel the task" lab_cli task cancel "$task"

# 2. DNAT on rt after its reassembly: the new fragments are colored again all the same.
check "dnat: rt: VIP $LAB_VIP -> $BACKEND, DNAT only (nftables)" lab_router_lb rt "$LAB_VIP" "$BACKEND" dnat
frag_phase_task dnat 40062 5062 "$LAB_VIP"
phase_send dnat "$LAB_VIP" 40062 5062
check_eq "dnat: rt's DNAT rule counted 1 packet (the nat chain sees a connection's first datagram, reassembled)" \
	"$(nft_counter "$LAB_RT" ip dtlab_lb prerouting)" 1
r2=$(report_fetch_text "$task" dnat)
echo "# dnat: $(jq_val "$r2" '.verdict.sentence')"
check_verdict "$r2" "dnat" "$N" "$N" 0 0
jq_true "$r2" "dnat: verdict sentence: $N of $N delivered, refragmented at rt" \
	'.verdict.sentence | test("\\b\($n) of \($n) packets delivered; \($n) datagrams refragmented at rt")' \
	--argjson n "$N"
jq_true "$r2" "dnat: every datagram_fate delivered, no fragment lost at rt" \
	'all(.packets[]; .datagram_fate == "delivered" and .fate == "delivered")
		and all(.hops[] | select(.node == "rt"); .dropped == 0 and .vanished == 0)'
jq_true "$r2" "dnat: every fragment h1 port-in -> h1 uplink-out -> rt uplink-in -> rt uplink-out -> h3 uplink-in -> h3 port-out" \
	'(.packets | length) == 3 * $n and all(.packets[]; path == $p)' \
	--argjson n "$N" --argjson p "$THROUGH_RT"
jq_true "$r2" "dnat: every rt uplink-out hop marked refragmented" \
	'[.packets[].hops[] | select(.node == "rt" and .hook == "uplink-out")]
		| length == 3 * $n and all(.[]; .refragmented == true)' --argjson n "$N"
jq_true "$r2" "dnat: named i1 -> VIP; the first fragments' hops after rt show the backend" \
	'all(.packets[]; .flow.dst == $v)
		and all(.packets[] | select(.fragment.offset_bytes == 0);
			. as $p | all(.hops[] | select(.node == "h3"); hflow($p) | .dst == $b))' \
	--arg v "$LAB_VIP" --arg b "$BACKEND"
jq_true "$r2" "dnat: task: colored $N (datagrams), delivered $N" \
	'.task.colored == $n and .task.delivered == $n' --argjson n "$N"
jq_true "$r2" "dnat: no sample left unmatched" '.unmatched == 0'

# rt's data plane: phase 1's new fragments colored again, phase 2's not.
check_samples_accounted dnat "$r1" "$r2"
check_range "rt's agent recolored fragments (recolored > 0)" "$(agent_exit rt recolored)" 1 1000000000
check_eq "rt's agent recolored exactly both phases' $((6 * N)) new fragments" \
	"$(agent_exit rt recolored)" $((6 * N))
check_eq "rt's agent colored no datagram of its own, reported no drop" \
	"$(agent_exit rt colored) $(agent_exit rt drops)" "0 0"
check_eq "h1's agent colored $((2 * N)) datagrams, 0 orphan fragments, recolored none" \
	"$(agent_exit h1 colored) $(agent_exit h1 frag_orphan) $(agent_exit h1 recolored)" "$((2 * N)) 0 0"

checks_teardown_clean
