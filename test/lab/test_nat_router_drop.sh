#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_nat_router_drop.sh - NAT inside the overlay (issue 20): the translating router drops
# the packets after the translation. The lab of test_nat_lb.sh (3 hosts, unicast FDB,
# router rt serving the VIP 10.99.0.100 with full NAT to i31 on h3), and an nftables rule
# in rt's forward chain (after the DNAT of prerouting, before the SNAT of postrouting) that
# drops the echo requests to the backend (ip daddr 10.100.0.31: it matches only what the
# DNAT made). The task is named as the client sees the flow (icmp i1 -> VIP, both
# directions). The report must say: every request dropped at rt, reason NETFILTER_DROP,
# after rt uplink-in; the drops are the task's (named i1 -> VIP) although the dropped
# packet's destination is the backend; the drop hop shows that tuple (i1 -> i31, not yet
# SNATed); nothing reached h3; no reply; nothing unmatched.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtnr" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtnr}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/router.sh
. "$(dirname "${BASH_SOURCE[0]}")/router.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
PINGS=10
ICMP_ID=4444
DROP_PREFIX='["h1/pt1/port-in","h1/ul0/uplink-out","rt/ul0/uplink-in"]'

nat_lab_up
nat_router_up
nat_vip_full

nat_vip_task

drop_up() {
	lab_in "$LAB_RT" nft -f - <<-EOF
		table ip dtlab_fw {
			chain forward {
				type filter hook forward priority filter; policy accept;
				ip daddr $LAB_I31_IP icmp type echo-request counter drop
			}
		}
	EOF
}
check "rt: nftables forward rule drops echo requests to $LAB_I31_IP (after the DNAT)" drop_up
check "capture: the overlay traffic at h3's ul0" lab_capture_start ul-h3 "$LAB_H3" ul0 "udp port 4789"

check_eq "$PINGS pings i1 -> VIP: none answered" "$(ping_received "$LAB_I1" "$LAB_VIP" "$PINGS" -e "$ICMP_ID")" 0
check_eq "rt's rule counted $PINGS drops" "$(nft_counter "$LAB_RT" ip dtlab_fw forward)" "$PINGS"
check "every packet judged (window passed)" lab_task_wait_judged "$task" "$PINGS"
lab_capture_stop ul-h3
check_eq "h3 received no echo request" "$(capture_vxlan_count ul-h3 'ICMP echo request')" 0

r=$(report_fetch_text "$task" router-drop)
check_verdict "$r" router-drop "$PINGS" 0 "$PINGS" 0
jq_true "$r" "router-drop: verdict at rt, reason NETFILTER_DROP" \
	'.verdict.at.node == "rt" and .verdict.reason == "NETFILTER_DROP"'
jq_true "$r" "router-drop: verdict sentence names the count, rt and NETFILTER_DROP" \
	'.verdict.sentence | test("\($n) of \($n)") and test("rt/") and test("NETFILTER_DROP")' \
	--argjson n "$PINGS"
jq_true "$r" "router-drop: $PINGS requests, no reply, every one dropped with NETFILTER_DROP" \
	'([req] | length == $n) and ([rep] | length == 0)
	and all(.packets[]; .fate == "dropped" and .drop.name == "NETFILTER_DROP")' --argjson n "$PINGS"
jq_true "$r" "router-drop: every drop: a raw reason > 1 and a kernel location" \
	'all(.packets[]; .drop.reason > 1 and (.drop.where | type == "string" and length > 0))'
jq_true "$r" "router-drop: every path h1 port-in -> h1 uplink-out -> rt uplink-in -> drop on rt" \
	'all(.packets[]; path[:-1] == $p and lasthop.node == "rt" and lasthop.hook == "drop")' \
	--argjson p "$DROP_PREFIX"
jq_true "$r" "router-drop: every drop is timed after rt uplink-in (same node, same clock)" \
	'all(.packets[]; lasthop.ts_ns >= before_drop.ts_ns)'
jq_true "$r" "router-drop: the drop hop shows the DNATed tuple ($LAB_I1_IP -> $LAB_I31_IP); the packet is named i1 -> VIP" \
	'all(.packets[]; . as $p | (lasthop | hflow($p) | .src == $c and .dst == $b)
		and .flow.src == $c and .flow.dst == $v and .flow.sport == $id and .direction == "request")' \
	--arg b "$LAB_I31_IP" --arg c "$LAB_I1_IP" --arg v "$LAB_VIP" --argjson id "$ICMP_ID"
jq_true "$r" "router-drop: per-hop table: rt uplink-in seen $PINGS, dropped $PINGS, top reason NETFILTER_DROP" \
	'row("rt"; "ul0"; "uplink-in"; "request") | .seen == $n and .dropped == $n
		and .top_reason == "NETFILTER_DROP"' --argjson n "$PINGS"
jq_true "$r" "router-drop: per-hop table: no row at h3 or h2, h1 lost nothing" \
	'all(.hops[]; .node != "h3" and .node != "h2")
	and all(.hops[] | select(.node == "h1"); .dropped == 0 and .vanished == 0 and .seen == $n)' \
	--argjson n "$PINGS"
jq_true "$r" "router-drop: exactly one drop hop per packet" \
	'all(.packets[]; [.hops[] | select(.hook == "drop")] | length == 1)'
jq_true "$r" "router-drop: no sample left unmatched (the translated drops were matched)" '.unmatched == 0'
check_eq "router-drop: text report: every drop hop at rt says (dst $LAB_VIP becomes $LAB_I31_IP) and nothing of the source" \
	"$(text_hops "$LAB_DIR/report-router-drop.txt" 'rt/br0 +drop' "(dst $LAB_VIP becomes $LAB_I31_IP)")" "$PINGS"
echo "# verdict: $(jq_val "$r" '.verdict.sentence')"
check_samples_accounted router-drop "$r"
check_eq "rt's agent reported exactly the $PINGS drops" "$(agent_exit rt drops)" "$PINGS"
check_eq "h1's agent reported no drop" "$(agent_exit h1 drops)" 0

checks_teardown_clean
