#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_nat_dnat.sh - NAT inside the overlay (issue 20): DNAT only, client and backend on
# different subnets, so that the replies return through the router by routing. 3 hosts,
# unicast FDB, router rt (test/lab/router.sh) with a second address 10.101.0.250/24 on its
# br0; the backend i31 (on h3) readdressed to 10.101.0.31/24 only, default route via rt
# (h3's agent lists the new address behind pt1); i1 (10.100.0.1/24) routes 10.99.0.0/24
# via rt; rt DNATs the VIP 10.99.0.100 to 10.101.0.31 and leaves the source alone. The
# task is named as the client sees the flow (icmp i1 -> VIP, both directions):
#   - requests h1 port-in -> h1 uplink-out -> rt uplink-in -> rt uplink-out -> h3
#     uplink-in -> h3 port-out, i1 -> 10.101.0.31 from rt uplink-out on (only the
#     destination changed), delivered, destination known;
#   - replies 10.101.0.31 -> i1, colored at h3's port (the learned key), back through rt
#     (un-DNAT: VIP -> i1 from rt uplink-out on) to h1 port-out, delivered;
#   - nothing lost, nothing unmatched; the text report says "(dst 10.99.0.100 becomes
#     10.101.0.31)" for requests and "(src 10.101.0.31 becomes 10.99.0.100)" for replies.
# As in test_nat_lb.sh, the warm-up ping's reply is never colored (the translation is
# learned from its request), so the report holds PINGS + 1 requests and PINGS replies.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtnd" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtnd}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/router.sh
. "$(dirname "${BASH_SOURCE[0]}")/router.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
PINGS=10
ICMP_ID=4545
BACKEND=$LAB_I31_BACKEND_IP
COLOR_FILTER='ip[6] & 0x80 != 0'
REQ_PATH='["h1/pt1/port-in","h1/ul0/uplink-out","rt/ul0/uplink-in","rt/ul0/uplink-out","h3/ul0/uplink-in","h3/pt1/port-out"]'
REP_PATH='["h3/pt1/port-in","h3/ul0/uplink-out","rt/ul0/uplink-in","rt/ul0/uplink-out","h1/ul0/uplink-in","h1/pt1/port-out"]'

nat_lab_up
nat_router_up
nat_backend_subnet
check "i1 routes $LAB_VIP_NET via rt" lab_route_via "$LAB_I1" "$LAB_VIP_NET" "$LAB_RT_IP"
check "rt: VIP $LAB_VIP -> $BACKEND, DNAT only" lab_router_lb rt "$LAB_VIP" "$BACKEND" dnat
check "i31 has no route of its own to i1's subnet (only via rt)" \
	test "$(ip -n "$LAB_I31" route get "$LAB_I1_IP" | grep -c "via $LAB_RT_BACKEND_IP")" = 1
check "an untraced ping i1 -> VIP is answered" lab_in "$LAB_I1" ping -c 1 -W 2 -q "$LAB_VIP"

nat_vip_task
check "h3's agent has the task's 2 keys armed" lab_agent_wait_keys h3 2

check "capture: color at i31 eth0 (the backend)" lab_capture_start color-i31 "$LAB_I31" eth0 "$COLOR_FILTER"
check "capture: echo at i31 eth0" lab_capture_start echo-i31 "$LAB_I31" eth0 "icmp"
check "capture: echo replies at i1 eth0" lab_capture_start rep-i1 "$LAB_I1" eth0 "icmp[icmptype] == icmp-echoreply"

check "warm-up ping i1 -> VIP (ICMP id $ICMP_ID) answered" \
	lab_in "$LAB_I1" ping -e "$ICMP_ID" -c 1 -W 2 -q "$LAB_VIP"
check "h3's agent arms the learned reply key (3 keys: $BACKEND -> i1)" lab_agent_wait_keys h3 3
check "$PINGS pings i1 -> VIP (same ICMP id), all answered" \
	lab_in "$LAB_I1" ping -e "$ICMP_ID" -c "$PINGS" -i 0.05 -W 1 -q "$LAB_VIP"
check "every packet judged (window passed)" lab_task_wait_judged "$task" $((2 * PINGS + 1))
for c in color-i31 echo-i31 rep-i1; do lab_capture_stop "$c"; done
check_no_color color-i31 "the backend i31 never sees the color"
check_eq "i31 sees $((PINGS + 1)) requests from i1 itself (no SNAT) and answers i1" \
	"$(lab_capture_read echo-i31 "icmp[icmptype] == icmp-echo and src host $LAB_I1_IP and dst host $BACKEND" | wc -l) $(lab_capture_read echo-i31 "icmp[icmptype] == icmp-echoreply and src host $BACKEND and dst host $LAB_I1_IP" | wc -l)" \
	"$((PINGS + 1)) $((PINGS + 1))"
check_eq "i1 sees every reply from the VIP (un-DNATed by rt)" \
	"$(lab_capture_read rep-i1 "src host $LAB_VIP" | wc -l) $(lab_capture_count rep-i1)" "$((PINGS + 1)) $((PINGS + 1))"

r=$(report_fetch_text "$task" dnat)
check_verdict "$r" dnat $((2 * PINGS + 1)) $((2 * PINGS + 1)) 0 0
jq_true "$r" "dnat: $((PINGS + 1)) requests (warm-up included) and $PINGS replies (the warm-up's reply was never colored)" \
	'([req] | length == $n + 1) and ([rep] | length == $n)' --argjson n "$PINGS"
jq_true "$r" "dnat: every request h1 port-in -> h1 uplink-out -> rt uplink-in -> rt uplink-out -> h3 uplink-in -> h3 port-out" \
	'all(req; path == $p)' --argjson p "$REQ_PATH"
jq_true "$r" "dnat: every reply h3 port-in -> h3 uplink-out -> rt uplink-in -> rt uplink-out -> h1 uplink-in -> h1 port-out (through the router)" \
	'all(rep; path == $p)' --argjson p "$REP_PATH"
jq_true "$r" "dnat: every packet delivered, its destination known, no copy" \
	'all(.packets[]; .fate == "delivered" and .drop == null and .destination_known == true and .copies == 0)'
jq_true "$r" "dnat: requests named i1 -> VIP, replies VIP -> i1, all on ICMP id $ICMP_ID" \
	'all(req; .flow | .src == $c and .dst == $v and .sport == $id)
	and all(rep; .flow | .src == $v and .dst == $c and .dport == $id)' \
	--arg c "$LAB_I1_IP" --arg v "$LAB_VIP" --argjson id "$ICMP_ID"
jq_true "$r" "dnat: requests i1 -> VIP up to rt uplink-in, then i1 -> $BACKEND (source unchanged)" \
	'all(req; . as $p | [.hops[] | hflow($p) | "\(.src)>\(.dst)"]
		== ["\($c)>\($v)", "\($c)>\($v)", "\($c)>\($v)", "\($c)>\($b)", "\($c)>\($b)", "\($c)>\($b)"])' \
	--arg c "$LAB_I1_IP" --arg v "$LAB_VIP" --arg b "$BACKEND"
jq_true "$r" "dnat: replies $BACKEND -> i1 up to rt uplink-in, then VIP -> i1" \
	'all(rep; . as $p | [.hops[] | hflow($p) | "\(.src)>\(.dst)"]
		== ["\($b)>\($c)", "\($b)>\($c)", "\($b)>\($c)", "\($v)>\($c)", "\($v)>\($c)", "\($v)>\($c)"])' \
	--arg c "$LAB_I1_IP" --arg v "$LAB_VIP" --arg b "$BACKEND"
jq_true "$r" "dnat: per-hop table: nothing lost anywhere; rt's hops saw $((PINGS + 1)) requests and $PINGS replies" \
	'all(.hops[]; .dropped == 0 and .vanished == 0 and .node != "h2")
	and ([.hops[] | select(.node == "rt")] | length == 4
		and all(.[]; .seen == (if .direction == "request" then $n + 1 else $n end)))' --argjson n "$PINGS"
jq_true "$r" "dnat: no sample left unmatched" '.unmatched == 0'
t=$LAB_DIR/report-dnat.txt
check_eq "dnat: text report: the $((PINGS + 1)) requests' rt uplink-out hops say (dst $LAB_VIP becomes $BACKEND)" \
	"$(text_hops "$t" 'rt/ul0 +uplink-out' "(dst $LAB_VIP becomes $BACKEND)")" $((PINGS + 1))
check_eq "dnat: text report: the $PINGS replies' rt uplink-out hops say (src $BACKEND becomes $LAB_VIP)" \
	"$(text_hops "$t" 'rt/ul0 +uplink-out' "(src $BACKEND becomes $LAB_VIP)")" "$PINGS"
check_eq "dnat: text report: no other hop says 'becomes'" "$(grep -c 'becomes' "$t")" $((2 * PINGS + 1))
echo "# verdict: $(jq_val "$r" '.verdict.sentence')"
check_samples_accounted dnat "$r"

checks_teardown_clean
