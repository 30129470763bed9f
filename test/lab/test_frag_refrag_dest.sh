#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_frag_refrag_dest.sh - fragments (issue 19): conntrack on the destination host's
# bridge. Three hosts, unicast FDB, instance MTU 1450 everywhere (consistent); h3 has
# conntrack on its bridge (br_netfilter and an iptables FORWARD rule with -m conntrack),
# as a Docker or Kubernetes host has. i1 sends 20 UDP datagrams of 4000 bytes (3
# fragments each) to i31.
#
# h3's kernel reassembles each datagram between its VXLAN device and its bridge port
# (IpReasmOKs +20) and fragments it again to the sender's sizes on the way to pt1
# (IpFragOKs +20, IpFragCreates +60). Reassembly writes the IPv4 flags field afresh, so
# the color is gone before h3's port-out: all 20 datagrams reach i31, yet no port-out
# samples them. The report must not blame h3 for a datagram it delivered: all 20
# delivered, the refragmentation shown on h3.
#
# This is the case the VXLAN device's egress (the first host's recoloring) does not
# cover: the color must be found again at the destination's port, or its loss reported
# as a refragmentation, not as a loss. It fails until then.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtfd" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtfd}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
# shellcheck source=test/lab/frag.sh
. "$(dirname "${BASH_SOURCE[0]}")/frag.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
N=20

frag_lab_up
check "static neighbours i1 <-> i31 (no ARP in the traced window)" lab_static_neighbours i1 i31
check "conntrack on h3's bridge (br_netfilter, iptables FORWARD -m conntrack)" frag_bridge_conntrack h3
check "UDP sink in i31 (:$FRAG_DPORT)" frag_sink_start sink "$LAB_I31" "$FRAG_DPORT"

frag_task

reasm_ok=$(frag_snmp "$LAB_H3" Ip ReasmOKs)
frag_ok=$(frag_snmp "$LAB_H3" Ip FragOKs)
frag_cr=$(frag_snmp "$LAB_H3" Ip FragCreates)
check_eq "i1 sent $N datagrams of $FRAG_SIZE bytes" \
	"$(frag_send "$LAB_I1" "$LAB_I31_IP" "$FRAG_DPORT" "$N" "$FRAG_SIZE")" "$N"
frag_sink_wait sink "$N" "$FRAG_SIZE"
check_eq "the sink in i31 received $N whole datagrams" "$(frag_sink_count sink "$FRAG_SIZE")" "$N"
check_eq "kernel: h3 reassembled $N datagrams and cut them into $((3 * N)) fragments again (IpReasmOKs IpFragOKs IpFragCreates)" \
	"$(frag_snmp_delta "$LAB_H3" Ip ReasmOKs "$reasm_ok") $(frag_snmp_delta "$LAB_H3" Ip FragOKs "$frag_ok") $(frag_snmp_delta "$LAB_H3" Ip FragCreates "$frag_cr")" \
	"$N $N $((3 * N))"
check "every datagram judged (window passed)" lab_task_wait_judged "$task" "$N"

r=$(report_fetch_text "$task" refrag-dest)
check_verdict "$r" "refrag at the destination" "$N" "$N" 0 0
jq_true "$r" "no datagram blamed on h3 (no fragment dropped or vanished at h3)" \
	'all(.packets[]; .fate == "delivered" or (lasthop.node != "h3"))
		and all(.hops[] | select(.node == "h3"); .dropped == 0 and .vanished == 0)'
jq_true "$r" "every datagram_fate delivered" 'all(.packets[]; .datagram_fate == "delivered")'
jq_true "$r" "a hop on h3 marked refragmented" \
	'any(.packets[].hops[]; .node == "h3" and .refragmented == true)'
jq_true "$r" "verdict sentence: refragmented at h3" '.verdict.sentence | test("refragmented at h3")'
frag_check_layout "$r" "refrag at the destination" "$N"
jq_true "$r" "no sample left unmatched" '.unmatched == 0'
echo "# verdict: $(jq_val "$r" '.verdict.sentence')"

checks_teardown_clean
