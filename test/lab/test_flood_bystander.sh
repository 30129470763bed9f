#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_flood_bystander.sh - copies, scenario 3 (issue 13): a firewall rule on a bystander
# host drops the flow, on an overlay that floods (3 hosts and gw, --fdb flood). An
# nftables rule in h2's bridge, at the prerouting hook (before the bridge decides where a
# frame goes), drops the echo requests from i1 to i31: only the copies h1 floods to h2 meet
# it; the packets themselves reach i31 through h3.
#
# The report must say: no loss (every packet delivered); each packet's copy to h2 ends
# "dropped" there with reason NETFILTER_DROP, its copy to gw "filtered"; copies[] counts
# them per bystander; neither enters the verdict or the loss table.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtxb" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtxb}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
PINGS=10
BYSTANDERS='["h2","gw"]'
DEST_PATH='["h1/pt1/port-in","h1/ul0/uplink-out","h3/ul0/uplink-in","h3/pt1/port-out"]'

flood_lab_up "lab up: h1, h2, h3 and gw flood to each other, agents on each"
flood_warm_up gw

checks_ping_task i31

# Prerouting: the copy is dropped before h2's bridge would discard it as not for h2.
check "h2 (a bystander): nftables bridge prerouting rule drops echo requests i1 -> i31" \
	nft_bridge_drop "$LAB_H2" dtlab_fw prerouting "ip saddr $LAB_I1_IP ip daddr $LAB_I31_IP icmp type echo-request"
check "capture: echo requests at i31 eth0" lab_capture_start req-i31 "$LAB_I31" eth0 \
	"icmp and src host $LAB_I1_IP and icmp[icmptype] == icmp-echo"

check "$PINGS pings i1 -> i31, all answered" lab_in "$LAB_I1" ping -c "$PINGS" -i 0.05 -W 1 -q "$LAB_I31_IP"
check_eq "h2's rule counted $PINGS drops (one copy of each ping)" "$(nft_counter "$LAB_H2" bridge dtlab_fw prerouting)" "$PINGS"
check "every packet judged (window passed)" lab_task_wait_judged "$task" "$PINGS"
lab_capture_stop req-i31
check_eq "i31 received every echo request" "$(lab_capture_count req-i31)" "$PINGS"

r=$(report_fetch_text "$task" flood-bystander)
check_verdict "$r" "flood bystander firewall" "$PINGS" "$PINGS" 0 0
jq_true "$r" "verdict: no loss (reason empty, at null, the sentence says so, names no bystander)" \
	'.verdict.reason == "" and .verdict.at == null
		and (.verdict.sentence | test("no loss"; "i") and (test("h2|NETFILTER") | not))'
jq_true "$r" "$PINGS packets, every one delivered, its destination known, with 2 copies" \
	'(.packets | length == $n) and all(.packets[]; .fate == "delivered" and .drop == null
		and .destination_known == true and .copies == 2)' --argjson n "$PINGS"
jq_true "$r" "every destination branch: h1 port-in -> h1 uplink-out -> h3 uplink-in -> h3 port-out" \
	'all(.packets[]; dpath == $p)' --argjson p "$DEST_PATH"
jq_true "$r" "every packet: its copy ends dropped at h2 and filtered at gw" \
	'all(.packets[]; [copy_ends[] | "\(.node) \(.copy_fate)"] | sort == ["gw filtered", "h2 dropped"])'
jq_true "$r" "every copy dropped at h2: a drop hop with NETFILTER_DROP and a kernel location, after h2 uplink-in" \
	'all(.packets[]; . as $p | [copy_ends[] | select(.node == "h2")] | length == 1 and all(.[]; .hook == "drop"
		and .drop.name == "NETFILTER_DROP" and (.drop.where | length > 0)
		and ($p.hops[.parent] | hopkey == "h2/ul0/uplink-in")))'
check_tree "$r" "flood bystander firewall"
check_hop_latency_tree "$r" "flood bystander firewall"
jq_true "$r" "per-hop loss table: the destination branch, each hop seen $PINGS, nothing lost" \
	'[.hops[] | "\(hopkey) \(.direction) \(.seen) \(.dropped) \(.vanished)"] | sort
		== ($p | map("\(.) request \($n) 0 0") | sort)' --argjson p "$DEST_PATH" --argjson n "$PINGS"
check_loss_table_destination "$r" "flood bystander firewall" "$BYSTANDERS"
check_copies "$r" "flood bystander firewall" "$(copies_rows request "$PINGS" h2 dropped gw filtered)"
jq_true "$r" "copies[]: the h2 row says NETFILTER_DROP" \
	'[.copies[] | select(.node == "h2")] | length == 1 and .[0].reason == "NETFILTER_DROP" and .[0].hook == "drop"'
jq_true "$r" "no sample left unmatched" '.unmatched == 0'
echo "# verdict: $(jq_val "$r" '.verdict.sentence')"

check_samples_accounted "flood bystander firewall" "$r"
check_eq "kernel: drops reported by the agents of h1 h2 h3 gw" \
	"$(agent_exit h1 drops) $(agent_exit h2 drops) $(agent_exit h3 drops) $(agent_exit gw drops)" \
	"0 $PINGS 0 $PINGS"

checks_teardown_clean
