#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_fault_analyzer_load.sh - fault test (issue 22): the analyzer is killed with SIGKILL
# while the collector streams batches to it at full speed. The traffic of the fault tests
# (pings every 10 ms both ways, and a UDP stream of ~1800 datagrams/s, both traced) runs
# throughout:
#   1. SIGKILL 1 s into the traffic, wherever the analyzer happens to be; it stays dead
#      for DOWN_S, long enough that the collector's backlog grows (batches it stored and
#      cannot forward);
#   2. restarted, and killed again once it has acknowledged part of that backlog but while
#      the collector still has batches waiting (its backlog metric above zero: the
#      collector is forwarding back to back when the analyzer dies);
#   3. restarted again; the traffic goes on for AFTER_S.
# After the restarts every packet must be complete and counted once:
#   agents    sampled = samples_sent, nothing lost, queued or spooled;
#   analyzer  the last run found the batches of the earlier runs in its store, and more
#             each time;
#   reports   hops of every packet of both tasks = the agents' sampled, nothing counted
#             lost; packets colored by the tasks = packets colored by the data planes;
#             every ping and every datagram delivered with its 4 hops, and no packet
#             listed twice.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtal" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtal}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
BUDGET=100000
UDP_DPORT=5000
UDP_FLOWS=2   # source ports 40001..40002
UDP_ROUND=500 # datagrams per flow and round, 1 ms apart: ~1800 datagrams/s
KILL1_AT=1.0  # seconds into the traffic: the first SIGKILL
DOWN_S=6      # how long the analyzer stays dead after the first kill
AFTER_S=1     # traffic after the second restart
REQ_PATH='["h1/pt1/port-in","h1/ul0/uplink-out","h2/ul0/uplink-in","h2/pt1/port-out"]'
REP_PATH='["h2/pt1/port-in","h2/ul0/uplink-out","h1/ul0/uplink-in","h1/pt1/port-out"]'

window_lab_up "lab up: analyzer (window_ms $WINDOW_MS), collector, agents h1 and h2"

# backlog: the collector's stored batches the analyzer has not acknowledged yet.
backlog() {
	lab_metric collector dyetrace_collector_backlog_batches
}

# acked_some_of BACKLOG: the restarted analyzer acknowledged some of BACKLOG batches, and
# some still wait (prints the backlog then); waits up to 10 s, polling every 20 ms.
acked_some_of() {
	local start b
	start=$(lab__now)
	while lab__elapsed_lt "$start" 10; do
		b=$(backlog)
		if [[ $b =~ ^[0-9]+$ ]] && ((b < $1 && b > 0)); then
			echo "$b"
			return 0
		fi
		sleep 0.02
	done
	return 1
}

# kill_analyzer RUN: SIGKILL of analyzer run RUN, its log kept as analyzer.runRUN.log.
kill_analyzer() {
	if lab_analyzer_stop KILL; then
		ok "analyzer run $1 killed with SIGKILL (status $LAB_ANALYZER_RC)"
	else
		not_ok "analyzer run $1 killed with SIGKILL"
	fi
	mv "$LAB_DIR/analyzer.log" "$LAB_DIR/analyzer.run$1.log"
}

# restart_analyzer RUN: analyzer run RUN started on the same store.
restart_analyzer() {
	check "analyzer run $1 started on the same store (API answers)" lab_analyzer_start
}

fault_tasks "$UDP_DPORT" "$BUDGET"
fault_traffic_start

# 1. Killed wherever it happens to be; the collector's backlog grows while it is dead.
while lab__elapsed_lt "$t0" "$KILL1_AT"; do sleep 0.01; done
kill_analyzer 1
sleep "$DOWN_S"
b1=$(backlog)
check_range "the collector's backlog grew while the analyzer was dead (${b1:-?} batches)" "${b1:-x}" 2 100000000
restart_analyzer 2

# 2. Killed while the collector forwards that backlog back to back.
b2=$(acked_some_of "${b1:-0}")
check_range "analyzer run 2 acknowledged part of the backlog, the rest still streaming (${b2:-?} of ${b1:-?} left)" \
	"${b2:-x}" 1 $((${b1:-1} - 1))
kill_analyzer 2
restart_analyzer 3
sleep "$AFTER_S"

fault_traffic_stop
check_fault_traffic "traffic for ${t_end}s"
check_fault_judged
check_eq "the collector's backlog drained" "$(backlog)" 0

# Each restart found what the run before had stored.
for r in 2 3; do
	f=$LAB_DIR/analyzer.log
	((r == 2)) && f=$LAB_DIR/analyzer.run2.log
	check "analyzer run $r restored the store of the run before (DT-ANA-RESTORE)" grep -q DT-ANA-RESTORE "$f"
done

fault_stop_reports
fault_agents_accounting
fault_reports_accounting

checks_teardown_clean
