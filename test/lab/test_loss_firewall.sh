#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_loss_firewall.sh - loss diagnosis, scenario 2: a firewall rule on the destination
# host drops the flow. An nftables rule in h2's bridge (family bridge, forward hook, before
# br_netfilter) drops the echo requests from i1 to i2 after they left the VXLAN device;
# the kernel frees them with reason NETFILTER_DROP. The report must say: every packet
# dropped at h2, reason NETFILTER_DROP, after h2 uplink-in; nothing delivered. Once the
# rule is gone the same task's next pings are delivered.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtlf" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtlf}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
PINGS=20
AFTER=5 # pings once the rule is removed
PATH_TO_DROP='["h1/pt1/port-in","h1/ul0/uplink-out","h2/ul0/uplink-in"]'
REQ_PATH='["h1/pt1/port-in","h1/ul0/uplink-out","h2/ul0/uplink-in","h2/pt1/port-out"]'

window_lab_up "lab up: overlay, analyzer (window_ms $WINDOW_MS), collector, agents h1 and h2"

checks_ping_task i2

# The firewall: h2's bridge drops the echo requests i1 -> i2. Priority -200 runs before
# br_netfilter's bridge hook (priority 0), so the rule applies whatever br_netfilter does.
check "h2: nftables bridge rule drops echo requests i1 -> i2" \
	nft_bridge_drop "$LAB_H2" dtlab_fw forward "ip saddr $LAB_I1_IP ip daddr $LAB_I2_IP icmp type echo-request"
check "capture: echo requests at i2 eth0" lab_capture_start req-i2 "$LAB_I2" eth0 \
	"icmp and src host $LAB_I1_IP and icmp[icmptype] == icmp-echo"

check_eq "$PINGS pings i1 -> i2: none answered" "$(ping_received "$LAB_I1" "$LAB_I2_IP" "$PINGS")" 0
check_eq "h2's rule counted $PINGS drops" "$(nft_counter "$LAB_H2" bridge dtlab_fw forward)" "$PINGS"
check "every packet judged (window passed)" lab_task_wait_judged "$task" "$PINGS"
lab_capture_stop req-i2
check_eq "i2 received no echo request" "$(lab_capture_count req-i2)" 0

r=$(report_fetch_text "$task" firewall)
check_verdict "$r" firewall "$PINGS" 0 "$PINGS" 0
jq_true "$r" "verdict: dropped at node h2" '.verdict.at.node == "h2"'
jq_true "$r" "verdict: reason NETFILTER_DROP" '.verdict.reason == "NETFILTER_DROP"'
jq_true "$r" "verdict sentence names the count, h2 and NETFILTER_DROP" \
	'.verdict.sentence | test("\($n) of \($n)") and test("h2") and test("NETFILTER_DROP")' \
	--argjson n "$PINGS"
jq_true "$r" "$PINGS packets, every one dropped" \
	'(.packets | length == $n) and all(.packets[]; .fate == "dropped")' --argjson n "$PINGS"
jq_true "$r" "every drop: name NETFILTER_DROP, a raw reason > 1, a kernel location" \
	'all(.packets[]; .drop.name == "NETFILTER_DROP" and .drop.reason > 1
		and (.drop.where | type == "string" and length > 0))'
jq_true "$r" "every path: h1 port-in -> h1 uplink-out -> h2 uplink-in -> drop on h2" \
	'all(.packets[]; path[:-1] == $p and lasthop.hook == "drop" and lasthop.node == "h2")' \
	--argjson p "$PATH_TO_DROP"
jq_true "$r" "every drop is timed after h2 uplink-in (same node, same clock)" \
	'all(.packets[]; lasthop.ts_ns >= before_drop.ts_ns)'
jq_true "$r" "per-hop table: h2 uplink-in seen $PINGS, dropped $PINGS, top reason NETFILTER_DROP" \
	'row("h2"; "ul0"; "uplink-in"; "request") | .seen == $n and .dropped == $n
		and .top_reason == "NETFILTER_DROP"' --argjson n "$PINGS"
jq_true "$r" "per-hop table: h1 hops lost nothing" \
	'all(.hops[] | select(.node == "h1"); .dropped == 0 and .vanished == 0)'
jq_true "$r" "per-hop table: no row for h2 port-out, or one that saw nothing" \
	'(row("h2"; "pt1"; "port-out"; "request") // {seen: 0}) | .seen == 0'
jq_true "$r" "no sample left unmatched" '.unmatched == 0'
jq_true "$r" "exactly one drop hop per packet (only h2's agent reports h2's drops)" \
	'all(.packets[]; [.hops[] | select(.hook == "drop")] | length == 1)'
echo "# verdict: $(jq_val "$r" '.verdict.sentence')"

# The rule goes, the same task's packets are delivered again.
check "h2: remove the rule" lab_in "$LAB_H2" nft delete table bridge dtlab_fw
check "$AFTER more pings, all answered" lab_in "$LAB_I1" ping -c "$AFTER" -i 0.05 -W 1 -q "$LAB_I2_IP"
check "every packet judged (window passed)" lab_task_wait_judged "$task" $((PINGS + AFTER))
r=$(report_fetch "$task" firewall-after)
check_verdict "$r" "after the rule is gone" $((PINGS + AFTER)) "$AFTER" "$PINGS" 0
jq_true "$r" "after: the delivered ones take the full path" \
	'[.packets[] | select(.fate == "delivered")] | length == $n and all(.[]; path == $p)' \
	--argjson n "$AFTER" --argjson p "$REQ_PATH"

# The drop tracer is global: h1's agent sees h2's drops of colored packets and must only
# count them; h2's agent reports them.
lab_bg_stop agent-h1
lab_bg_stop agent-h2
check_eq "h2's agent reported exactly the $PINGS drops" \
	"$(exit_counter "$LAB_DIR/agent-h2.log" DT-AGENT-EXIT drops)" "$PINGS"
check_eq "h1's agent reported no drop" "$(exit_counter "$LAB_DIR/agent-h1.log" DT-AGENT-EXIT drops)" 0
check_range "h1's agent counted h2's drops as another namespace's" \
	"$(exit_counter "$LAB_DIR/agent-h1.log" DT-AGENT-EXIT drops_other_netns)" "$PINGS" 1000000000

checks_teardown_clean
