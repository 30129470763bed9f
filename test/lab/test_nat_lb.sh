#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_nat_lb.sh - NAT inside the overlay (issue 20): a load balancer's VIP with full NAT.
# Three hosts with unicast FDB (no bystander copies) and router rt (test/lab/router.sh):
# i1 (h1) routes 10.99.0.0/24 via rt (10.100.0.250); rt DNATs the VIP 10.99.0.100 to i31
# (10.100.0.31, on h3) and SNATs the source to itself. A task named as the client sees the
# flow (icmp i1 -> VIP, both directions) must show:
#   - every request h1 port-in -> h1 uplink-out -> rt uplink-in -> rt uplink-out -> h3
#     uplink-in -> h3 port-out, translated from rt's uplink-out on (rt -> i31), delivered
#     at the backend's port with its destination known;
#   - every reply colored at h3's port (the learned key i31 -> rt), h3 port-in -> h3
#     uplink-out -> rt uplink-in -> rt uplink-out -> h1 uplink-in -> h1 port-out, named
#     in the task's terms (VIP -> i1) and delivered;
#   - nothing vanished (at rt or anywhere), no sample unmatched, every sample accounted;
#   - the text report says what rt changed ("dst 10.99.0.100 becomes 10.100.0.31, src
#     10.100.0.1 becomes 10.100.0.250", and the reverse for replies).
#
# The reply of the first packet of a flow is never colored: the translation is learned from
# that request's sample at rt, and the backend's host arms the reply key (a control set
# away) only after the reply has long gone. So the test sends one warm-up ping, waits until
# h3's agent has the learned key armed (3 keys: the task's two and the learned one), then
# PINGS more on the same ICMP id (ping -e: the same conntrack entry, so the same
# translation and the same learned key). The report then holds PINGS + 1 requests and
# PINGS replies, and the warm-up's reply is nowhere (it was never colored).
#
# When the task is cancelled, the learned key leaves h3's data plane with the task's own.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtna" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtna}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/router.sh
. "$(dirname "${BASH_SOURCE[0]}")/router.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
PINGS=10
ICMP_ID=4242
COLOR_FILTER='ip[6] & 0x80 != 0'
REQ_PATH='["h1/pt1/port-in","h1/ul0/uplink-out","rt/ul0/uplink-in","rt/ul0/uplink-out","h3/ul0/uplink-in","h3/pt1/port-out"]'
REP_PATH='["h3/pt1/port-in","h3/ul0/uplink-out","rt/ul0/uplink-in","rt/ul0/uplink-out","h1/ul0/uplink-in","h1/pt1/port-out"]'

nat_lab_up
check_up "router rt up (overlay $LAB_RT_IP, agent rt)" \
	"router rt up: $LAB_RT_IP on the overlay, ip_forward, agent rt (ul0 uplink, vxlan0 overlay)" lab_router_up rt
check "i1 routes $LAB_VIP_NET via rt" lab_route_via "$LAB_I1" "$LAB_VIP_NET" "$LAB_RT_IP"
check "rt: VIP $LAB_VIP -> i31 $LAB_I31_IP, full NAT (DNAT + SNAT to $LAB_RT_IP)" \
	lab_router_lb rt "$LAB_VIP" "$LAB_I31_IP" full
check "agent rt attached its vxlan0 as overlay" grep -q 'vxlan0: attached as overlay' "$LAB_DIR/agent-rt.log"
# untraced: ARP on every leg before anything is counted
check "an untraced ping i1 -> VIP is answered" lab_in "$LAB_I1" ping -c 1 -W 2 -q "$LAB_VIP"

checks_task task "create the task (icmp i1 -> VIP $LAB_VIP, both directions)" \
	"task armed (nobody hosts the VIP: its replies wait to be learned)" \
	--src "$LAB_I1_IP" --dst "$LAB_VIP" --proto icmp --vni "$LAB_VNI" --direction both
json_true "task status: armed at h1 for requests, replies armed once the translation is learned" \
	"$(task_json "$task")" '.status == "ok" and (.status_text | test("armed at h1") and test("learned"))'
check "h3's agent has the task's 2 keys armed" lab_agent_wait_keys h3 2

check "capture: color at i31 eth0 (the backend)" lab_capture_start color-i31 "$LAB_I31" eth0 "$COLOR_FILTER"
check "capture: color at i1 eth0" lab_capture_start color-i1 "$LAB_I1" eth0 "$COLOR_FILTER"
check "capture: echo requests at i31 eth0" lab_capture_start req-i31 "$LAB_I31" eth0 \
	"icmp[icmptype] == icmp-echo and src host $LAB_RT_IP and dst host $LAB_I31_IP"

check "warm-up ping i1 -> VIP (ICMP id $ICMP_ID) answered" \
	lab_in "$LAB_I1" ping -e "$ICMP_ID" -c 1 -W 2 -q "$LAB_VIP"
check "h3's agent arms the learned reply key (3 keys: i31 -> rt)" lab_agent_wait_keys h3 3
check "$PINGS pings i1 -> VIP (same ICMP id), all answered" \
	lab_in "$LAB_I1" ping -e "$ICMP_ID" -c "$PINGS" -i 0.05 -W 1 -q "$LAB_VIP"
check "every packet judged (window passed)" lab_task_wait_judged "$task" $((2 * PINGS + 1))
for c in color-i31 color-i1 req-i31; do lab_capture_stop "$c"; done
check_no_color color-i31 "the backend i31 never sees the color"
check_no_color color-i1 "i1 never sees the color on the replies"
check_eq "i31 received $((PINGS + 1)) echo requests, from rt's address (SNAT)" \
	"$(lab_capture_count req-i31)" $((PINGS + 1))

r=$(report_fetch_text "$task" lb)
check_verdict "$r" lb $((2 * PINGS + 1)) $((2 * PINGS + 1)) 0 0
jq_true "$r" "lb: $((PINGS + 1)) requests (warm-up included) and $PINGS replies (the warm-up's reply was never colored)" \
	'([req] | length == $n + 1) and ([rep] | length == $n)' --argjson n "$PINGS"
jq_true "$r" "lb: every request h1 port-in -> h1 uplink-out -> rt uplink-in -> rt uplink-out -> h3 uplink-in -> h3 port-out" \
	'all(req; path == $p)' --argjson p "$REQ_PATH"
jq_true "$r" "lb: every reply h3 port-in -> h3 uplink-out -> rt uplink-in -> rt uplink-out -> h1 uplink-in -> h1 port-out" \
	'all(rep; path == $p)' --argjson p "$REP_PATH"
jq_true "$r" "lb: every packet delivered, its destination known, no copy" \
	'all(.packets[]; .fate == "delivered" and .drop == null and .destination_known == true and .copies == 0)'
jq_true "$r" "lb: requests named i1 -> VIP, replies VIP -> i1 (the task's terms), all on ICMP id $ICMP_ID" \
	'all(req; .flow | .src == $c and .dst == $v and .sport == $id)
	and all(rep; .flow | .src == $v and .dst == $c and .dport == $id)' \
	--arg c "$LAB_I1_IP" --arg v "$LAB_VIP" --argjson id "$ICMP_ID"
jq_true "$r" "lb: requests as the client sent them up to rt uplink-in, then $LAB_RT_IP -> $LAB_I31_IP from rt uplink-out on" \
	'all(req; . as $p | [.hops[] | hflow($p) | "\(.src)>\(.dst)"]
		== ["\($c)>\($v)", "\($c)>\($v)", "\($c)>\($v)", "\($r)>\($b)", "\($r)>\($b)", "\($r)>\($b)"])' \
	--arg c "$LAB_I1_IP" --arg v "$LAB_VIP" --arg r "$LAB_RT_IP" --arg b "$LAB_I31_IP"
jq_true "$r" "lb: replies $LAB_I31_IP -> $LAB_RT_IP up to rt uplink-in, then VIP -> i1 from rt uplink-out on" \
	'all(rep; . as $p | [.hops[] | hflow($p) | "\(.src)>\(.dst)"]
		== ["\($b)>\($r)", "\($b)>\($r)", "\($b)>\($r)", "\($v)>\($c)", "\($v)>\($c)", "\($v)>\($c)"])' \
	--arg c "$LAB_I1_IP" --arg v "$LAB_VIP" --arg r "$LAB_RT_IP" --arg b "$LAB_I31_IP"
jq_true "$r" "lb: per-hop table: rt's 2 hops saw $((PINGS + 1)) requests and $PINGS replies, none dropped or vanished" \
	'[.hops[] | select(.node == "rt")] | length == 4
	and all(.[]; .dropped == 0 and .vanished == 0
		and .seen == (if .direction == "request" then $n + 1 else $n end))' --argjson n "$PINGS"
jq_true "$r" "lb: per-hop table: nothing lost anywhere, no row at the bystander h2" \
	'all(.hops[]; .dropped == 0 and .vanished == 0 and .node != "h2")'
jq_true "$r" "lb: no sample left unmatched" '.unmatched == 0'
jq_true "$r" "lb: task counters: colored $((2 * PINGS + 1)), delivered $((2 * PINGS + 1))" \
	'.task.colored == $n and .task.delivered == $n' --argjson n $((2 * PINGS + 1))
t=$LAB_DIR/report-lb.txt
check_eq "lb: text report: the $((PINGS + 1)) requests' rt uplink-out hops say (dst $LAB_VIP becomes $LAB_I31_IP, src $LAB_I1_IP becomes $LAB_RT_IP)" \
	"$(text_hops "$t" 'rt/ul0 +uplink-out' "(dst $LAB_VIP becomes $LAB_I31_IP, src $LAB_I1_IP becomes $LAB_RT_IP)")" \
	$((PINGS + 1))
check_eq "lb: text report: the $PINGS replies' rt uplink-out hops say (dst $LAB_RT_IP becomes $LAB_I1_IP, src $LAB_I31_IP becomes $LAB_VIP)" \
	"$(text_hops "$t" 'rt/ul0 +uplink-out' "(dst $LAB_RT_IP becomes $LAB_I1_IP, src $LAB_I31_IP becomes $LAB_VIP)")" \
	"$PINGS"
check_eq "lb: text report: no other hop says 'becomes'" "$(grep -c 'becomes' "$t")" $((2 * PINGS + 1))
echo "# verdict: $(jq_val "$r" '.verdict.sentence')"

check "cancel the task" lab_cli task cancel "$task"
check "h3's agent disarms all 3 keys, the learned one too" lab_agent_wait_keys h3 0
check_samples_accounted lb "$r"

checks_teardown_clean
