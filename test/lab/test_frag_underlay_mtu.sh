#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_frag_underlay_mtu.sh - fragments, scenario 4 (issue 19): an underlay whose MTU is
# too small for the encapsulated packets. Three hosts, unicast FDB, instance MTU 1450,
# vxlan0 MTU 1450; h1's underlay link has MTU 1400 at both ends (h1's ul0 and its port
# ul-h1 on the underlay bridge). i1 sends 20 UDP datagrams of 4000 bytes (inner fragments
# of 1444, 1444 and 1180 bytes) to i31.
#
# VXLAN adds 50 bytes: a 1444-byte inner fragment is a 1494-byte outer packet. The VXLAN
# device sends it without DF (the kernel's default, df unset), so h1's IP output cuts the
# outer packet into two outer fragments (h1: IpFragOKs +40, IpFragCreates +80; the
# 1230-byte ones fit). The first outer fragment carries the outer UDP and VXLAN headers
# and the whole inner IPv4 header, color included; h1's uplink-out samples it, and h3's
# uplink-in (tc ingress, before the IP stack) samples it again; h3 reassembles the outer
# packet (IpReasmOKs +40) before its VXLAN device decapsulates it. The inner packet never
# changes: the path is followed hop by hop, all delivered, nothing lost at h1.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtfe" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtfe}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
# shellcheck source=test/lab/frag.sh
. "$(dirname "${BASH_SOURCE[0]}")/frag.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
N=20
UL_MTU=1400
PATH4='["h1/pt1/port-in","h1/ul0/uplink-out","h3/ul0/uplink-in","h3/pt1/port-out"]'

frag_lab_up
check "static neighbours i1 <-> i31 (no ARP in the traced window)" lab_static_neighbours i1 i31
check "underlay MTU $UL_MTU on h1's link (ul0 and ul-h1)" frag_underlay_mtu h1 "$UL_MTU"
check_eq "h1's vxlan0 keeps MTU $LAB_MTU (more than the underlay carries in one packet)" \
	"$(ip -n "$LAB_H1" -o link show vxlan0 | grep -o 'mtu [0-9]*')" "mtu $LAB_MTU"
check "UDP sink in i31 (:$FRAG_DPORT)" frag_sink_start sink "$LAB_I31" "$FRAG_DPORT"
check "capture: the underlay at h1's ul0" lab_capture_start ul-h1 "$LAB_H1" ul0 \
	"src host $LAB_H1_UL_IP and dst host $LAB_H3_UL_IP"

frag_task

h1_fok=$(frag_snmp "$LAB_H1" Ip FragOKs)
h1_fcr=$(frag_snmp "$LAB_H1" Ip FragCreates)
h3_rok=$(frag_snmp "$LAB_H3" Ip ReasmOKs)
check_eq "i1 sent $N datagrams of $FRAG_SIZE bytes" \
	"$(frag_send "$LAB_I1" "$LAB_I31_IP" "$FRAG_DPORT" "$N" "$FRAG_SIZE")" "$N"
frag_sink_wait sink "$N" "$FRAG_SIZE"
check_eq "the sink in i31 received $N whole datagrams" "$(frag_sink_count sink "$FRAG_SIZE")" "$N"
check_eq "kernel: h1 cut $((2 * N)) outer packets into $((4 * N)) outer fragments (IpFragOKs IpFragCreates)" \
	"$(frag_snmp_delta "$LAB_H1" Ip FragOKs "$h1_fok") $(frag_snmp_delta "$LAB_H1" Ip FragCreates "$h1_fcr")" \
	"$((2 * N)) $((4 * N))"
check_eq "kernel: h3 reassembled $((2 * N)) outer packets (IpReasmOKs)" \
	"$(frag_snmp_delta "$LAB_H3" Ip ReasmOKs "$h3_rok")" "$((2 * N))"
check "every datagram judged (window passed)" lab_task_wait_judged "$task" "$N"
lab_capture_stop ul-h1
# outer fragments on the wire: the first of each carries UDP (to port 4789), the second
# only payload (an offset, no UDP header)
check_eq "underlay: $((2 * N)) outer fragments with MF and VXLAN, $((2 * N)) with an offset, $N VXLAN packets whole" \
	"$(frag_capture_count ul-h1 'ip[6] & 0x20 != 0 and udp dst port 4789') $(frag_capture_count ul-h1 'ip[6:2] & 0x1fff != 0') $(frag_capture_count ul-h1 'ip[6:2] & 0x3fff == 0 and udp dst port 4789')" \
	"$((2 * N)) $((2 * N)) $N"
check_eq "underlay: no outer packet larger than $UL_MTU bytes" \
	"$(frag_capture_count ul-h1 "greater $((UL_MTU + 14 + 1))")" 0

r=$(report_fetch_text "$task" underlay-mtu)
check_verdict "$r" "underlay mtu" "$N" "$N" 0 0
frag_check_layout "$r" "underlay mtu" "$N"
jq_true "$r" "every fragment delivered along the full path, datagram_fate delivered" \
	'all(.packets[]; .fate == "delivered" and .datagram_fate == "delivered" and path == $p)' \
	--argjson p "$PATH4"
jq_true "$r" "per-hop table: nothing dropped or vanished anywhere (nothing at h1)" \
	'all(.hops[]; .dropped == 0 and .vanished == 0)'
jq_true "$r" "no hop marked refragmented (the inner packets were not touched)" \
	'all(.packets[].hops[]; .refragmented != true)'
jq_true "$r" "no sample left unmatched" '.unmatched == 0'
echo "# verdict: $(jq_val "$r" '.verdict.sentence')"

check_samples_accounted "underlay mtu" "$r"
check_eq "h1 sampled each fragment twice (port-in, the first outer fragment at uplink-out); h3 twice" \
	"$(agent_exit h1 sampled) $(agent_exit h3 sampled)" "$((6 * N)) $((6 * N))"
check_eq "no agent reported a drop (h1 h2 h3)" \
	"$(agent_exit h1 drops) $(agent_exit h2 drops) $(agent_exit h3 drops)" "0 0 0"

checks_teardown_clean
