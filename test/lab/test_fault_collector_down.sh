#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_fault_collector_down.sh - fault test (issue 7): the collector is down for 30 s
# during a trace. The agents keep what they cannot deliver (a few batches in memory, the
# rest in their LMDB spool) and replay it when the collector is back; the one sample
# count that may go missing is the one a spool evicted past its cap, and that is counted
# exactly, by reason, up to the task report.
#
#   - agents reconfigured: queue_max 4 (the spool takes over after 4 batches),
#     stats_interval_s 1 (their counters every second, to watch the spool); h2's spool
#     capped at 1 MiB (spool_max_mib, the minimum), h1's at the default 256 MiB;
#   - a ping task (icmp i1 <-> i2, both directions) and a UDP task (i1 -> i2, any port);
#   - pings before the outage, judged; then the collector is stopped (SIGTERM) and, while
#     it is down: a UDP burst of 12000 datagrams (more than h2's 1 MiB spool holds, so h2
#     evicts its oldest batches: burst samples only), then pings until the 30 s are over;
#     the analyzer hears nothing meanwhile;
#   - the collector comes back on the same store; pings after the outage; the spools
#     drain; every packet is judged.
#
# Exact accounting (every count from the daemons' own counters, no tolerance):
#   per agent   sampled = samples_sent + lost (queue-full, bad-record, rejected, spool-full),
#               nothing left queued or spooled;
#   collector   samples stored over both runs = the agents' samples_sent; the second run
#               found the first one's batches (stored in all), none held (the analyzer
#               acknowledged each before the outage, and each was deleted);
#   analyzer    samples received = attributed = the agents' samples_sent, none unmatched;
#   reports     hops of every packet of both tasks + samples counted lost = the agents'
#               sampled; the report's lost counts by reason = the agents'; packets colored
#               by the tasks = packets colored by the data planes; every ping delivered
#               with its 4 hops (the pings' batches are never evicted: they are newer).
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtfc" unless DT_LAB says otherwise. DT_FAULT_OUTAGE_S shortens the
# outage for a quick run (default 30, as the issue asks).
set -uo pipefail

: "${DT_LAB:=dtfc}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
OUTAGE_S=${DT_FAULT_OUTAGE_S:-30}
BUDGET=100000
UDP_DPORT=5000
UDP_FLOWS=8        # flows of the burst (source ports 40001..40008)
UDP_PER_FLOW=1500  # datagrams per flow, 1 ms between rounds: ~2 s, under the task's rate
PINGS_BEFORE=10
PINGS_AFTER=10
REQ_PATH='["h1/pt1/port-in","h1/ul0/uplink-out","h2/ul0/uplink-in","h2/pt1/port-out"]'
REP_PATH='["h2/pt1/port-in","h2/ul0/uplink-out","h1/ul0/uplink-in","h1/pt1/port-out"]'
LOSSES=(queue_full bad_record rejected spool_full) # lost after sampling (ring_full: before)

window_lab_up "lab up: analyzer (window_ms $WINDOW_MS), collector, agents h1 and h2"

# ---------------------------------------------------------------------------------------
# Helpers

# agent_reconfigure HOST LINES: restarts HOST's agent with LINES added to its configuration.
agent_reconfigure() {
	local h=$1 k
	check_stopped "agent-$h"
	printf '%s\n' "$2" >>"$LAB_DIR/$h.conf"
	lab_bg "agent-$h" "$LAB_P-$h" "$LAB_BIN/dyetrace-agent" -c "$LAB_DIR/$h.conf" || return 1
	for ((k = 0; k < 100; k++)); do
		grep -q DT-AGENT-READY "$LAB_DIR/agent-$h.log" && return 0
		lab__alive "$(lab_pid "agent-$h")" || break
		sleep 0.1
	done
	tail -n 5 "$LAB_DIR/agent-$h.log"
	return 1
}

# stats_max LOG KEY: the largest KEY=N over every DT-AGENT-STATS line of LOG.
stats_max() {
	sed -nE "s/.*DT-AGENT-STATS:.*[ :]$2=([0-9]+).*/\1/p" "$1" | sort -n | tail -n 1
}

# agents_drained: the last counters of both agents show nothing queued or spooled, and
# stats lines newer than the call (waits up to 20 s).
agents_drained() {
	local h start n0 ok_all
	declare -A seen
	for h in h1 h2; do seen[$h]=$(grep -c DT-AGENT-STATS "$LAB_DIR/agent-$h.log"); done
	start=$(lab__now)
	while lab__elapsed_lt "$start" 20; do
		ok_all=1
		for h in h1 h2; do
			n0=$(grep -c DT-AGENT-STATS "$LAB_DIR/agent-$h.log")
			if ((n0 <= seen[$h])) ||
				[[ $(exit_counter "$LAB_DIR/agent-$h.log" DT-AGENT-STATS queued) != 0 ||
				$(exit_counter "$LAB_DIR/agent-$h.log" DT-AGENT-STATS spooled) != 0 ]]; then
				ok_all=0
			fi
		done
		((ok_all)) && return 0
		sleep 0.2
	done
	return 1
}

# ---------------------------------------------------------------------------------------
# Setup: agents that spool early and log their counters every second; the tasks.

agent_reconfigure h1 $'queue_max = 4;\nstats_interval_s = 1;'
check_eq "h1's agent restarted with queue_max 4, stats every second (spool cap: default 256 MiB)" $? 0
agent_reconfigure h2 $'queue_max = 4;\nstats_interval_s = 1;\nspool_max_mib = 1;'
check_eq "h2's agent restarted with queue_max 4, stats every second, spool capped at 1 MiB" $? 0

fault_tasks "$UDP_DPORT" "$BUDGET"

# ---------------------------------------------------------------------------------------
# Before the outage.

lab_in "$LAB_I1" ping -c "$PINGS_BEFORE" -i 0.05 -W 1 "$LAB_I2_IP" >"$LAB_DIR/ping-before.out" 2>&1
read -r tx_a rx_a < <(ping_count "$LAB_DIR/ping-before.out")
check_eq "before the outage: $PINGS_BEFORE pings answered" "${tx_a:-?} ${rx_a:-?}" "$PINGS_BEFORE $PINGS_BEFORE"
check "before the outage: every ping judged (the collector forwards)" \
	lab_task_wait_judged "$ping_task" $((2 * PINGS_BEFORE))
colored_before=$(lab_task_field "$ping_task" .colored)

# ---------------------------------------------------------------------------------------
# The outage.

check_stopped collector
t_down=$(lab__now)
mv "$LAB_DIR/collector.log" "$LAB_DIR/collector.run1.log"
collector_down() { [[ -z $(lab_in "$LAB_MGMT" ss -Htln "sport = :7400" 2>/dev/null) ]]; }
check "collector stopped (SIGTERM); nothing listens on :7400" collector_down
check "collector's first run logged its exit counters" grep -q DT-COLL-EXIT "$LAB_DIR/collector.run1.log"

flows=()
for ((k = 1; k <= UDP_FLOWS; k++)); do flows+=("$((40000 + k)):$LAB_I2_IP:$UDP_DPORT:$UDP_PER_FLOW"); done
sent=$(lab_udp_send "$LAB_I1" 1 "${flows[@]}")
check_eq "during the outage: UDP burst sent ($UDP_FLOWS flows)" "$sent" $((UDP_FLOWS * UDP_PER_FLOW))

# Pings for the rest of the outage, ending a second before the collector returns.
ping_s=$(awk -v s="$t_down" -v n="$(lab__now)" -v o="$OUTAGE_S" 'BEGIN { d = int(o - (n - s) - 1); print (d < 1 ? 1 : d) }')
lab_in "$LAB_I1" ping -i 0.1 -w "$ping_s" -W 1 "$LAB_I2_IP" >"$LAB_DIR/ping-during.out" 2>&1
read -r tx_b rx_b < <(ping_count "$LAB_DIR/ping-during.out")
check "during the outage: ${tx_b:-?} pings in ${ping_s}s, all answered (the data path does not need the collector)" \
	test "${tx_b:-0}" -gt 0 -a "${tx_b:-0}" == "${rx_b:-x}"
check_eq "during the outage: the analyzer heard nothing (ping task still colored $colored_before)" \
	"$(lab_task_field "$ping_task" .colored)" "$colored_before"
for h in h1 h2; do
	check_range "during the outage: $h's agent spooled batches in LMDB (most spooled at once)" \
		"$(stats_max "$LAB_DIR/agent-$h.log" spooled)" 1 1000000
done
check_range "during the outage: h2's 1 MiB spool evicted its oldest (lost_spool_full)" \
	"$(stats_max "$LAB_DIR/agent-h2.log" lost_spool_full)" 1 1000000
check_eq "during the outage: h1's spool evicted nothing" "$(stats_max "$LAB_DIR/agent-h1.log" lost_spool_full)" 0

while lab__elapsed_lt "$t_down" "$OUTAGE_S"; do sleep 0.05; done
lab_bg collector "$LAB_MGMT" "$LAB_BIN/dyetrace-collector" -c "$LAB_DIR/collector.conf"
down_s=$(awk -v s="$t_down" -v n="$(lab__now)" 'BEGIN { printf "%.1f", n - s }')
check "collector back after ${down_s}s, same store" lab_wait_listen "$LAB_MGMT" 7400
stored_run1=$(exit_counter "$LAB_DIR/collector.run1.log" DT-COLL-EXIT stored_ever)
check "collector's second run found the first run's $stored_run1 batches in its store (stored in all; each acknowledged one deleted)" \
	grep -q "DT-COLL-READY:.*(${stored_run1:-x} batches stored in all, 0 held)" "$LAB_DIR/collector.log"

# ---------------------------------------------------------------------------------------
# After the outage: the spools replay, everything is judged.

lab_in "$LAB_I1" ping -c "$PINGS_AFTER" -i 0.05 -W 1 "$LAB_I2_IP" >"$LAB_DIR/ping-after.out" 2>&1
read -r tx_c rx_c < <(ping_count "$LAB_DIR/ping-after.out")
check_eq "after the outage: $PINGS_AFTER pings answered" "${tx_c:-?} ${rx_c:-?}" "$PINGS_AFTER $PINGS_AFTER"
pings=$((PINGS_BEFORE + ${tx_b:-0} + PINGS_AFTER))
check "ping task: all $((2 * pings)) packets judged after the replay (within 30 s)" \
	lab_task_wait_judged "$ping_task" $((2 * pings)) 30
udp_colored=$(lab_task_field "$udp_task" .colored)
check "UDP task: all $udp_colored colored packets judged" lab_task_wait_judged "$udp_task" "${udp_colored:-1}" 30
check "both agents drained: nothing queued, nothing spooled" agents_drained

# Final counters and the reports.
fault_stop_reports

# ---------------------------------------------------------------------------------------
# Exact accounting.

declare -A A # agent counters: A[h1.sampled] ...
sum_sampled=0 sum_sent=0 sum_colored=0
declare -A LOST=([queue_full]=0 [bad_record]=0 [rejected]=0 [spool_full]=0 [ring_full]=0)
for h in h1 h2; do
	log=$LAB_DIR/agent-$h.log
	for key in sampled samples_sent colored queued spooled lost_ring_full "${LOSSES[@]/#/lost_}"; do
		A[$h.$key]=$(exit_counter "$log" DT-AGENT-EXIT "$key")
	done
	lost=0
	for r in "${LOSSES[@]}"; do
		lost=$((lost + ${A[$h.lost_$r]:-0}))
		LOST[$r]=$((LOST[$r] + ${A[$h.lost_$r]:-0}))
	done
	LOST[ring_full]=$((LOST[ring_full] + ${A[$h.lost_ring_full]:-0}))
	check_eq "$h: sampled = samples_sent + lost after sampling, nothing queued or spooled" \
		"${A[$h.sampled]:-?} ${A[$h.queued]:-?} ${A[$h.spooled]:-?}" \
		"$((${A[$h.samples_sent]:-0} + lost)) 0 0"
	sum_sampled=$((sum_sampled + ${A[$h.sampled]:-0}))
	sum_sent=$((sum_sent + ${A[$h.samples_sent]:-0}))
	sum_colored=$((sum_colored + ${A[$h.colored]:-0}))
done
echo "# agents: sampled ${A[h1.sampled]} + ${A[h2.sampled]}, sent ${A[h1.samples_sent]} + ${A[h2.samples_sent]}, h2 lost_spool_full ${A[h2.lost_spool_full]}"
if ((CHECKS_FAILED > 0)); then # what a failed balance needs to be explained
	for h in h1 h2; do
		echo "# agent-$h exit: $(grep -h 'DT-AGENT-EXIT' "$LAB_DIR/agent-$h.log" | tail -n1)"
		grep -h 'DT-LINK\|DT-SPOOL\|DT-AGENT-QUEUE\|DT-AGENT-UNSENT' "$LAB_DIR/agent-$h.log" |
			tail -n 20 | sed 's/^/#   /'
	done
fi
check_range "h2 lost samples to its spool cap (lost_spool_full)" "${A[h2.lost_spool_full]:-x}" 1 1000000
check_eq "h1 lost nothing (its spool had room)" "$((${A[h1.lost_queue_full]:-1} + ${A[h1.lost_bad_record]:-1} + ${A[h1.lost_rejected]:-1} + ${A[h1.lost_spool_full]:-1}))" 0

c1=$(exit_counter "$LAB_DIR/collector.run1.log" DT-COLL-EXIT samples_stored)
c2=$(exit_counter "$LAB_DIR/collector.log" DT-COLL-EXIT samples_stored)
d1=$(exit_counter "$LAB_DIR/collector.run1.log" DT-COLL-EXIT duplicates)
d2=$(exit_counter "$LAB_DIR/collector.log" DT-COLL-EXIT duplicates)
echo "# collector: samples stored ${c1:-?} before the outage, ${c2:-?} after; duplicates acknowledged again ${d1:-?} + ${d2:-?}"
check_eq "collector stored every sample the agents sent, once (both runs)" "$((${c1:-0} + ${c2:-0}))" "$sum_sent"

ana_samples=$(exit_counter "$LAB_DIR/analyzer.log" DT-ANA-EXIT samples)
ana_attr=$(exit_counter "$LAB_DIR/analyzer.log" DT-ANA-EXIT attributed)
ana_unm=$(exit_counter "$LAB_DIR/analyzer.log" DT-ANA-EXIT unmatched)
check_eq "analyzer received every sample once, attributed each, none unmatched" \
	"${ana_samples:-?} ${ana_attr:-?} ${ana_unm:-?}" "$sum_sent $sum_sent 0"

hops_p=$(jq_val "$rp" '[.packets[].hops | length] | add // 0')
hops_u=$(jq_val "$ru" '[.packets[].hops | length] | add // 0')
rep_lost=$(jq_val "$rp" '.lost | ."queue-full" + ."bad-version" + .rejected + ."spool-full"')
echo "# reports: hops ${hops_p} (ping) + ${hops_u} (udp), lost ${rep_lost} = sampled ${sum_sampled}?"
check_eq "INVARIANT: hops in the reports + samples counted lost = samples the data planes wrote" \
	"$((hops_p + hops_u + rep_lost))" "$sum_sampled"
for rp_ in "$rp" "$ru"; do
	check_eq "report ${rp_##*/}: lost by reason = the agents' (ring-full queue-full bad-version rejected spool-full)" \
		"$(jq_val "$rp_" '.lost | "\(."ring-full") \(."queue-full") \(."bad-version") \(.rejected) \(."spool-full")"')" \
		"${LOST[ring_full]} ${LOST[queue_full]} ${LOST[bad_record]} ${LOST[rejected]} ${LOST[spool_full]}"
done
check_eq "packets colored by the tasks = packets colored by the data planes" \
	"$(($(jq_val "$rp" '.task.colored // "?"') + $(jq_val "$ru" '.task.colored // "?"')))" "$sum_colored"

check_verdict "$rp" "ping task" $((2 * pings)) $((2 * pings)) 0 0
jq_true "$rp" "ping task: $pings requests and $pings replies, each with its 4 hops (none evicted)" \
	'([req] | length == $n) and ([rep] | length == $n) and all(req; path == $q) and all(rep; path == $p)' \
	--argjson n "$pings" --argjson q "$REQ_PATH" --argjson p "$REP_PATH"
jq_true "$rp" "ping task: colored = $((2 * pings))" '.task.colored == $n' --argjson n $((2 * pings))
check_eq "UDP task: hops = 4 per colored packet - samples h2 evicted (only the burst's, the oldest)" \
	"$hops_u" "$((4 * ${udp_colored:-0} - ${A[h2.lost_spool_full]:-0}))"
echo "# UDP task: $(jq_val "$ru" '.verdict.sentence')"

checks_teardown_clean
