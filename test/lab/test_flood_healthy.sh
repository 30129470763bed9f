#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_flood_healthy.sh - copies, scenario 1 (issue 13): no loss on an overlay that floods.
# Three hosts and the gateway share VNI 100 with head-end replication (--fdb flood: every
# vxlan0 has nolearning and one all-zeros FDB entry per remote VTEP), so each echo request
# from i1 (h1) to i31 (h3) leaves h1 three times: to h3, and a copy each to h2 and gw,
# whose bridges discard it (they know i31's MAC behind vxlan0; the kernel frees the copy
# in the bridge, reason NOT_SPECIFIED).
#
# Kernel side: the bystanders' underlays carry exactly one copy per ping; their agents
# report exactly one drop each per ping; i2 never sees a copy.
# The report (schema 2): every packet delivered at h3, the verdict says no loss; each
# packet a tree: the destination branch h1 port-in -> h1 uplink-out -> h3 uplink-in ->
# h3 port-out and two copy branches, h1 uplink-out -> h2 (gw) uplink-in -> drop, both
# "filtered"; no negative latency; hop_latency holds exactly the tree's pairs per branch,
# none between two bystanders; the loss table has the destination branch only; copies[]
# counts the filtered copies per bystander; every sample of the agents is a hop.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtxn" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtxn}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
PINGS=10
COLOR_FILTER='ip[6] & 0x80 != 0'
BYSTANDERS='["h2","gw"]'
DEST_PATH='["h1/pt1/port-in","h1/ul0/uplink-out","h3/ul0/uplink-in","h3/pt1/port-out"]'
COPY_PATHS='[["h1/pt1/port-in","h1/ul0/uplink-out","gw/ul0/uplink-in","gw/vxlan0/drop"],
	["h1/pt1/port-in","h1/ul0/uplink-out","h2/ul0/uplink-in","h2/vxlan0/drop"]]'
ECHO_REQ="IP $LAB_I1_IP > $LAB_I31_IP: ICMP echo request"

flood_lab_up "lab up: h1, h2, h3 and gw flood to each other (nolearning, all-zeros FDB entries), agents on each"

# The copies' bridges must know i31 behind vxlan0 (a flooded reply taught them) to discard
# the copies; an unknown MAC would be flooded to their own ports.
flood_warm_up h2 gw

checks_ping_task i31

for h in h2 gw; do
	check "capture: VXLAN on $h ul0" lab_capture_start "ul-$h" "$LAB_P-$h" ul0 "udp port 4789"
done
check "capture: anything for i31 at i2 eth0" lab_capture_start i2-any "$LAB_I2" eth0 "icmp and dst host $LAB_I31_IP"
check "capture: color at i31 eth0" lab_capture_start color-i31 "$LAB_I31" eth0 "$COLOR_FILTER"

check "$PINGS pings i1 -> i31, all answered" lab_in "$LAB_I1" ping -c "$PINGS" -i 0.05 -W 1 -q "$LAB_I31_IP"
check "every packet judged (window passed)" lab_task_wait_judged "$task" "$PINGS"
for c in ul-h2 ul-gw i2-any color-i31; do lab_capture_stop "$c"; done

check_eq "kernel: h2's underlay got one copy of each echo request" "$(capture_vxlan_count ul-h2 "$ECHO_REQ")" "$PINGS"
check_eq "kernel: gw's underlay got one copy of each echo request" "$(capture_vxlan_count ul-gw "$ECHO_REQ")" "$PINGS"
check_eq "kernel: no copy reached i2 (h2's bridge discarded them)" "$(lab_capture_count i2-any)" 0
check_no_color color-i31 "i31 never sees the color"

r=$(report_fetch_text "$task" flood-healthy)
check_verdict "$r" "flood healthy" "$PINGS" "$PINGS" 0 0
jq_true "$r" "verdict: no loss (reason empty, at null, the sentence says so)" \
	'.verdict.reason == "" and .verdict.at == null and (.verdict.sentence | test("no loss"; "i"))'
jq_true "$r" "report schema_version 2" '.schema_version == 2'
jq_true "$r" "$PINGS packets, every one delivered, its destination known, with 2 copies" \
	'(.packets | length == $n) and all(.packets[]; .fate == "delivered" and .destination_known == true
		and .copies == 2 and .drop == null)' --argjson n "$PINGS"
jq_true "$r" "every destination branch: h1 port-in -> h1 uplink-out -> h3 uplink-in -> h3 port-out" \
	'all(.packets[]; dpath == $p)' --argjson p "$DEST_PATH"
jq_true "$r" "every packet: copy branches h1 port-in -> h1 uplink-out -> h2 (gw) uplink-in -> h2 (gw) vxlan0 drop" \
	'all(.packets[]; (copy_paths | sort) == ($c | sort))' --argjson c "$COPY_PATHS"
jq_true "$r" "every packet: three h1 uplink-out hops, one on the destination branch" \
	'all(.packets[]; [.hops[] | select(.node == "h1" and .hook == "uplink-out") | .branch] | sort == ["copy","copy","destination"])'
jq_true "$r" "every bystander copy is filtered" \
	'[.packets[] | copy_ends[] | .copy_fate] | length == 2 * $n and all(.[]; . == "filtered")' --argjson n "$PINGS"
check_tree "$r" "flood healthy"
check_hop_latency_tree "$r" "flood healthy"
jq_true "$r" "hop_latency: no pair between two different bystanders (h2, gw)" \
	'all(.hop_latency[]; (.from.node as $a | .to.node as $b | $by | index($a) != null and index($b) != null
		and $a != $b) | not)' --argjson by "$BYSTANDERS"
jq_true "$r" "hop_latency: the destination branch's 3 pairs, each over the $PINGS packets" \
	'[.hop_latency[] | select(.branch == "destination") | "\(.from | hopkey)>\(.to | hopkey)=\(.count)"] | sort
		== (["h1/pt1/port-in>h1/ul0/uplink-out", "h1/ul0/uplink-out>h3/ul0/uplink-in",
			"h3/ul0/uplink-in>h3/pt1/port-out"] | map("\(.)=\($n)") | sort)' --argjson n "$PINGS"
jq_true "$r" "per-hop loss table: the destination branch, each hop seen $PINGS, nothing lost" \
	'[.hops[] | "\(hopkey) \(.direction) \(.seen) \(.dropped) \(.vanished)"] | sort
		== ($p | map("\(.) request \($n) 0 0") | sort)' --argjson p "$DEST_PATH" --argjson n "$PINGS"
check_loss_table_destination "$r" "flood healthy" "$BYSTANDERS"
check_copies "$r" "flood healthy" "$(copies_rows request "$PINGS" h2 filtered gw filtered)"
jq_true "$r" "copies[]: where the bystanders discarded them: h2/vxlan0 and gw/vxlan0, drop" \
	'[.copies[] | hopkey] | sort == ["gw/vxlan0/drop", "h2/vxlan0/drop"]'
jq_true "$r" "no sample left unmatched" '.unmatched == 0'
echo "# verdict: $(jq_val "$r" '.verdict.sentence')"
echo "# a filtered copy's drop: $(jq_val "$r" '[.packets[0] | copy_ends[] | "\(.node) \(.drop.name) in \(.drop.where)"] | join("; ")')"

check_samples_accounted "flood healthy" "$r"
check_eq "kernel: h1 colored each ping once" "$(agent_exit h1 colored)" "$PINGS"
check_eq "kernel: h2's and gw's agents each reported one drop per ping, h1's and h3's none" \
	"$(agent_exit h1 drops) $(agent_exit h2 drops) $(agent_exit h3 drops) $(agent_exit gw drops)" "0 $PINGS 0 $PINGS"

checks_teardown_clean
