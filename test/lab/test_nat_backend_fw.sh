#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_nat_backend_fw.sh - NAT inside the overlay (issue 20): the backend's host drops the
# requests behind a load balancer. The lab of test_nat_lb.sh (3 hosts, unicast FDB, router
# rt serving the VIP 10.99.0.100 with full NAT to i31 on h3), and an nftables rule in h3's
# bridge (forward hook, before br_netfilter) that drops the echo requests as they arrive
# translated (10.100.0.250 -> 10.100.0.31). The task is named as the client sees the flow
# (icmp i1 -> VIP, both directions). The report must say: every request dropped at h3,
# reason NETFILTER_DROP, after h3 uplink-in, after rt's translation; the router lost
# nothing; the drops are the task's (named i1 -> VIP) although their tuple is the
# translated one; no reply; nothing unmatched.
#
# Then the rule goes and the same flow (same ICMP id, so the same conntrack entry on rt)
# is answered: the translation was learned from the dropped requests, so h3 had the reply
# key armed already and every one of these replies is colored and delivered.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtnf" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtnf}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/router.sh
. "$(dirname "${BASH_SOURCE[0]}")/router.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
PINGS=10
AFTER=5 # pings once the rule is removed
ICMP_ID=4343
DROP_PREFIX='["h1/pt1/port-in","h1/ul0/uplink-out","rt/ul0/uplink-in","rt/ul0/uplink-out","h3/ul0/uplink-in"]'
REQ_PATH='["h1/pt1/port-in","h1/ul0/uplink-out","rt/ul0/uplink-in","rt/ul0/uplink-out","h3/ul0/uplink-in","h3/pt1/port-out"]'
REP_PATH='["h3/pt1/port-in","h3/ul0/uplink-out","rt/ul0/uplink-in","rt/ul0/uplink-out","h1/ul0/uplink-in","h1/pt1/port-out"]'

nat_lab_up
nat_router_up
nat_vip_full

nat_vip_task

# The firewall of the backend's host: h3's bridge drops the echo requests as rt sent them.
check "h3: nftables bridge rule drops echo requests $LAB_RT_IP -> $LAB_I31_IP" \
	nft_bridge_drop "$LAB_H3" dtlab_fw forward "ip saddr $LAB_RT_IP ip daddr $LAB_I31_IP icmp type echo-request"
check "capture: echo requests at i31 eth0" lab_capture_start req-i31 "$LAB_I31" eth0 "icmp[icmptype] == icmp-echo"

check_eq "$PINGS pings i1 -> VIP: none answered" "$(ping_received "$LAB_I1" "$LAB_VIP" "$PINGS" -e "$ICMP_ID")" 0
check_eq "h3's rule counted $PINGS drops" "$(nft_counter "$LAB_H3" bridge dtlab_fw forward)" "$PINGS"
check "every packet judged (window passed)" lab_task_wait_judged "$task" "$PINGS"
lab_capture_stop req-i31
check_eq "i31 received no echo request" "$(lab_capture_count req-i31)" 0

r=$(report_fetch_text "$task" backend-fw)
check_verdict "$r" backend-fw "$PINGS" 0 "$PINGS" 0
jq_true "$r" "backend-fw: verdict at h3 (the backend's host), reason NETFILTER_DROP" \
	'.verdict.at.node == "h3" and .verdict.reason == "NETFILTER_DROP"'
jq_true "$r" "backend-fw: verdict sentence names the count, h3 and NETFILTER_DROP, not rt" \
	'.verdict.sentence | test("\($n) of \($n)") and test("h3") and test("NETFILTER_DROP") and (test("rt/") | not)' \
	--argjson n "$PINGS"
jq_true "$r" "backend-fw: $PINGS requests, no reply, every one dropped with NETFILTER_DROP" \
	'([req] | length == $n) and ([rep] | length == 0)
	and all(.packets[]; .fate == "dropped" and .drop.name == "NETFILTER_DROP")' --argjson n "$PINGS"
jq_true "$r" "backend-fw: every path h1 port-in -> h1 uplink-out -> rt uplink-in -> rt uplink-out -> h3 uplink-in -> drop on h3" \
	'all(.packets[]; path[:-1] == $p and lasthop.node == "h3" and lasthop.hook == "drop")' \
	--argjson p "$DROP_PREFIX"
jq_true "$r" "backend-fw: every drop is timed after h3 uplink-in (same node, same clock)" \
	'all(.packets[]; lasthop.ts_ns >= before_drop.ts_ns)'
jq_true "$r" "backend-fw: the drop hop shows the translated tuple ($LAB_RT_IP -> $LAB_I31_IP); the packet is named i1 -> VIP" \
	'all(.packets[]; . as $p | (lasthop | hflow($p) | .src == $r and .dst == $b)
		and .flow.src == $c and .flow.dst == $v and .flow.sport == $id)' \
	--arg r "$LAB_RT_IP" --arg b "$LAB_I31_IP" --arg c "$LAB_I1_IP" --arg v "$LAB_VIP" --argjson id "$ICMP_ID"
jq_true "$r" "backend-fw: every packet's destination is known (i31, hosted by h3)" \
	'all(.packets[]; .destination_known == true)'
jq_true "$r" "backend-fw: per-hop table: h3 uplink-in seen $PINGS, dropped $PINGS, top reason NETFILTER_DROP" \
	'row("h3"; "ul0"; "uplink-in"; "request") | .seen == $n and .dropped == $n
		and .top_reason == "NETFILTER_DROP"' --argjson n "$PINGS"
jq_true "$r" "backend-fw: per-hop table: the router (and h1) lost nothing; rt's hops saw all $PINGS" \
	'all(.hops[] | select(.node == "rt" or .node == "h1"); .dropped == 0 and .vanished == 0 and .seen == $n)
	and ([.hops[] | select(.node == "rt")] | length == 2)' --argjson n "$PINGS"
jq_true "$r" "backend-fw: exactly one drop hop per packet, none at rt" \
	'all(.packets[]; [.hops[] | select(.hook == "drop")] | length == 1)
	and all(.packets[].hops[]; .node != "rt" or .hook != "drop")'
jq_true "$r" "backend-fw: no sample left unmatched" '.unmatched == 0'
echo "# verdict: $(jq_val "$r" '.verdict.sentence')"

# The rule goes: the same flow is answered, and its replies are colored at once.
check "h3: remove the rule" lab_in "$LAB_H3" nft delete table bridge dtlab_fw
check "h3's agent had the learned reply key armed (3 keys)" lab_agent_wait_keys h3 3
check "$AFTER more pings (same ICMP id), all answered" \
	lab_in "$LAB_I1" ping -e "$ICMP_ID" -c "$AFTER" -i 0.05 -W 1 -q "$LAB_VIP"
check "every packet judged (window passed)" lab_task_wait_judged "$task" $((PINGS + 2 * AFTER))
r=$(report_fetch "$task" backend-fw-after)
check_verdict "$r" "after the rule is gone" $((PINGS + 2 * AFTER)) $((2 * AFTER)) "$PINGS" 0
jq_true "$r" "after: $AFTER requests and $AFTER replies delivered, along the full paths" \
	'[.packets[] | select(.fate == "delivered")] as $d
	| ([$d[] | select(.direction == "request" and path == $q)] | length == $n)
	and ([$d[] | select(.direction == "reply" and path == $p)] | length == $n) and ($d | length == 2 * $n)' \
	--argjson n "$AFTER" --argjson q "$REQ_PATH" --argjson p "$REP_PATH"
jq_true "$r" "after: no sample left unmatched" '.unmatched == 0'
check_samples_accounted backend-fw "$r"

# The drop tracer is global: the agents of h1 and rt see h3's drops and must only count
# them; h3's agent reports them.
check_eq "h3's agent reported exactly the $PINGS drops" "$(agent_exit h3 drops)" "$PINGS"
check_eq "rt's agent reported no drop" "$(agent_exit rt drops)" 0
check_eq "h1's agent reported no drop" "$(agent_exit h1 drops)" 0

checks_teardown_clean
