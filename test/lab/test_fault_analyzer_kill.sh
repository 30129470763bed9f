#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_fault_analyzer_kill.sh - fault test (issue 7): the analyzer is killed with SIGKILL
# while it holds samples it acknowledged but could not attribute yet, and after it learned
# a NAT translation that later samples need. On restart nothing it acknowledged may be
# missing and nothing may be counted twice.
#
# The lab runs with the gateway (--gw) and a long analysis window, so that a held sample
# waits seconds for the sample that attributes it. One traced UDP flow, requests only:
# i1:40300 -> 203.0.113.10:9, whose packets leave through gw.
#
# How samples come to be held: gw translates the flow two ways, one after the other.
#  - Stateless (an nftables rule of this test): the flow is not tracked (notrack) and a
#    postrouting rule rewrites its source to 203.0.113.1, keeping the port. gw's gw-out
#    sample then has the outside tuple and no conntrack entry to name the inside one: the
#    analyzer holds it until a translation for that tuple is learned (or the window
#    gives up on it: unmatched).
#  - Masquerade (the lab's): conntrack translates the flow to the same 203.0.113.1:40300
#    (the port is free, so it is kept), and the gw-out sample carries the inside tuple:
#    it teaches the translation.
#
#   A. Held samples survive a SIGKILL: 5 datagrams stateless; once the analyzer reports
#      them held (DT-ANA-STATS held=5), SIGKILL and restart; then 3 datagrams through the
#      masquerade teach the translation. Every one of the 8 packets must have its 4 hops
#      (h1 port-in, h1 uplink-out, gw uplink-in, gw gw-out), be delivered and counted
#      once, and nothing be unmatched.
#   B. Learned translations survive a SIGKILL: once conntrack forgot the flow on gw (a
#      short UDP timeout there), SIGKILL and restart, then 4 datagrams stateless again.
#      Their gw-out samples can be attributed only by the translation learned in A, before
#      the restart: again every packet with its 4 hops, once, and nothing unmatched.
#   C. The unmatched count survives a SIGKILL: a second task (source port 40302) whose
#      flow only ever takes the stateless path, so nothing teaches its translation: its 3
#      gw-out samples are held, then counted unmatched when the window gives up on them.
#      After a SIGKILL and restart, the reports still count exactly 3 unmatched.
#
# Exact counts: datagrams sent (and gw's counter of stateless ones) = packets in the
# report = packets colored; no wall-clock assertion (waits have generous limits).
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtak" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtak}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-6000}
SPORT=40300
DPORT=9 # nothing listens: the internet namespace answers "port unreachable" (not traced)
HELD_A=5
TEACH_A=3
STATELESS_B=4
SPORT_C=40302
STRANGERS_C=3
REQ_PATH='["h1/pt1/port-in","h1/ul0/uplink-out","gw/ul0/uplink-in","gw/ext0/gw-out"]'

# DT-ANA-STATS every second: how many samples the analyzer holds.
export DT_LAB_ANALYZER_EXTRA="stats_interval_s = 1;${DT_LAB_ANALYZER_EXTRA:+ $DT_LAB_ANALYZER_EXTRA}"

checks_lab_up "lab up (overlay, gateway with NAT, daemons, window_ms $WINDOW_MS)" \
	"lab up: gateway gw, internet namespace, agents h1, h2, gw, window_ms $WINDOW_MS" --gw --window-ms "$WINDOW_MS"

# ---------------------------------------------------------------------------------------
# Helpers

# stateless_up [SPORT [TABLE]] / stateless_down [TABLE]: gw translates the traced flow
# (from source port SPORT) without conntrack.
stateless_up() {
	local sport=${1:-$SPORT} table=${2:-dtak_stateless}
	lab_in "$LAB_GW" nft -f - <<-EOF
		table ip $table {
			chain raw {
				type filter hook prerouting priority -300; policy accept;
				ip saddr $LAB_I1_IP udp sport $sport udp dport $DPORT notrack
			}
			chain out {
				type filter hook postrouting priority 0; policy accept;
				oifname "ext0" ip saddr $LAB_I1_IP udp sport $sport udp dport $DPORT counter ip saddr set $LAB_GW_EXT_IP
			}
		}
	EOF
}
stateless_down() { lab_in "$LAB_GW" nft delete table ip "${1:-dtak_stateless}"; }

# stats_val KEY: KEY=N of the newest DT-ANA-STATS line of the running analyzer.
stats_val() {
	exit_counter "$LAB_DIR/analyzer.log" DT-ANA-STATS "$1"
}

# wait_stat KEY N: the running analyzer reports KEY=N (within 30 s).
wait_stat() {
	local start
	start=$(lab__now)
	while [[ $(stats_val "$1") != "$2" ]]; do
		lab__elapsed_lt "$start" 30 || return 1
		sleep 0.1
	done
}

# ct_gone: gw's conntrack has no entry of the traced flow any more.
ct_gone() {
	! lab_in "$LAB_GW" grep -q "sport=$SPORT dport=$DPORT" /proc/net/nf_conntrack
}

# wait_ct_gone: within 20 s.
wait_ct_gone() {
	local start
	start=$(lab__now)
	until ct_gone; do
		lab__elapsed_lt "$start" 20 || return 1
		sleep 0.2
	done
}

# kill_restart WHAT: SIGKILL, then start again on the same store (in this shell: the
# analyzer is its child).
kill_restart() {
	if lab_analyzer_stop KILL; then
		ok "$1: analyzer killed (SIGKILL, status $LAB_ANALYZER_RC)"
	else
		not_ok "$1: analyzer killed (SIGKILL)"
	fi
	if lab_analyzer_start; then
		ok "$1: analyzer started again on its store (API answers)"
	else
		not_ok "$1: analyzer started again on its store"
	fi
}

# check_report NAME N UNMATCHED: the task's report holds exactly N packets, each once,
# each delivered with the 4 hops of a request through gw, the gw-out hop showing the
# outside tuple; N colored; unmatched as before.
check_report() {
	local name=$1 n=$2 r
	check "$name: every packet judged ($n)" lab_task_wait_judged "$task" "$n" 60
	r=$(report_fetch_text "$task" "$name")
	check_verdict "$r" "$name" "$n" "$n" 0 0
	jq_true "$r" "$name: exactly $n packets, colored $n" \
		'(.packets | length == $n) and .task.colored == $n' --argjson n "$n"
	jq_true "$r" "$name: no packet counted twice (distinct ip_id and ident)" \
		'[.packets[] | "\(.ip_id)/\(.ident)"] | (unique | length) == length'
	jq_true "$r" "$name: every packet h1 port-in -> h1 uplink-out -> gw uplink-in -> gw gw-out, delivered" \
		'all(.packets[]; path == $p and .fate == "delivered")' --argjson p "$REQ_PATH"
	jq_true "$r" "$name: the gw-out hop shows the outside tuple ($LAB_GW_EXT_IP:$SPORT)" \
		'all(.packets[]; . as $p | lasthop | hflow($p) | .src == $x and .sport == $sp)' \
		--arg x "$LAB_GW_EXT_IP" --argjson sp "$SPORT"
	jq_true "$r" "$name: the packets are named by the inside tuple ($LAB_I1_IP:$SPORT)" \
		'all(.packets[]; .flow.src == $s and .flow.sport == $sp)' --arg s "$LAB_I1_IP" \
		--argjson sp "$SPORT"
	check_eq "$name: unmatched unchanged" "$(jq_val "$r" .unmatched)" "$3"
}

# ---------------------------------------------------------------------------------------
# Setup

# conntrack forgets an unanswered UDP flow on gw after 2 s (B waits for that).
check "gw: UDP conntrack timeout 2 s" lab_in "$LAB_GW" sysctl -qw net.netfilter.nf_conntrack_udp_timeout=2
checks_task task "create the task (udp $LAB_I1_IP:$SPORT -> $LAB_INET_IP:$DPORT, requests)" "task armed" \
	--src "$LAB_I1_IP" --dst "$LAB_INET_IP" --sport "$SPORT" --dport "$DPORT" --proto udp --vni "$LAB_VNI"

# ---------------------------------------------------------------------------------------
# A. Held samples survive a SIGKILL.

check "A: gw translates the flow statelessly (notrack, source rewritten)" stateless_up
check_eq "A: $HELD_A datagrams" "$(lab_udp_send "$LAB_I1" 20 "$SPORT:$LAB_INET_IP:$DPORT:$HELD_A")" "$HELD_A"
check_eq "A: gw rewrote $HELD_A of them statelessly" "$(nft_counter "$LAB_GW" ip dtak_stateless out)" "$HELD_A"
check "A: the analyzer holds their $HELD_A gw-out samples (acknowledged)" wait_stat held "$HELD_A"
unmatched0=$(stats_val unmatched)
check_eq "A: nothing unmatched before the kill" "$unmatched0" 0
kill_restart A
check "A: the analyzer restored $HELD_A held samples" \
	grep -q "DT-ANA-RESTORE.* $HELD_A held samples" "$LAB_DIR/analyzer.log"
check "A: back to the masquerade" stateless_down
check_eq "A: $TEACH_A datagrams through the masquerade (they teach the translation)" \
	"$(lab_udp_send "$LAB_I1" 20 "$SPORT:$LAB_INET_IP:$DPORT:$TEACH_A")" "$TEACH_A"
check_report A $((HELD_A + TEACH_A)) "$unmatched0"

# ---------------------------------------------------------------------------------------
# B. Learned translations survive a SIGKILL.

check "B: gw's conntrack forgot the flow" wait_ct_gone
kill_restart B
check "B: the analyzer learned its translations again" \
	grep -qE "DT-ANA-RESTORE.* [1-9][0-9]* translations" "$LAB_DIR/analyzer.log"
check "B: gw translates the flow statelessly again" stateless_up
check_eq "B: $STATELESS_B datagrams" \
	"$(lab_udp_send "$LAB_I1" 20 "$SPORT:$LAB_INET_IP:$DPORT:$STATELESS_B")" "$STATELESS_B"
check_eq "B: gw rewrote $STATELESS_B of them statelessly" \
	"$(nft_counter "$LAB_GW" ip dtak_stateless out)" "$STATELESS_B"
check_report B $((HELD_A + TEACH_A + STATELESS_B)) "$unmatched0"
check_eq "B: the analyzer holds nothing" "$(stats_val held)" 0

# ---------------------------------------------------------------------------------------
# C. The unmatched count survives a SIGKILL.

task_c=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_INET_IP" --sport "$SPORT_C" --dport "$DPORT" \
	--proto udp --vni "$LAB_VNI")
check "C: create the second task (udp $LAB_I1_IP:$SPORT_C -> $LAB_INET_IP:$DPORT)" test -n "$task_c"
[[ -n $task_c ]] && check "C: second task armed" lab_task_wait_armed "$task_c"
check "C: gw translates its flow statelessly, always" stateless_up "$SPORT_C" dtak_stateless_c
check_eq "C: $STRANGERS_C datagrams" \
	"$(lab_udp_send "$LAB_I1" 20 "$SPORT_C:$LAB_INET_IP:$DPORT:$STRANGERS_C")" "$STRANGERS_C"
check "C: their gw-out samples are counted unmatched once the window gives up" \
	wait_stat unmatched "$STRANGERS_C"
kill_restart C
for id in "$task" "$task_c"; do
	[[ -n $id ]] || continue
	r=$(report_fetch "$id" "C-$id")
	check_eq "C: task $id's report counts $STRANGERS_C unmatched after the restart" \
		"$(jq_val "$r" .unmatched)" "$STRANGERS_C"
done
r=$(report_fetch "$task" C-final)
jq_true "$r" "C: the first task still has its $((HELD_A + TEACH_A + STATELESS_B)) packets, all delivered" \
	'(.packets | length == $n) and all(.packets[]; .fate == "delivered")' \
	--argjson n $((HELD_A + TEACH_A + STATELESS_B))

checks_teardown_clean
