#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_frag_refrag.sh - fragments, scenario 3 (issue 19): the first host's kernel
# fragments a traced datagram again. Three hosts, unicast FDB; i1 sends 20 UDP datagrams
# of 4000 bytes to i31 in each phase, each phase with its own ports, task and sink.
#
# 0. Instance MTU 1500 over a 1450-byte VXLAN device on h1, a plain bridge (no
#    br_netfilter: bridge-nf-call-iptables=0). The bridge cannot forward the 1500-byte
#    fragments to vxlan0 and frees them (br_dev_queue_push_xmit, NOT_SPECIFIED), colored:
#    every datagram dropped at h1, correctly; only the 1068-byte last fragments get
#    through.
# 1. Instance MTU 1500 over a 1450-byte VXLAN device on h1, br_netfilter on h1's bridge
#    (bridge-nf-call-iptables=1, as on every Docker or Kubernetes host; no conntrack
#    rule). i1 sends fragments of 1500, 1500 and 1068 bytes. br_netfilter's output
#    (br_nf_dev_queue_xmit) fragments each 1500-byte fragment again to fit vxlan0, into
#    1444 + 76 bytes (h1: IpFragOKs +40, IpFragCreates +80; no reassembly), and
#    ip_do_fragment writes each new fragment's flags field afresh: the color in its
#    reserved bit is gone from the 80 new fragments, only the 1068-byte last fragment
#    keeps it. Every datagram reaches i31 in 5 fragments. The report must follow them:
#    all 20 delivered, none blamed on h1, h1's uplink-out hops marked refragmented, the
#    verdict naming the refragmentation at h1; h1's agent recolors the new fragments.
# 2. The same MTUs with conntrack on h1's bridge (an iptables FORWARD rule with -m
#    conntrack): the kernel reassembles each datagram on h1 (IpReasmOKs +20; reassembly
#    writes the flags field afresh too: the color is gone) and then refuses to cut it into
#    fragments smaller than the sender's largest (br_nf_dev_queue_xmit: frag_max_size 1500
#    > MTU 1450; IpFragFails +20, freed with NOT_SPECIFIED). Nothing reaches i31: every
#    datagram is lost at h1, and the report must say h1.
# 3. Conntrack kept, instance MTU 1450 again (consistent): h1 reassembles each datagram
#    and fragments it again to the sender's sizes (IpReasmOKs +20, IpFragOKs +20,
#    IpFragCreates +60), the color erased by the reassembly. All delivered; the report
#    must show the refragmentation at h1 and blame nothing on h1.
#
# Phases 1 and 3 need the refragmentation support of issue 19 (recoloring at h1's VXLAN
# device, the REFRAG flag on the uplink-out sample, "refragmented" hops); without it the
# report says the datagrams vanished after h1/pt1 port-in.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtfr" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtfr}"
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

# check_refragmented FILE NAME: delivered, refragmented at h1, nothing blamed on h1.
check_refragmented() {
	local f=$1 name=$2
	check_verdict "$f" "$name" "$N" "$N" 0 0
	jq_true "$f" "$name: no datagram blamed on h1 (no fragment dropped or vanished at h1)" \
		'all(.packets[]; .fate == "delivered" or (lasthop.node != "h1"))
			and all(.hops[] | select(.node == "h1"); .dropped == 0 and .vanished == 0)'
	jq_true "$f" "$name: h1's uplink-out hops marked refragmented" \
		'any(.packets[].hops[]; .node == "h1" and .hook == "uplink-out" and .refragmented == true)'
	jq_true "$f" "$name: only h1's uplink-out hops marked refragmented" \
		'all(.packets[].hops[] | select(.refragmented == true); .node == "h1" and .hook == "uplink-out")'
	jq_true "$f" "$name: verdict sentence: refragmented at h1" \
		'.verdict.sentence | test("refragmented at h1")'
	jq_true "$f" "$name: every datagram_fate delivered" 'all(.packets[]; .datagram_fate == "delivered")'
	jq_true "$f" "$name: task: colored $N (datagrams), delivered $N" \
		'.task.colored == $n and .task.delivered == $n' --argjson n "$N"
	jq_true "$f" "$name: no sample left unmatched" '.unmatched == 0'
	echo "# $name: $(jq_val "$f" '.verdict.sentence')"
}

# 0. A plain bridge, MTU 1500 over 1450: the large fragments dropped on h1.
check "phase 0: instance MTU 1500 (i1 eth0, h1 pt1)" frag_instance_mtu h1 1500
check "phase 0: h1 vxlan0 MTU 1450" frag_vxlan_mtu h1 1450
check "phase 0: h1's bridge does not call iptables (no br_netfilter)" \
	lab_in "$LAB_H1" sysctl -q -w net.bridge.bridge-nf-call-iptables=0
frag_phase_task p0 40030 5030
check_eq "phase 0: i1 sent $N datagrams of $FRAG_SIZE bytes" \
	"$(frag_send "$LAB_I1" "$LAB_I31_IP" 5030 "$N" "$FRAG_SIZE" 20 40030)" "$N"
check "phase 0: every datagram judged (window passed)" lab_task_wait_judged "$task" "$N"
check_eq "phase 0: the sink in i31 received nothing" "$(frag_sink_count sink-p0)" 0
r0=$(report_fetch_text "$task" refrag-p0)
check_verdict "$r0" "phase 0" "$N" 0 "$N" 0
jq_true "$r0" "phase 0: verdict: dropped at h1, reason NOT_SPECIFIED" \
	'.verdict.at.node == "h1" and .verdict.reason == "NOT_SPECIFIED"'
jq_true "$r0" "phase 0: every 1500-byte fragment dropped on h1 in br_dev_queue_push_xmit" \
	'[.packets[] | select(.len == 1500)] | length == 2 * $n and all(.[]; .fate == "dropped"
		and lasthop.node == "h1" and (.drop.where | startswith("br_dev_queue_push_xmit")))' \
	--argjson n "$N"
jq_true "$r0" "phase 0: every last fragment (1068 bytes) delivered" \
	'[.packets[] | select(.len == 1068)] | length == $n and all(.[]; .fate == "delivered")' \
	--argjson n "$N"
echo "# phase 0: $(jq_val "$r0" '.verdict.sentence')"
check "phase 0: cancel the task" lab_cli task cancel "$task"

# 1. br_netfilter, MTU 1500 over 1450: each 1500-byte fragment cut again on h1.
check "phase 1: h1's bridge calls iptables (br_netfilter), no conntrack rule" \
	lab_in "$LAB_H1" sysctl -q -w net.bridge.bridge-nf-call-iptables=1
frag_phase_task p1 40031 5031
frag_snmp_save "$LAB_H1" "$LAB_I31"
check_eq "phase 1: i1 sent $N datagrams of $FRAG_SIZE bytes" \
	"$(frag_send "$LAB_I1" "$LAB_I31_IP" 5031 "$N" "$FRAG_SIZE" 20 40031)" "$N"
frag_sink_wait sink-p1 "$N" "$FRAG_SIZE"
check_eq "phase 1: the sink in i31 received $N whole datagrams" "$(frag_sink_count sink-p1 "$FRAG_SIZE")" "$N"
check_eq "phase 1: kernel: h1 cut $((2 * N)) fragments into $((4 * N)), reassembled none (IpFragOKs IpFragCreates IpReasmReqds)" \
	"$(frag_snmp_since "$LAB_H1" FragOKs FragCreates ReasmReqds)" "$((2 * N)) $((4 * N)) 0"
check_eq "phase 1: kernel: i31 got $((5 * N)) fragments, reassembled $N (IpReasmReqds IpReasmOKs)" \
	"$(frag_snmp_since "$LAB_I31" ReasmReqds ReasmOKs)" "$((5 * N)) $N"
check "phase 1: every datagram judged (window passed)" lab_task_wait_judged "$task" "$N"
r1=$(report_fetch_text "$task" refrag-p1)
check_refragmented "$r1" "phase 1"
check "phase 1: cancel the task" lab_cli task cancel "$task"

# 2. conntrack on h1's bridge, same MTUs: reassembled, then refused and freed on h1.
check "phase 2: conntrack on h1's bridge (iptables FORWARD -m conntrack)" frag_bridge_conntrack h1
frag_phase_task p2 40032 5032
frag_snmp_save "$LAB_H1" "$LAB_I31"
check_eq "phase 2: i1 sent $N datagrams of $FRAG_SIZE bytes" \
	"$(frag_send "$LAB_I1" "$LAB_I31_IP" 5032 "$N" "$FRAG_SIZE" 20 40032)" "$N"
check "phase 2: every datagram judged (window passed)" lab_task_wait_judged "$task" "$N"
check_eq "phase 2: the sink in i31 received nothing" "$(frag_sink_count sink-p2)" 0
check_eq "phase 2: kernel: h1 reassembled $N datagrams and failed to fragment them again (IpReasmOKs IpFragFails IpFragOKs)" \
	"$(frag_snmp_since "$LAB_H1" ReasmOKs FragFails FragOKs)" "$N $N 0"
r2=$(report_fetch_text "$task" refrag-p2)
jq_true "$r2" "phase 2: verdict: $N judged, none delivered, all lost (dropped or vanished)" \
	'.verdict | .judged == $n and .delivered == 0 and .dropped + .vanished == $n and .in_flight == 0' \
	--argjson n "$N"
jq_true "$r2" "phase 2: verdict: lost at h1" '.verdict.at.node == "h1"'
jq_true "$r2" "phase 2: every fragment's last hop on h1, datagram_fate not delivered" \
	'all(.packets[]; lasthop.node == "h1" and .datagram_fate != "delivered")'
echo "# phase 2: $(jq_val "$r2" '.verdict.sentence')"
check "phase 2: cancel the task" lab_cli task cancel "$task"

# 3. conntrack kept, MTU consistent again: reassembled and cut to the same sizes on h1.
check "phase 3: instance MTU 1450 again (i1 eth0, h1 pt1)" frag_instance_mtu h1 1450
frag_phase_task p3 40033 5033
frag_snmp_save "$LAB_H1" "$LAB_I31"
check_eq "phase 3: i1 sent $N datagrams of $FRAG_SIZE bytes" \
	"$(frag_send "$LAB_I1" "$LAB_I31_IP" 5033 "$N" "$FRAG_SIZE" 20 40033)" "$N"
frag_sink_wait sink-p3 "$N" "$FRAG_SIZE"
check_eq "phase 3: the sink in i31 received $N whole datagrams" "$(frag_sink_count sink-p3 "$FRAG_SIZE")" "$N"
check_eq "phase 3: kernel: h1 reassembled $N datagrams and cut them into $((3 * N)) fragments (IpReasmOKs IpFragOKs IpFragCreates)" \
	"$(frag_snmp_since "$LAB_H1" ReasmOKs FragOKs FragCreates)" "$N $N $((3 * N))"
check "phase 3: every datagram judged (window passed)" lab_task_wait_judged "$task" "$N"
r3=$(report_fetch_text "$task" refrag-p3)
check_refragmented "$r3" "phase 3"
frag_check_layout "$r3" "phase 3" "$N"

# h1's data plane: the new fragments colored again, and every fragment that left h1
# sampled at its uplink-out.
lab_bg_stop agent-h1
lab_bg_stop agent-h3
check_range "h1's agent recolored fragments (recolored > 0)" "$(agent_exit h1 recolored)" 1 1000000000
check_eq "h1's agent recolored every new fragment: $((4 * N)) in phase 1, $((3 * N)) in phase 3" \
	"$(agent_exit h1 recolored)" $((4 * N + 3 * N))
check_eq "h1's agent colored $((4 * N)) datagrams (20 a phase), 0 orphan fragments" \
	"$(agent_exit h1 colored) $(agent_exit h1 frag_orphan)" "$((4 * N)) 0"
check_eq "h1's agent reported the $((2 * N)) drops of phase 0 only (phase 2's are freed uncolored)" \
	"$(agent_exit h1 drops)" $((2 * N))

checks_teardown_clean
