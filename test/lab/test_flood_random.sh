#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_flood_random.sh - copies, scenario 4 (issue 13): random loss on the destination's
# uplink, on an overlay that floods (3 hosts and gw, --fdb flood). An iptables rule in h3's
# INPUT chain drops 30% of the VXLAN packets from h1 that carry echo requests to i31
# (u32 on the inner packet, statistic, mode random): only the copies that go to h3 meet
# it; those to h2 and gw are discarded by their bridges.
#
# The number dropped in the report is exactly the rule's counter and the number delivered
# exactly the pings answered, the loss is at h3 uplink-in with NETFILTER_DROP, the packets
# reported dropped are exactly those i31 never got (by IPv4 id), and every packet, dropped
# or not, has its two filtered copies, outside the verdict and the loss table.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtxr" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtxr}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
PINGS=${DT_LOSS_PINGS:-100}
P_DROP=0.30
K_SIGMA=4.5
BYSTANDERS='["h2","gw"]'
DEST_PATH='["h1/pt1/port-in","h1/ul0/uplink-out","h3/ul0/uplink-in","h3/pt1/port-out"]'
PATH_TO_DROP='["h1/pt1/port-in","h1/ul0/uplink-out","h3/ul0/uplink-in"]'

flood_lab_up "lab up: h1, h2, h3 and gw flood to each other, agents on each"
flood_warm_up h2 gw
# No ARP crosses the lossy underlay: every packet lost there is a traced echo request.
check "static neighbours i1 <-> i31" lab_static_neighbours i1 i31

checks_ping_task i31

# Only the traced echo requests: a flooded lab also carries ARP and other hosts' frames in
# VXLAN from h1 now and then, and a drop of one of those is no traced packet's. u32 reads
# the inner packet behind the outer IPv4 (20 bytes), UDP (8), VXLAN (8) and Ethernet (14)
# headers: its protocol (byte 59) is ICMP, its destination (bytes 66-69) i31, and its
# ICMP type (byte 70) an echo request.
IFS=. read -r o1 o2 o3 o4 <<<"$LAB_I31_IP"
INNER_ECHO_TO_I31="56&0xFF=1 && 66=$(printf '0x%02x%02x%02x%02x' "$o1" "$o2" "$o3" "$o4") && 70>>24=8"
check "h3: iptables drops 30% of the VXLAN packets from h1 that carry echo requests to i31" \
	lab_in "$LAB_H3" iptables -w -I INPUT 1 -i ul0 -s "$LAB_H1_UL_IP" -p udp --dport 4789 \
	-m u32 --u32 "$INNER_ECHO_TO_I31" -m statistic --mode random --probability "$P_DROP" -j DROP
check "capture: echo requests at i31 eth0" lab_capture_start req-i31 "$LAB_I31" eth0 \
	"icmp and src host $LAB_I1_IP and dst host $LAB_I31_IP and icmp[icmptype] == icmp-echo"

out=$(lab_in "$LAB_I1" ping -c "$PINGS" -i 0.01 -W 1 -q "$LAB_I31_IP" 2>&1)
received=$(sed -nE 's/.* ([0-9]+) received.*/\1/p' <<<"$out")
dropped_fw=$(lab_in "$LAB_H3" iptables -w -L INPUT 1 -v -x -n 2>/dev/null | awk '{print $1}')
echo "# ping: $(grep -m1 'packets transmitted' <<<"$out"); h3's rule dropped $dropped_fw"
check_eq "every ping is either answered or dropped by the rule" \
	"$((${received:-0} + ${dropped_fw:-0}))" "$PINGS"
check "every packet judged (window passed)" lab_task_wait_judged "$task" "$PINGS" 30
lab_capture_stop req-i31

r=$(report_fetch_text "$task" flood-random)
check_verdict "$r" "flood random" "$PINGS" "${received:-?}" "${dropped_fw:-?}" 0
read -r lo hi < <(binomial_bounds "$PINGS" "$P_DROP" "$K_SIGMA")
check_range "dropped count within 30% +- $K_SIGMA sd of $PINGS ($lo..$hi)" \
	"$(jq_val "$r" '.verdict.dropped')" "$lo" "$hi"
jq_true "$r" "verdict: at node h3, reason NETFILTER_DROP" \
	'.verdict.at.node == "h3" and .verdict.reason == "NETFILTER_DROP"'
jq_true "$r" "verdict sentence names the count, h3 and NETFILTER_DROP" \
	'.verdict.sentence | test("\($d) of \($n)") and test("h3") and test("NETFILTER_DROP")' \
	--argjson n "$PINGS" --argjson d "${dropped_fw:-0}"
jq_true "$r" "every dropped packet: h1 port-in -> h1 uplink-out -> h3 uplink-in -> drop on h3 ul0, NETFILTER_DROP" \
	'[.packets[] | select(.fate == "dropped")] | length == $d and all(.[];
		dpath | .[:-1] == $p and .[-1] == "h3/ul0/drop") and all(.[]; .drop.name == "NETFILTER_DROP")' \
	--argjson p "$PATH_TO_DROP" --argjson d "${dropped_fw:-0}"
jq_true "$r" "every delivered packet: the destination branch to h3 port-out" \
	'[.packets[] | select(.fate == "delivered")] | length == $r and all(.[]; dpath == $p)' \
	--argjson p "$DEST_PATH" --argjson r "${received:-0}"
jq_true "$r" "every packet: its destination known, 2 copies, filtered at h2 and gw" \
	'all(.packets[]; .destination_known == true and .copies == 2
		and ([copy_ends[] | "\(.node) \(.copy_fate)"] | sort == ["gw filtered", "h2 filtered"]))'
check_tree "$r" "flood random"
check_hop_latency_tree "$r" "flood random"
jq_true "$r" "per-hop table: h3 uplink-in seen $PINGS, dropped $dropped_fw, top reason NETFILTER_DROP" \
	'row("h3"; "ul0"; "uplink-in"; "request") | .seen == $n and .dropped == $d
		and .top_reason == "NETFILTER_DROP"' --argjson n "$PINGS" --argjson d "${dropped_fw:-0}"
jq_true "$r" "per-hop table: h1 port-in and uplink-out saw $PINGS each (not the copies), lost none" \
	'(row("h1"; "pt1"; "port-in"; "request") | .seen == $n and .dropped == 0 and .vanished == 0)
	and (row("h1"; "ul0"; "uplink-out"; "request") | .seen == $n and .dropped == 0 and .vanished == 0)' \
	--argjson n "$PINGS"
jq_true "$r" "per-hop table: h3 port-out saw the $received delivered" \
	'row("h3"; "pt1"; "port-out"; "request") | .seen == $r' --argjson r "${received:-0}"
check_loss_table_destination "$r" "flood random" "$BYSTANDERS"
check_copies "$r" "flood random" "$(copies_rows request "$PINGS" h2 filtered gw filtered)"
jq_true "$r" "no sample left unmatched" '.unmatched == 0'
echo "# verdict: $(jq_val "$r" '.verdict.sentence')"

# The packets dropped in the report are exactly the ones i31 never received.
got_ids=$(capture_ip_ids req-i31 icmp | tr '\n' ' ')
delivered_ids=$(jq_val "$r" '[.packets[] | select(.fate == "delivered") | .ip_id] | sort | map(tostring) | join(" ")')
dropped_ids=$(jq_val "$r" '[.packets[] | select(.fate == "dropped") | .ip_id] | sort | map(tostring) | join(" ")')
check_eq "the delivered packets' ip ids are exactly those i31 received" "$delivered_ids" "${got_ids% }"
both=$(comm -12 <(tr ' ' '\n' <<<"$dropped_ids" | sort) <(tr ' ' '\n' <<<"$got_ids" | sort) | grep -c . || true)
check_eq "no packet reported dropped reached i31" "$both" 0

check_samples_accounted "flood random" "$r"
check_eq "kernel: drops reported by the agents of h1 h2 h3 gw" \
	"$(agent_exit h1 drops) $(agent_exit h2 drops) $(agent_exit h3 drops) $(agent_exit gw drops)" \
	"0 $PINGS ${dropped_fw:-?} $PINGS"

checks_teardown_clean
