#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_loss_random.sh - loss diagnosis, scenario 3: a random 30% drop. An iptables rule
# in h2's INPUT chain drops 30% of the VXLAN packets from h1 (statistic match, mode
# random): the kernel frees each with reason NETFILTER_DROP while it is still the outer
# UDP packet on ul0, after h2's uplink-in saw its colored inner packet.
#
# Checks: the number dropped in the report is exactly the rule's own counter and the
# number delivered exactly the pings answered; the loss rate is within 4.5 standard
# deviations of 30% for the packet count (binomial: false alarm probability ~7e-6); the
# packets reported dropped are exactly those i2 never received (by IPv4 id); the verdict
# and the per-hop table put the loss at h2 after uplink-in with reason NETFILTER_DROP.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtlr" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtlr}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
PINGS=${DT_LOSS_PINGS:-300}
P_DROP=0.30
K_SIGMA=4.5

window_lab_up "lab up: overlay, analyzer (window_ms $WINDOW_MS), collector, agents h1 and h2"

# Static neighbours: no ARP crosses the lossy underlay, so every packet that is lost is
# a traced echo request.
check "static neighbours i1 <-> i2" lab_static_neighbours i1 i2

checks_ping_task i2

check "h2: iptables drops 30% of the VXLAN packets from h1 (statistic, mode random)" \
	lab_in "$LAB_H2" iptables -w -I INPUT 1 -i ul0 -s "$LAB_H1_UL_IP" -p udp --dport 4789 \
	-m statistic --mode random --probability "$P_DROP" -j DROP
check "capture: echo requests at i2 eth0" lab_capture_start req-i2 "$LAB_I2" eth0 \
	"icmp and src host $LAB_I1_IP and dst host $LAB_I2_IP and icmp[icmptype] == icmp-echo"

out=$(lab_in "$LAB_I1" ping -c "$PINGS" -i 0.01 -W 1 -q "$LAB_I2_IP" 2>&1)
received=$(sed -nE 's/.* ([0-9]+) received.*/\1/p' <<<"$out")
dropped_fw=$(lab_in "$LAB_H2" iptables -w -L INPUT 1 -v -x -n 2>/dev/null | awk '{print $1}')
echo "# ping: $(grep -m1 'packets transmitted' <<<"$out"); h2 rule dropped $dropped_fw"
check_eq "every ping is either answered or dropped by the rule" \
	"$((${received:-0} + ${dropped_fw:-0}))" "$PINGS"
check "every packet judged (window passed)" lab_task_wait_judged "$task" "$PINGS" 30
lab_capture_stop req-i2

r=$(report_fetch_text "$task" random)
check_verdict "$r" random "$PINGS" "${received:-?}" "${dropped_fw:-?}" 0
read -r lo hi < <(binomial_bounds "$PINGS" "$P_DROP" "$K_SIGMA")
check_range "dropped count within 30% +- $K_SIGMA sd of $PINGS ($lo..$hi)" \
	"$(jq_val "$r" '.verdict.dropped')" "$lo" "$hi"
rate=$(jq_val "$r" '.verdict | if .judged > 0 then .dropped / .judged else "none" end')
echo "# loss rate reported: $rate"
jq_true "$r" "verdict: at node h2, reason NETFILTER_DROP" \
	'.verdict.at.node == "h2" and .verdict.reason == "NETFILTER_DROP"'
jq_true "$r" "verdict sentence names the count, h2 and NETFILTER_DROP" \
	'.verdict.sentence | test("\($d) of \($n)") and test("h2") and test("NETFILTER_DROP")' \
	--argjson n "$PINGS" --argjson d "${dropped_fw:-0}"
jq_true "$r" "every dropped packet: h1 port-in -> h1 uplink-out -> h2 uplink-in -> drop on h2 ul0, NETFILTER_DROP" \
	'all(.packets[] | select(.fate == "dropped");
		path[:-1] == ["h1/pt1/port-in","h1/ul0/uplink-out","h2/ul0/uplink-in"]
		and lasthop.node == "h2" and lasthop.hook == "drop" and lasthop.ifname == "ul0"
		and .drop.name == "NETFILTER_DROP")'
jq_true "$r" "every delivered packet takes the full path" \
	'all(.packets[] | select(.fate == "delivered");
		path == ["h1/pt1/port-in","h1/ul0/uplink-out","h2/ul0/uplink-in","h2/pt1/port-out"])'
jq_true "$r" "per-hop table: h2 uplink-in seen $PINGS, dropped $dropped_fw, top reason NETFILTER_DROP" \
	'row("h2"; "ul0"; "uplink-in"; "request") | .seen == $n and .dropped == $d
		and .top_reason == "NETFILTER_DROP"' --argjson n "$PINGS" --argjson d "${dropped_fw:-0}"
jq_true "$r" "per-hop table: h1 port-in and uplink-out saw all $PINGS, lost none" \
	'(row("h1"; "pt1"; "port-in"; "request") | .seen == $n and .dropped == 0 and .vanished == 0)
	and (row("h1"; "ul0"; "uplink-out"; "request") | .seen == $n and .dropped == 0 and .vanished == 0)' \
	--argjson n "$PINGS"
jq_true "$r" "per-hop table: h2 port-out saw the $received delivered" \
	'row("h2"; "pt1"; "port-out"; "request") | .seen == $r' --argjson r "${received:-0}"

# The packets dropped in the report are exactly the ones i2 never received.
got_ids=$(capture_ip_ids req-i2 icmp | tr '\n' ' ')
delivered_ids=$(jq_val "$r" '[.packets[] | select(.fate == "delivered") | .ip_id] | sort | map(tostring) | join(" ")')
dropped_ids=$(jq_val "$r" '[.packets[] | select(.fate == "dropped") | .ip_id] | sort | map(tostring) | join(" ")')
check_eq "the delivered packets' ip ids are exactly those i2 received" "$delivered_ids" "${got_ids% }"
both=$(comm -12 <(tr ' ' '\n' <<<"$dropped_ids" | sort) <(tr ' ' '\n' <<<"$got_ids" | sort) | grep -c . || true)
check_eq "no packet reported dropped reached i2" "$both" 0

checks_teardown_clean
