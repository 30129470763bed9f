#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_flood_firewall.sh - copies, scenario 2 (issue 13): a firewall on the destination
# host, on an overlay that floods (3 hosts and gw, --fdb flood). An nftables rule in h3's
# bridge (forward hook) drops the echo requests from i1 to i31; the copies h1 sends to h2
# and gw are discarded by their bridges as every copy is.
#
# The report must put the loss where it is: every packet dropped at h3, reason
# NETFILTER_DROP, after h3 uplink-in (the destination branch), not at a bystander; the
# copies are "filtered" at h2 and gw, counted in copies[] and nowhere in the verdict or
# the loss table.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtxd" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtxd}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
PINGS=10
BYSTANDERS='["h2","gw"]'
PATH_TO_DROP='["h1/pt1/port-in","h1/ul0/uplink-out","h3/ul0/uplink-in"]'

flood_lab_up "lab up: h1, h2, h3 and gw flood to each other, agents on each"
flood_warm_up h2 gw

checks_ping_task i31

check "h3: nftables bridge rule drops echo requests i1 -> i31" \
	nft_bridge_drop "$LAB_H3" dtlab_fw forward "ip saddr $LAB_I1_IP ip daddr $LAB_I31_IP icmp type echo-request"
check "capture: echo requests at i31 eth0" lab_capture_start req-i31 "$LAB_I31" eth0 \
	"icmp and src host $LAB_I1_IP and icmp[icmptype] == icmp-echo"

check_eq "$PINGS pings i1 -> i31: none answered" "$(ping_received "$LAB_I1" "$LAB_I31_IP" "$PINGS")" 0
check_eq "h3's rule counted $PINGS drops" "$(nft_counter "$LAB_H3" bridge dtlab_fw forward)" "$PINGS"
check "every packet judged (window passed)" lab_task_wait_judged "$task" "$PINGS"
lab_capture_stop req-i31
check_eq "i31 received no echo request" "$(lab_capture_count req-i31)" 0

r=$(report_fetch_text "$task" flood-firewall)
check_verdict "$r" "flood firewall" "$PINGS" 0 "$PINGS" 0
jq_true "$r" "verdict: dropped at node h3, reason NETFILTER_DROP" \
	'.verdict.at.node == "h3" and .verdict.reason == "NETFILTER_DROP"'
jq_true "$r" "verdict sentence names the count, h3 and NETFILTER_DROP, and no bystander" \
	'.verdict.sentence | test("\($n) of \($n)") and test("h3") and test("NETFILTER_DROP")
		and (test("h2|gw") | not)' --argjson n "$PINGS"
jq_true "$r" "$PINGS packets, every one dropped with NETFILTER_DROP, its destination known, with 2 copies" \
	'(.packets | length == $n) and all(.packets[]; .fate == "dropped" and .drop.name == "NETFILTER_DROP"
		and .destination_known == true and .copies == 2)' --argjson n "$PINGS"
jq_true "$r" "every destination branch: h1 port-in -> h1 uplink-out -> h3 uplink-in -> drop on h3" \
	'all(.packets[]; dpath | .[:-1] == $p and (.[-1] | startswith("h3/") and endswith("/drop")))' \
	--argjson p "$PATH_TO_DROP"
jq_true "$r" "the drop hop on the destination branch: NETFILTER_DROP with a kernel location" \
	'all(.packets[]; [.hops[] | select(.branch == "destination" and .hook == "drop")]
		| length == 1 and .[0].drop.name == "NETFILTER_DROP" and (.[0].drop.where | length > 0))'
jq_true "$r" "every packet: one copy ends at h2 and one at gw, both filtered" \
	'all(.packets[]; [copy_ends[] | "\(.node) \(.copy_fate)"] | sort == ["gw filtered", "h2 filtered"])'
check_tree "$r" "flood firewall"
check_hop_latency_tree "$r" "flood firewall"
jq_true "$r" "per-hop table: h3 uplink-in seen $PINGS, dropped $PINGS, top reason NETFILTER_DROP" \
	'row("h3"; "ul0"; "uplink-in"; "request") | .seen == $n and .dropped == $n
		and .top_reason == "NETFILTER_DROP"' --argjson n "$PINGS"
jq_true "$r" "per-hop table: h1 hops seen $PINGS each (the destination branch), lost nothing" \
	'[.hops[] | select(.node == "h1") | "\(hopkey) \(.seen) \(.dropped) \(.vanished)"] | sort
		== ["h1/pt1/port-in \($n) 0 0", "h1/ul0/uplink-out \($n) 0 0"]' --argjson n "$PINGS"
check_loss_table_destination "$r" "flood firewall" "$BYSTANDERS"
check_copies "$r" "flood firewall" "$(copies_rows request "$PINGS" h2 filtered gw filtered)"
jq_true "$r" "no sample left unmatched" '.unmatched == 0'
echo "# verdict: $(jq_val "$r" '.verdict.sentence')"

check_samples_accounted "flood firewall" "$r"
check_eq "kernel: drops reported by the agents of h1 h2 h3 gw" \
	"$(agent_exit h1 drops) $(agent_exit h2 drops) $(agent_exit h3 drops) $(agent_exit gw drops)" \
	"0 $PINGS $PINGS $PINGS"

checks_teardown_clean
