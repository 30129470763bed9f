#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_fault_collector_kill.sh - fault test (issue 7): the collector is killed with SIGKILL
# mid-ingest and restarted on the same store, twice, while traffic flows (pings and a
# stream of UDP datagrams, both traced, until the scenario is over). Nothing the collector
# acknowledged may be missing and nothing may be stored twice.
#
#   1. SIGKILL 1 s into the traffic, wherever the collector happens to be; 0.5 s later the
#      next run, which must store new batches of both agents.
#   2. Then the replies of both ingest endpoints in the management namespace are dropped
#      (nftables): the collector stores what the agents send but they never hear its ACK,
#      the analyzer stores what the collector forwards but the collector never hears its
#      ACK. SIGKILL 0.7 s later; the dead collector's connections are destroyed (ss -K) so
#      that no ACK it held is delivered late; the next run. The agents must resend their
#      unacknowledged batches and the new run acknowledge them without storing them again
#      (its duplicates counter); the new run must forward again what the analyzer never
#      acknowledged and the analyzer acknowledge it without storing it again (its
#      duplicates counter).
#
# Exact accounting (every count from the daemons' own counters, no tolerance):
#   agents      sampled = samples_sent, nothing lost, queued or spooled;
#   collector   batches its store took over the three runs (stored_ever) = batches the
#               agents had acknowledged (each stored once); each restart found the
#               batches of the run before in its store (its ready line's "stored in
#               all"); at the end it holds none (each deleted once the analyzer
#               acknowledged it);
#   analyzer    batches stored = the collector's; samples received = attributed = the
#               agents' samples_sent, none unmatched;
#   reports     hops of every packet of both tasks = the agents' sampled, nothing counted
#               lost; packets colored by the tasks = packets colored by the data planes;
#               every ping and every datagram delivered with its 4 hops.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtfk" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtfk}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
BUDGET=100000
UDP_DPORT=5000
UDP_FLOWS=2        # source ports 40001..40002
UDP_ROUND=500      # datagrams per flow and round, 1 ms apart: ~1800 datagrams/s
KILL1_AT=1.0       # seconds into the traffic: a plain SIGKILL
BEFORE_BLOCK_S=0.3 # after the agents are back on run 2, until the acknowledgements are blocked
BLOCK_S=0.7        # acknowledgements blocked, then SIGKILL
DOWN_S=0.5         # how long the collector stays dead each time
AFTER_S=0.5        # traffic after the agents are back on run 3
REQ_PATH='["h1/pt1/port-in","h1/ul0/uplink-out","h2/ul0/uplink-in","h2/pt1/port-out"]'
REP_PATH='["h2/pt1/port-in","h2/ul0/uplink-out","h1/ul0/uplink-in","h1/pt1/port-out"]'

window_lab_up "lab up: analyzer (window_ms $WINDOW_MS), collector, agents h1 and h2"

# ---------------------------------------------------------------------------------------
# Helpers

# sleep_until START SECONDS: sleeps until SECONDS after START (lab__now).
sleep_until() {
	while lab__elapsed_lt "$1" "$2"; do sleep 0.01; done
}

# ---------------------------------------------------------------------------------------
# Setup

fault_tasks "$UDP_DPORT" "$BUDGET"

# ---------------------------------------------------------------------------------------
# Traffic, and the collector killed twice in the middle of it.

# The traffic runs until the scenario is over: pings every 10 ms, and the UDP stream in
# rounds of UDP_FLOWS x UDP_ROUND datagrams (1 ms apart) until the stop file appears.
fault_traffic_start

# store_seqs: the collector store's last batch seq per sender, "SENDER-HEX=SEQ-HEX ..."
# (read with mdb_dump: LMDB readers in other processes are safe).
store_seqs() {
	mdb_dump -s senders "$LAB_DIR/collector-c1" 2>/dev/null |
		awk '/^HEADER=END/ { d = 1; next } /^DATA=END/ { d = 0 }
			d { if (k == "") k = $1; else { printf "%s=%s ", k, $1; k = "" } }'
}
# agents_stored_since SNAPSHOT: both agents (h1, h2) have a batch in the store newer than
# in SNAPSHOT (store_seqs), i.e. the running collector stored from both; waits up to 15 s.
agents_stored_since() {
	local start now h ok_all
	start=$(lab__now)
	while lab__elapsed_lt "$start" 15; do
		now=$(store_seqs) ok_all=1
		for h in 6831 6832; do # "h1", "h2" in hex
			[[ " $now" == *" $h="* && " $now" != *" $(grep -o "$h=[0-9a-f]*" <<<"$1")"* ]] || ok_all=0
		done
		((ok_all)) && return 0
		sleep 0.1
	done
	return 1
}

# kill_collector WHAT [DESC CMD]: SIGKILL, a check that it died (no exit line), CMD (a check),
# DOWN_S without a collector, the next run on the same store, and both agents' batches
# stored by it.
runs=1
kill_collector() {
	local snap
	stop_daemon collector KILL 2>/dev/null
	snap=$(store_seqs)
	check_eq "collector run $runs killed with SIGKILL $1" "$STOP_RC" killed
	mv "$LAB_DIR/collector.log" "$LAB_DIR/collector.run$runs.log"
	check "collector run $runs died without its exit line (no clean shutdown)" \
		bash -c "! grep -q DT-COLL-EXIT '$LAB_DIR/collector.run$runs.log'"
	if [[ -n ${2:-} ]]; then check "$2" "$3"; fi
	sleep "$DOWN_S"
	lab_bg collector "$LAB_MGMT" "$LAB_BIN/dyetrace-collector" -c "$LAB_DIR/collector.conf"
	runs=$((runs + 1))
	check "collector run $runs started on the same store" lab_wait_listen "$LAB_MGMT" 7400
	check "collector run $runs stored new batches of both agents" agents_stored_since "$snap"
}
# The management namespace's replies on both ingest ports dropped (nftables, output hook):
# the collector stores what agents send but they never hear its ACK, and the analyzer
# stores what the collector forwards but the collector never hears its ACK.
acks_block() {
	lab_in "$LAB_MGMT" nft -f - <<-EOF
		table inet dtfk_acks {
			chain output {
				type filter hook output priority 0; policy accept;
				tcp sport { 7400, 7401 } counter drop
			}
		}
	EOF
}
# acks_unblock: the dead collector's connections to the agents destroyed (ss -K), then the
# replies let through again. Without the first step its orphaned sockets would retransmit
# the ACKs they hold once the path is open, and the agents would learn their batches
# stored after all; with it, they never hear of them and resend them to the next run.
acks_unblock() {
	lab_in "$LAB_MGMT" ss -Htn -K state all "( sport = :7400 )" >/dev/null &&
		lab_in "$LAB_MGMT" nft delete table inet dtfk_acks
}

# 1. Killed wherever it happens to be, under load.
sleep_until "$t0" "$KILL1_AT"
kill_collector "${KILL1_AT}s into the traffic"
# 2. Killed with batches stored and never acknowledged, in both directions.
sleep "$BEFORE_BLOCK_S"
check "acknowledgements of the collector and the analyzer dropped (nftables in mgmt)" acks_block
sleep "$BLOCK_S"
dropped=$(nft_counter "$LAB_MGMT" inet dtfk_acks output)
check_range "replies dropped while blocked (${dropped:-?} packets)" "${dropped:-x}" 1 100000000
kill_collector "after ${BLOCK_S}s of lost acknowledgements" \
	"the dead collector's connections to the agents destroyed (ss -K), replies let through again" acks_unblock
sleep "$AFTER_S"

fault_traffic_stop
check_fault_traffic "traffic for ${t_end}s"

# Each restart found the batches of the run before in its store, and more each time (the
# batches it took in all: those the analyzer acknowledged are deleted, not forgotten).
prev=0
for ((r = 2; r <= runs; r++)); do
	f=$LAB_DIR/collector.run$r.log
	((r == runs)) && f=$LAB_DIR/collector.log
	n=$(sed -nE 's/.*DT-COLL-READY:.*\(([0-9]+) batches stored in all.*/\1/p' "$f")
	check_range "collector run $r found the batches stored before the kill in its store (${n:-?} > $prev)" \
		"${n:-x}" $((prev + 1)) 100000000
	prev=${n:-0}
done

check_fault_judged

# Final counters and the reports.
fault_stop_reports

# ---------------------------------------------------------------------------------------
# Exact accounting.

fault_agents_accounting

stored=$(exit_counter "$LAB_DIR/collector.log" DT-COLL-EXIT stored_ever)
dup_c=$(exit_counter "$LAB_DIR/collector.log" DT-COLL-EXIT duplicates)
echo "# collector: ${stored:-?} batches stored over the three runs; its last run acknowledged ${dup_c:-?} resent batches again without storing them"
check_eq "collector: every batch the agents had acknowledged was stored, once (stored_ever)" \
	"${stored:-?}" "$sum_batches"
check_eq "collector: its store holds no batch at exit, each deleted once the analyzer acknowledged it (held)" \
	"$(exit_counter "$LAB_DIR/collector.log" DT-COLL-EXIT held)" 0
check_range "collector: batches stored before the second kill but never acknowledged came again, acknowledged without storing (duplicates)" \
	"${dup_c:-x}" 1 100000000

ana_batches=$(exit_counter "$LAB_DIR/analyzer.log" DT-ANA-EXIT batches)
ana_samples=$(exit_counter "$LAB_DIR/analyzer.log" DT-ANA-EXIT samples)
ana_attr=$(exit_counter "$LAB_DIR/analyzer.log" DT-ANA-EXIT attributed)
ana_unm=$(exit_counter "$LAB_DIR/analyzer.log" DT-ANA-EXIT unmatched)
ana_dup=$(exit_counter "$LAB_DIR/analyzer.log" DT-ANA-EXIT duplicates)
echo "# analyzer: ${ana_batches:-?} batches stored, ${ana_dup:-?} forwarded again by a restarted collector and acknowledged without storing"
check_eq "analyzer: stored each of the collector's batches once" "${ana_batches:-?}" "${stored:-x}"
check_range "analyzer: batches forwarded before the second kill but never acknowledged came again, acknowledged without storing (duplicates)" \
	"${ana_dup:-x}" 1 100000000
check_eq "analyzer received every sample once, attributed each, none unmatched" \
	"${ana_samples:-?} ${ana_attr:-?} ${ana_unm:-?}" "$sum_sent $sum_sent 0"

fault_reports_accounting

checks_teardown_clean
