#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_flood_learn.sh - copies, scenario 6 (issue 13): a flow that starts flooded and
# turns unicast as the overlay learns (3 hosts, --fdb learn: the kernel's VXLAN learning,
# all-zeros FDB entries for what is not learned yet).
#
# Set-up: i1 and i31 have static neighbours (no ARP); h1's vxlan0 forgets where i31's MAC
# lives (as when its entry ages out), and h2's bridge knows nothing (flushed, as a
# bystander that never heard from i31). Then i1 pings i31:
#   - the first echo request is unknown unicast at h1's vxlan0: it goes to h3 and, a copy,
#     to h2, whose bridge floods it to its own port (i2 gets it, and its kernel discards a
#     frame for another MAC);
#   - h3's vxlan0 learned i1 from that request, so the reply goes to h1 alone, and h1's
#     vxlan0 learns i31 -> h3 from it: every later request is unicast, no copy.
# The report must say: every packet delivered at h3; the first with one copy (to h2,
# h1 uplink-out -> h2 uplink-in -> h2 port-out, "filtered": a port whose instance is not
# the destination got it), the others with none; the verdict and the loss table ignore
# the copy; every sample is a hop.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtxl" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtxl}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
PINGS=10
COLOR_FILTER='ip[6] & 0x80 != 0'
DEST_PATH='["h1/pt1/port-in","h1/ul0/uplink-out","h3/ul0/uplink-in","h3/pt1/port-out"]'
FIRST_COPY='[["h1/pt1/port-in","h1/ul0/uplink-out","h2/ul0/uplink-in","h2/pt1/port-out"]]'
ECHO_REQ="IP $LAB_I1_IP > $LAB_I31_IP: ICMP echo request"

# vxlan_knows HOST MAC [VTEP]: HOST's vxlan0 has an entry (learned or not) for MAC (to
# VTEP); vxlan_forgot and bridge_forgot: the opposites of vxlan_knows and bridge_knows.
vxlan_knows() {
	bridge -n "$LAB_P-$1" fdb show dev vxlan0 2>/dev/null | grep -qi "^$2 dst ${3:-}"
}
vxlan_forgot() { ! vxlan_knows "$@"; }
bridge_forgot() { ! bridge_knows "$@"; }

checks_lab_up "lab up (3 hosts, --fdb learn, window_ms $WINDOW_MS)" \
	"lab up: h1, h2, h3 with VXLAN learning (all-zeros entries for the unknown), agents on each" --hosts 3 --fdb learn --window-ms "$WINDOW_MS"

check "static neighbours i1 <-> i31" lab_static_neighbours i1 i31
bridge -n "$LAB_H1" fdb del "$LAB_I31_MAC" dev vxlan0 self 2>/dev/null
check "h1's vxlan0 does not know where i31's MAC is (entry deleted)" vxlan_forgot h1 "$LAB_I31_MAC"
check "h2's bridge forgets every MAC it learned (fdb_flush)" ip -n "$LAB_H2" link set br0 type bridge fdb_flush
check "h2's bridge does not know i31's MAC" bridge_forgot h2 "$LAB_I31_MAC"

checks_ping_task i31

check "capture: VXLAN on h2 ul0" lab_capture_start ul-h2 "$LAB_H2" ul0 "udp port 4789"
check "capture: echo requests for i31 at i2 eth0" lab_capture_start i2-any "$LAB_I2" eth0 "icmp and dst host $LAB_I31_IP"
check "capture: color at i2 eth0" lab_capture_start color-i2 "$LAB_I2" eth0 "$COLOR_FILTER"

check "$PINGS pings i1 -> i31, all answered" lab_in "$LAB_I1" ping -c "$PINGS" -i 0.05 -W 1 -q "$LAB_I31_IP"
check "every packet judged (window passed)" lab_task_wait_judged "$task" "$PINGS"
for c in ul-h2 i2-any color-i2; do lab_capture_stop "$c"; done

check_eq "kernel: h2's underlay got one copy, of the first echo request only" "$(capture_vxlan_count ul-h2 "$ECHO_REQ")" 1
check_eq "kernel: h2's bridge flooded that copy to its port: i2 got one echo request for i31" "$(lab_capture_count i2-any)" 1
check_no_color color-i2 "the copy reached i2 without the color"
check "kernel: h1's vxlan0 learned i31's MAC -> h3 ($LAB_H3_UL_IP)" vxlan_knows h1 "$LAB_I31_MAC" "$LAB_H3_UL_IP "

r=$(report_fetch_text "$task" flood-learn)
check_verdict "$r" "flood learn" "$PINGS" "$PINGS" 0 0
jq_true "$r" "verdict: no loss" '.verdict.reason == "" and .verdict.at == null and (.verdict.sentence | test("no loss"; "i"))'
jq_true "$r" "$PINGS packets, every one delivered, its destination known" \
	'(.packets | length == $n) and all(.packets[]; .fate == "delivered" and .destination_known == true)' --argjson n "$PINGS"
jq_true "$r" "every destination branch: h1 port-in -> h1 uplink-out -> h3 uplink-in -> h3 port-out" \
	'all(.packets[]; dpath == $p)' --argjson p "$DEST_PATH"
jq_true "$r" "copies by ICMP sequence: 1 for the first packet, 0 for the $((PINGS - 1)) others" \
	'[.packets | sort_by(.ident)[] | .copies] == [1] + [range(1; $n) | 0]' --argjson n "$PINGS"
jq_true "$r" "the first packet's copy: h1 uplink-out -> h2 uplink-in -> h2 port-out (h2's bridge flooded it)" \
	'(.packets | sort_by(.ident) | .[0] | copy_paths) == $c' --argjson c "$FIRST_COPY"
jq_true "$r" "the later packets: 4 hops each, all on the destination branch" \
	'all(.packets | sort_by(.ident) | .[1:][]; (.hops | length == 4) and all(.hops[]; .branch == "destination"))'
check_tree "$r" "flood learn"
check_hop_latency_tree "$r" "flood learn"
jq_true "$r" "per-hop loss table: the destination branch, each hop seen $PINGS, nothing lost" \
	'[.hops[] | "\(hopkey) \(.direction) \(.seen) \(.dropped) \(.vanished)"] | sort
		== ($p | map("\(.) request \($n) 0 0") | sort)' --argjson p "$DEST_PATH" --argjson n "$PINGS"
check_loss_table_destination "$r" "flood learn" '["h2"]'
jq_true "$r" "the first packet's copy is filtered (it reached a port whose instance is not the destination)" \
	'[.packets | sort_by(.ident) | .[0] | copy_ends[] | .copy_fate] == ["filtered"]'
check_copies "$r" "flood learn" '[{"node":"h2","direction":"request","fate":"filtered","count":1}]'
jq_true "$r" "copies[]: the copy ended at h2/pt1 port-out" '[.copies[] | hopkey] == ["h2/pt1/port-out"]'
jq_true "$r" "no sample left unmatched" '.unmatched == 0'
echo "# verdict: $(jq_val "$r" '.verdict.sentence')"
echo "# the first packet's copy ends: $(jq_val "$r" '[.packets | sort_by(.ident) | .[0] | copy_ends[] | "\(hopkey) \(.copy_fate)"] | join("; ")')"

check_samples_accounted "flood learn" "$r"
check_eq "kernel: h1 colored each ping once; no agent reported a drop" \
	"$(agent_exit h1 colored) $(agent_exit h1 drops) $(agent_exit h2 drops) $(agent_exit h3 drops)" "$PINGS 0 0 0"

checks_teardown_clean
