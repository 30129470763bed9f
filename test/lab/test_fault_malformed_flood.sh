#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_fault_malformed_flood.sh - fault test (issue 7): a flood of malformed messages
# alongside real traffic. While pings and a UDP stream are traced, parallel dt-poke workers
# send every kind of malformed message, over and over, to the collector's agent endpoint,
# the analyzer's collector endpoint and the analyzer's API. Every one is refused with an
# "invalid" error, counted exactly and logged (rate limited); the real batches in between
# are stored exactly once, none refused, and the trace is complete.
#
# Exact accounting (every count from the daemons' own counters, no tolerance):
#   refusals    collector malformed = messages sent to it; analyzer malformed = messages
#               sent to its ingest; analyzer api_malformed = requests sent to its API;
#   agents      sampled = samples_sent, nothing lost (none rejected), no bad reply;
#   collector   samples stored = the agents' samples_sent, batches its store took
#               (stored_ever) = the agents' acknowledged batches (no malformed message
#               stored); none held at exit (each deleted once the analyzer acknowledged it);
#   analyzer    batches = the collector's; samples = attributed = the agents' samples_sent;
#   reports     hops of every packet of both tasks = the agents' sampled, nothing counted
#               lost; every ping and datagram delivered with its 4 hops.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtfm" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtfm}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
BUDGET=100000
UDP_DPORT=5000
UDP_FLOWS=2       # source ports 40001..40002
UDP_ROUND=300     # datagrams per flow and round, 1 ms apart
WORKERS=3         # dt-poke workers per endpoint, in parallel
ROUNDS=20         # rounds of every kind per worker
INGEST_KINDS=(garbage truncated wrong-type newer-version bad-hook bad-cap trailing)
API_KINDS=(garbage truncated newer-version trailing)
REQ_PATH='["h1/pt1/port-in","h1/ul0/uplink-out","h2/ul0/uplink-in","h2/pt1/port-out"]'
REP_PATH='["h2/pt1/port-in","h2/ul0/uplink-out","h1/ul0/uplink-in","h1/pt1/port-out"]'

window_lab_up "lab up: analyzer (window_ms $WINDOW_MS), collector, agents h1 and h2"

# ---------------------------------------------------------------------------------------
# Helpers

# poke_worker NAME NS URL KIND...: ROUNDS rounds of one dt-poke per KIND against URL from
# NS, in the background; the replies go to $LAB_DIR/poke-NAME.out, one a line.
poke_pids=()
poke_worker() {
	local name=$1 ns=$2 url=$3
	shift 3
	# shellcheck disable=SC2016 # a script for bash -c
	lab_in "$ns" bash -c 'poke=$1 url=$2 rounds=$3; shift 3
		for ((r = 0; r < rounds; r++)); do
			for k in "$@"; do "$poke" send "$url" "$k" 2>&1; done
		done' poke "$LAB_BIN/dt-poke" "$url" "$ROUNDS" "$@" >"$LAB_DIR/poke-$name.out" 2>&1 &
	poke_pids+=($!)
}

# poke_replies NAME-PREFIX: "ALL INVALID" - replies of the workers NAME-PREFIX-*, and how
# many of them were "error invalid: ...".
poke_replies() {
	cat "$LAB_DIR"/poke-"$1"-*.out | awk '{ n++ } /^error invalid: / { v++ } END { print n + 0, v + 0 }'
}

# ---------------------------------------------------------------------------------------
# Setup

check "dt-poke is built" test -x "$LAB_BIN/dt-poke"
fault_tasks "$UDP_DPORT" "$BUDGET"

# ---------------------------------------------------------------------------------------
# Real traffic, from before the flood until after it.

fault_traffic_start
sleep 0.5

# The flood: WORKERS workers per endpoint, all at once.
n_ingest=$((WORKERS * ROUNDS * ${#INGEST_KINDS[@]}))
n_api=$((WORKERS * ROUNDS * ${#API_KINDS[@]}))
t_flood=$(lab__now)
for ((w = 1; w <= WORKERS; w++)); do
	poke_worker "coll-$w" "$LAB_H1" "$LAB_COLLECTOR_URL" "${INGEST_KINDS[@]}"
	poke_worker "ana-$w" "$LAB_MGMT" "$LAB_ANALYZER_URL" "${INGEST_KINDS[@]}"
	poke_worker "api-$w" "$LAB_MGMT" "ipc://$LAB_DIR/api.sock" "${API_KINDS[@]}"
done
sleep 0.5
check_eq "during the flood: the API still answers a valid request (ping task state)" \
	"$(lab_task_field "$ping_task" .state 2>&1)" running
for pid in "${poke_pids[@]}"; do wait "$pid"; done
flood_s=$(awk -v s="$t_flood" -v n="$(lab__now)" 'BEGIN { printf "%.1f", n - s }')
sleep 0.5
fault_traffic_stop
echo "# flood: $((2 * n_ingest + n_api)) malformed messages in ${flood_s}s, inside ${t_end}s of traffic"

check_eq "collector: all $n_ingest malformed batches answered 'invalid'" "$(poke_replies coll)" "$n_ingest $n_ingest"
check_eq "analyzer ingest: all $n_ingest malformed batches answered 'invalid'" "$(poke_replies ana)" "$n_ingest $n_ingest"
check_eq "analyzer API: all $n_api malformed requests answered 'invalid'" "$(poke_replies api)" "$n_api $n_api"
check_fault_traffic "real traffic"

check_fault_judged

# Final counters and the reports.
fault_stop_reports

# ---------------------------------------------------------------------------------------
# Exact accounting.

cl=$LAB_DIR/collector.log
al=$LAB_DIR/analyzer.log
check_eq "collector counted exactly the malformed batches sent to it" \
	"$(exit_counter "$cl" DT-COLL-EXIT malformed)" "$n_ingest"
check_eq "analyzer counted exactly the malformed batches sent to its ingest" \
	"$(exit_counter "$al" DT-ANA-EXIT malformed)" "$n_ingest"
check_eq "analyzer counted exactly the malformed API requests" \
	"$(exit_counter "$al" DT-ANA-EXIT api_malformed)" "$n_api"
# Logged, but rate limited: a line a second at most (and one more for the start).
limit=$(awk -v s="$flood_s" 'BEGIN { print int(s) + 2 }')
for f in collector analyzer; do
	n=$(grep -c 'DT-INGEST-MALFORMED' "$LAB_DIR/$f.log")
	check_range "$f logged the refusals (DT-INGEST-MALFORMED), rate limited ($n lines for ${flood_s}s)" \
		"$n" 1 "$limit"
done

fault_agents_accounting

stored=$(exit_counter "$cl" DT-COLL-EXIT stored_ever)
check_eq "collector stored every sample the agents sent, once, and nothing else (samples, batches)" \
	"$(exit_counter "$cl" DT-COLL-EXIT samples_stored) ${stored:-?}" "$sum_sent $sum_batches"
check_eq "collector: its store holds no batch at exit, each deleted once the analyzer acknowledged it (held)" \
	"$(exit_counter "$cl" DT-COLL-EXIT held)" 0
check_eq "analyzer stored each of the collector's batches once" \
	"$(exit_counter "$al" DT-ANA-EXIT batches)" "${stored:-x}"
check_eq "analyzer received every sample once, attributed each, none unmatched" \
	"$(exit_counter "$al" DT-ANA-EXIT samples) $(exit_counter "$al" DT-ANA-EXIT attributed) $(exit_counter "$al" DT-ANA-EXIT unmatched)" \
	"$sum_sent $sum_sent 0"

fault_reports_accounting

checks_teardown_clean
