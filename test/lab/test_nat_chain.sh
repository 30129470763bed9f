#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_nat_chain.sh - NAT inside the overlay (issue 20): two translating nodes in a row.
# 3 hosts, unicast FDB, routers rt (10.100.0.250) and rt2 (10.100.0.251), see
# test/lab/router.sh. i1 routes 10.99.0.0/24 via rt; rt routes 10.98.0.0/24 via rt2.
#   rt:  the VIP 10.99.0.100 -> rt2's VIP 10.98.0.100, full NAT (source becomes rt)
#   rt2: 10.98.0.100 -> i31 (10.100.0.31, on h3), full NAT (source becomes rt2)
# The task is named as the client sees the flow (icmp i1 -> VIP, both directions). Each
# packet crosses two translations, each learned where it happens; the second one's "before"
# is the first one's "after", so the analyzer must chain them back to the task. The report
# must show:
#   - requests h1 port-in -> h1 uplink-out -> rt uplink-in -> rt uplink-out -> rt2
#     uplink-in -> rt2 uplink-out -> h3 uplink-in -> h3 port-out: i1 -> VIP, then rt ->
#     VIP2 from rt uplink-out, then rt2 -> i31 from rt2 uplink-out; delivered,
#     destination known;
#   - replies colored at h3's port (the learned key i31 -> rt2; rt's own reply form,
#     VIP2 -> rt, starts at no instance and is not armed), back through rt2 and rt, named
#     VIP -> i1, delivered;
#   - nothing lost at either router, nothing unmatched, every sample accounted;
#   - the text report says what each router changed, at its own hop.
# As in test_nat_lb.sh, the warm-up ping's reply is never colored, so the report holds
# PINGS + 1 requests and PINGS replies.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtnc" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtnc}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/router.sh
. "$(dirname "${BASH_SOURCE[0]}")/router.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
PINGS=10
ICMP_ID=4646
COLOR_FILTER='ip[6] & 0x80 != 0'
REQ_PATH='["h1/pt1/port-in","h1/ul0/uplink-out","rt/ul0/uplink-in","rt/ul0/uplink-out","rt2/ul0/uplink-in","rt2/ul0/uplink-out","h3/ul0/uplink-in","h3/pt1/port-out"]'
REP_PATH='["h3/pt1/port-in","h3/ul0/uplink-out","rt2/ul0/uplink-in","rt2/ul0/uplink-out","rt/ul0/uplink-in","rt/ul0/uplink-out","h1/ul0/uplink-in","h1/pt1/port-out"]'

nat_lab_up
check_up "routers rt ($LAB_RT_IP) and rt2 ($LAB_RT2_IP) up, with their agents" \
	"routers rt ($LAB_RT_IP) and rt2 ($LAB_RT2_IP) up, with their agents" eval 'lab_router_up rt && lab_router_up rt2'
check "i1 routes $LAB_VIP_NET via rt" lab_route_via "$LAB_I1" "$LAB_VIP_NET" "$LAB_RT_IP"
check "rt routes $LAB_VIP2_NET via rt2" lab_route_via "$LAB_RT" "$LAB_VIP2_NET" "$LAB_RT2_IP"
check "rt: VIP $LAB_VIP -> $LAB_VIP2, full NAT (source becomes $LAB_RT_IP)" \
	lab_router_lb rt "$LAB_VIP" "$LAB_VIP2" full
check "rt2: $LAB_VIP2 -> i31 $LAB_I31_IP, full NAT (source becomes $LAB_RT2_IP)" \
	lab_router_lb rt2 "$LAB_VIP2" "$LAB_I31_IP" full
check "an untraced ping i1 -> VIP is answered" lab_in "$LAB_I1" ping -c 1 -W 2 -q "$LAB_VIP"

nat_vip_task
check "h3's agent has the task's 2 keys armed" lab_agent_wait_keys h3 2

check "capture: color at i31 eth0 (the backend)" lab_capture_start color-i31 "$LAB_I31" eth0 "$COLOR_FILTER"
check "capture: echo requests at i31 eth0" lab_capture_start req-i31 "$LAB_I31" eth0 \
	"icmp[icmptype] == icmp-echo and src host $LAB_RT2_IP and dst host $LAB_I31_IP"

check "warm-up ping i1 -> VIP (ICMP id $ICMP_ID) answered" \
	lab_in "$LAB_I1" ping -e "$ICMP_ID" -c 1 -W 2 -q "$LAB_VIP"
check "h3's agent arms the learned reply key (3 keys: i31 -> rt2)" lab_agent_wait_keys h3 3
check "$PINGS pings i1 -> VIP (same ICMP id), all answered" \
	lab_in "$LAB_I1" ping -e "$ICMP_ID" -c "$PINGS" -i 0.05 -W 1 -q "$LAB_VIP"
check "every packet judged (window passed)" lab_task_wait_judged "$task" $((2 * PINGS + 1))
for c in color-i31 req-i31; do lab_capture_stop "$c"; done
check_no_color color-i31 "the backend i31 never sees the color"
check_eq "i31 received $((PINGS + 1)) echo requests, from rt2 (the second SNAT)" \
	"$(lab_capture_count req-i31)" $((PINGS + 1))
check "h3's agent still has 3 keys (rt's reply form, $LAB_VIP2 -> $LAB_RT_IP, is not armed: no instance sends it)" \
	lab_agent_wait_keys h3 3 1

r=$(report_fetch_text "$task" chain)
check_verdict "$r" chain $((2 * PINGS + 1)) $((2 * PINGS + 1)) 0 0
jq_true "$r" "chain: $((PINGS + 1)) requests (warm-up included) and $PINGS replies (the warm-up's reply was never colored)" \
	'([req] | length == $n + 1) and ([rep] | length == $n)' --argjson n "$PINGS"
jq_true "$r" "chain: every request h1 -> rt (in, out) -> rt2 (in, out) -> h3 port-out" \
	'all(req; path == $p)' --argjson p "$REQ_PATH"
jq_true "$r" "chain: every reply h3 port-in -> rt2 (in, out) -> rt (in, out) -> h1 port-out" \
	'all(rep; path == $p)' --argjson p "$REP_PATH"
jq_true "$r" "chain: every packet delivered, its destination known, no copy" \
	'all(.packets[]; .fate == "delivered" and .drop == null and .destination_known == true and .copies == 0)'
jq_true "$r" "chain: requests named i1 -> VIP, replies VIP -> i1, all on ICMP id $ICMP_ID" \
	'all(req; .flow | .src == $c and .dst == $v and .sport == $id)
	and all(rep; .flow | .src == $v and .dst == $c and .dport == $id)' \
	--arg c "$LAB_I1_IP" --arg v "$LAB_VIP" --argjson id "$ICMP_ID"
jq_true "$r" "chain: requests i1 -> VIP, then rt -> VIP2 from rt uplink-out, then rt2 -> i31 from rt2 uplink-out" \
	'all(req; . as $p | [.hops[] | hflow($p) | "\(.src)>\(.dst)"]
		== ["\($c)>\($v)", "\($c)>\($v)", "\($c)>\($v)", "\($r)>\($v2)", "\($r)>\($v2)",
		    "\($r2)>\($b)", "\($r2)>\($b)", "\($r2)>\($b)"])' \
	--arg c "$LAB_I1_IP" --arg v "$LAB_VIP" --arg r "$LAB_RT_IP" --arg v2 "$LAB_VIP2" \
	--arg r2 "$LAB_RT2_IP" --arg b "$LAB_I31_IP"
jq_true "$r" "chain: replies i31 -> rt2, then VIP2 -> rt from rt2 uplink-out, then VIP -> i1 from rt uplink-out" \
	'all(rep; . as $p | [.hops[] | hflow($p) | "\(.src)>\(.dst)"]
		== ["\($b)>\($r2)", "\($b)>\($r2)", "\($b)>\($r2)", "\($v2)>\($r)", "\($v2)>\($r)",
		    "\($v)>\($c)", "\($v)>\($c)", "\($v)>\($c)"])' \
	--arg c "$LAB_I1_IP" --arg v "$LAB_VIP" --arg r "$LAB_RT_IP" --arg v2 "$LAB_VIP2" \
	--arg r2 "$LAB_RT2_IP" --arg b "$LAB_I31_IP"
jq_true "$r" "chain: per-hop table: both routers' hops saw $((PINGS + 1)) requests and $PINGS replies, none lost" \
	'[.hops[] | select(.node == "rt" or .node == "rt2")] | length == 8
	and all(.[]; .dropped == 0 and .vanished == 0
		and .seen == (if .direction == "request" then $n + 1 else $n end))' --argjson n "$PINGS"
jq_true "$r" "chain: per-hop table: nothing lost anywhere, no row at the bystander h2" \
	'all(.hops[]; .dropped == 0 and .vanished == 0 and .node != "h2")'
jq_true "$r" "chain: no sample left unmatched" '.unmatched == 0'
t=$LAB_DIR/report-chain.txt
check_eq "chain: text report: the requests' rt uplink-out hops say (dst $LAB_VIP becomes $LAB_VIP2, src $LAB_I1_IP becomes $LAB_RT_IP)" \
	"$(text_hops "$t" 'rt/ul0 +uplink-out' "(dst $LAB_VIP becomes $LAB_VIP2, src $LAB_I1_IP becomes $LAB_RT_IP)")" \
	$((PINGS + 1))
check_eq "chain: text report: the requests' rt2 uplink-out hops say (dst $LAB_VIP2 becomes $LAB_I31_IP, src $LAB_RT_IP becomes $LAB_RT2_IP)" \
	"$(text_hops "$t" 'rt2/ul0 +uplink-out' "(dst $LAB_VIP2 becomes $LAB_I31_IP, src $LAB_RT_IP becomes $LAB_RT2_IP)")" \
	$((PINGS + 1))
check_eq "chain: text report: the replies' rt2 uplink-out hops say (dst $LAB_RT2_IP becomes $LAB_RT_IP, src $LAB_I31_IP becomes $LAB_VIP2)" \
	"$(text_hops "$t" 'rt2/ul0 +uplink-out' "(dst $LAB_RT2_IP becomes $LAB_RT_IP, src $LAB_I31_IP becomes $LAB_VIP2)")" \
	"$PINGS"
check_eq "chain: text report: the replies' rt uplink-out hops say (dst $LAB_RT_IP becomes $LAB_I1_IP, src $LAB_VIP2 becomes $LAB_VIP)" \
	"$(text_hops "$t" 'rt/ul0 +uplink-out' "(dst $LAB_RT_IP becomes $LAB_I1_IP, src $LAB_VIP2 becomes $LAB_VIP)")" \
	"$PINGS"
check_eq "chain: text report: no other hop says 'becomes'" "$(grep -c 'becomes' "$t")" $((4 * PINGS + 2))
echo "# verdict: $(jq_val "$r" '.verdict.sentence')"
check_samples_accounted chain "$r"

checks_teardown_clean
