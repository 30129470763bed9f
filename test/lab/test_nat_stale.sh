#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_nat_stale.sh - NAT inside the overlay (issue 20): a translation that has ended must
# not be applied to a later packet that was not translated. 3 hosts, unicast FDB, router rt
# with the DNAT-only setup of test_nat_dnat.sh (i31 readdressed to 10.101.0.31/24 behind
# rt; rt DNATs the VIP 10.99.0.100 to it); i1 also routes the backend subnet via rt, so it
# can reach the backend directly, untranslated, through the same router. rt's conntrack
# forgets an ICMP flow 1 s after its last packet (nf_conntrack_icmp_timeout = 1, instead
# of 30 s: only to keep the test short).
#
#   1. Task A (icmp i1 -> VIP, requests): PINGS_A pings to the VIP with ICMP id ID. rt
#      translates them (i1 -> 10.101.0.31, id ID); its overlay program records that
#      translation in dt_nat.
#   2. rt's conntrack entry of that flow expires (the test waits until rt has no ICMP
#      entry): the translation is over.
#   3. Task B (icmp i1 -> 10.101.0.31, requests): PINGS_B pings straight to the backend,
#      same ICMP id. rt routes them without any translation (a new conntrack entry with no
#      NAT); their tuple is the one A's translated packets had.
#
# The report of A must still hold its PINGS_A packets, delivered; B's PINGS_B packets must
# be B's, each along h1 port-in -> h1 uplink-out -> rt uplink-in -> rt uplink-out -> h3
# uplink-in -> h3 port-out, with no translation anywhere.
#
# Today (the data plane of c9d1422) this fails: dt_nat entries outlive the conntrack entry
# they were learned from (nothing removes them; the map is LRU), and rt's uplink-in and
# uplink-out samples of B's packets are stamped with A's stale "before" tuple (i1 -> VIP,
# DT_SAMPLE_F_NAT); the stitcher attributes a sample by its orig first, so those hops go
# to A: A reports PINGS_B phantom requests "vanished after rt/ul0 uplink-out", and B's
# paths jump from h1 uplink-out to h3 uplink-in without the router.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtns" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtns}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/router.sh
. "$(dirname "${BASH_SOURCE[0]}")/router.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
PINGS_A=2
PINGS_B=3
ICMP_ID=4747
BACKEND=$LAB_I31_BACKEND_IP
A_PATH='["h1/pt1/port-in","h1/ul0/uplink-out","rt/ul0/uplink-in","rt/ul0/uplink-out","h3/ul0/uplink-in","h3/pt1/port-out"]'
B_PATH=$A_PATH

rt_icmp_entries() { lab_in "$LAB_RT" grep -c '^ipv4 .* icmp ' /proc/net/nf_conntrack; }
rt_icmp_gone() {
	local start
	start=$(lab__now)
	until [[ $(rt_icmp_entries) == 0 ]]; do
		lab__elapsed_lt "$start" 10 || return 1
		sleep 0.2
	done
}

nat_lab_up
nat_router_up
nat_backend_subnet
check "i1 routes $LAB_VIP_NET and $LAB_BACKEND_NET via rt" eval \
	'lab_route_via "$LAB_I1" "$LAB_VIP_NET" "$LAB_RT_IP" && lab_route_via "$LAB_I1" "$LAB_BACKEND_NET" "$LAB_RT_IP"'
check "rt: VIP $LAB_VIP -> $BACKEND, DNAT only" lab_router_lb rt "$LAB_VIP" "$BACKEND" dnat
check "rt: conntrack forgets an ICMP flow after 1 s" \
	lab_in "$LAB_RT" sysctl -q -w net.netfilter.nf_conntrack_icmp_timeout=1

# 1. Through the VIP, translated.
checks_task task_a "create task A (icmp i1 -> VIP, requests)" "task A armed" \
	--src "$LAB_I1_IP" --dst "$LAB_VIP" --proto icmp --vni "$LAB_VNI"
check "$PINGS_A pings i1 -> VIP (ICMP id $ICMP_ID), all answered" \
	lab_in "$LAB_I1" ping -e "$ICMP_ID" -c "$PINGS_A" -i 0.2 -W 1 -q "$LAB_VIP"
# shellcheck disable=SC2154 # task_a: set by checks_task
check "task A: every packet judged" lab_task_wait_judged "$task_a" "$PINGS_A"

# 2. The translation ends.
check "rt's conntrack has no ICMP entry any more (the translation is over)" rt_icmp_gone

# 3. Straight to the backend, untranslated, the same tuple as A's translated packets.
checks_task task_b "create task B (icmp i1 -> $BACKEND, requests)" "task B armed" \
	--src "$LAB_I1_IP" --dst "$BACKEND" --proto icmp --vni "$LAB_VNI"
check "capture: echo requests at i31" lab_capture_start req-i31 "$LAB_I31" eth0 "icmp[icmptype] == icmp-echo"
check "$PINGS_B pings i1 -> $BACKEND (same ICMP id), all answered" \
	lab_in "$LAB_I1" ping -e "$ICMP_ID" -c "$PINGS_B" -i 0.2 -W 1 -q "$BACKEND"
# shellcheck disable=SC2154 # task_b: set by checks_task
check "task B: every packet judged" lab_task_wait_judged "$task_b" "$PINGS_B"
lab_capture_stop req-i31
check_eq "i31 saw B's requests from i1 itself, untranslated" \
	"$(lab_capture_read req-i31 "src host $LAB_I1_IP and dst host $BACKEND" | wc -l)" "$PINGS_B"
check "task A: judged again after B's traffic (window passed)" lab_task_wait_judged "$task_a" "$PINGS_A"

ra=$(report_fetch_text "$task_a" stale-a)
rb=$(report_fetch_text "$task_b" stale-b)
check_verdict "$ra" "task A" "$PINGS_A" "$PINGS_A" 0 0
jq_true "$ra" "task A: its $PINGS_A requests only, all along the translated path" \
	'(.packets | length == $n) and all(.packets[]; path == $p and .fate == "delivered")' \
	--argjson n "$PINGS_A" --argjson p "$A_PATH"
check_verdict "$rb" "task B" "$PINGS_B" "$PINGS_B" 0 0
jq_true "$rb" "task B: every request h1 port-in -> h1 uplink-out -> rt uplink-in -> rt uplink-out -> h3 uplink-in -> h3 port-out" \
	'(.packets | length == $n) and all(.packets[]; path == $p)' --argjson n "$PINGS_B" --argjson p "$B_PATH"
jq_true "$rb" "task B: no translation at any hop (every hop i1 -> $BACKEND)" \
	'all(.packets[]; . as $p | all(.hops[]; hflow($p) | .src == $c and .dst == $b))' \
	--arg c "$LAB_I1_IP" --arg b "$BACKEND"
check_eq "task B: the text report says no hop 'becomes' anything" \
	"$(grep -c 'becomes' "$LAB_DIR/report-stale-b.txt")" 0
jq_true "$rb" "no sample left unmatched" '.unmatched == 0'
echo "# A: $(jq_val "$ra" '.verdict.sentence'); B: $(jq_val "$rb" '.verdict.sentence')"

checks_teardown_clean
