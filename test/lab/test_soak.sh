#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_soak.sh - bounded memory (issue 22): a lab of 3 hosts where tasks are created and
# end all the time, with traffic, for DT_SOAK_S seconds (default 120, so that the whole
# test stays within 3 minutes in CI; set it to hours for a real soak). Every DT_SOAK_EVERY_S
# seconds (default 4) it samples the analyzer's and the collector's resident memory
# (VmRSS) and the pages their LMDB stores use (mdb_stat -ef: pages used minus free pages;
# LMDB files never shrink, so the file size would hide a store that reuses its pages), and
# how many tasks the analyzer holds in memory. It prints the curves as a table and checks
# that each levels off.
#
# The analyzer runs with retention_s 10 and report_retention_s 20: an ended task leaves its
# memory 10 s after it ended and its stored report leaves the store 20 s after (checked
# every half report_retention_s, see ana_retain()), so both reach their steady state within
# the first third of the run. The collector deletes each batch once the analyzer
# acknowledged it (collector/store.c).
#
# Each cycle (one every CYCLE_S seconds, so that tasks are created at the same rate all
# along; a cycle's work takes 0.7-1.2 s on a shared 2-vCPU VM): two tasks are created on
# fresh UDP source ports (i1 -> i2, ending by budget or duration; i2 -> i31, cancelled
# after its traffic), and the previous cycle's tasks, armed by then, get 60 datagrams each.
#
# Levelling off: the maximum over the last third of the samples may exceed the maximum over
# the middle third by at most a tolerance (LEVEL_PCT percent) plus a small absolute slack
# per curve. Memory does not move smoothly: glibc grows its heaps in steps (an arena takes
# at least 128 KiB at a time), the RSS counts the pages of the mapped LMDB file a daemon
# touched (up to the store's high-water mark, reached in the first third), LMDB takes a
# page from its free list only once no reader can still see it, and the analyzer's store
# saws up and down with each purge; the slack covers a few such steps. Anything that grows
# with the tasks or the batches seen grows by half between the middle and the last third:
# with the collector's deletion of acknowledged batches disabled (measured twice), its
# store's maximum grew by 40-50% (~450-700 pages) between the two, and that check and the
# one of the batches held at exit failed; its RSS (the mapped file) grew by 1.8-2.8 MiB,
# about the slack, so the RSS check alone would not be enough to catch it.
#
# What the analyzer holds for tasks that ended recently (the tasks in its memory, the
# reports in its store) is proportional to the rate at which tasks end, not to their
# number. When the machine slows a cycle beyond CYCLE_S, the rate falls; should the last
# third run at a higher rate than the middle one, those two limits grow in proportion
# (the "rate" factor printed with the check). A leak grows with the number of tasks and is
# not hidden by it: at a steady rate the factor is 1.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtsk" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtsk}"
export DT_LAB
: "${DT_SOAK_S:=120}"
: "${DT_SOAK_EVERY_S:=4}"
# retention_s and report_retention_s of the analyzer (see the header).
export DT_LAB_ANALYZER_EXTRA="retention_s = 10; report_retention_s = 20;"
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

LEVEL_PCT=5
SLACK_RSS_KIB=1536 # a few heap steps
SLACK_PAGES=64     # 256 KiB of 4 KiB pages
SLACK_TASKS=4      # tasks that ended within one cycle more or less
CYCLE_S=1.5        # a cycle every CYCLE_S seconds
DGRAMS=60          # per task and cycle, 2 ms apart
BUDGET=40          # the i1 -> i2 tasks end by budget (DONE) ...
DURATION_S=3       # ... or by duration; the i2 -> i31 tasks are cancelled
I31=i31
I31_IP=$(lab_instance_ip "$I31")
I2_NS=$(lab_instance_ns i2)

checks_lab_up "lab up (3 hosts)" "lab up: 3 hosts, analyzer with retention_s 10, report_retention_s 20" \
	--hosts 3

# ---------------------------------------------------------------------------------------
# Samples

# vm_rss_kib NAME: the resident memory of the lab's daemon NAME, in KiB.
vm_rss_kib() {
	awk '$1 == "VmRSS:" { print $2 }' "/proc/$(lab_pid "$1")/status" 2>/dev/null
}

# lmdb_pages DIR: the pages in use in the LMDB environment in DIR (pages used minus the
# free list's pages).
lmdb_pages() {
	mdb_stat -ef "$1" 2>/dev/null |
		awk '/Number of pages used:/ { u = $NF } /Free pages:/ { f = $NF } END { print u - f }'
}

# tasks_in_memory: the tasks the analyzer holds (all states), from its metrics.
tasks_in_memory() {
	lab_metrics_scrape analyzer 2>/dev/null |
		awk '$1 ~ /^dyetrace_analyzer_tasks\{/ { n += $2 } END { print n + 0 }'
}

COLUMNS_=(s ana_rss_kib coll_rss_kib ana_pages coll_pages tasks cycles)
SAMPLES=()
# sample: one line "SECONDS ANA_RSS COLL_RSS ANA_PAGES COLL_PAGES TASKS CYCLES" into SAMPLES.
sample() {
	SAMPLES+=("$(awk -v s="$t0" -v n="$(lab__now)" 'BEGIN { printf "%.1f", n - s }') \
$(vm_rss_kib analyzer) $(vm_rss_kib collector) $(lmdb_pages "$LAB_DIR/analyzer-store") \
$(lmdb_pages "$LAB_DIR/collector-c1") $(tasks_in_memory) $cycles")
}

# ---------------------------------------------------------------------------------------
# The churn

# A cycle's tasks: i1 -> i2 from source port 41000 + k, i2 -> i31 from 42000 + k (k modulo
# 900: a port comes back only long after its task ended).
create_tasks() {
	local k=$(($1 % 900))
	A_TASK=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --proto udp --vni "$LAB_VNI" \
		--sport $((41000 + k)) --dport 5000 --budget "$BUDGET" --duration "$DURATION_S")
	B_TASK=$(lab_task_create --src "$LAB_I2_IP" --dst "$I31_IP" --proto udp --vni "$LAB_VNI" \
		--sport $((42000 + k)) --dport 5001 --duration 60)
	[[ -n $A_TASK ]] && created=$((created + 1))
	[[ -n $B_TASK ]] && created=$((created + 1))
}

# traffic K: DGRAMS datagrams on each of cycle K's flows, both at once.
traffic() {
	local k=$(($1 % 900)) pid
	lab_udp_send "$LAB_I1" 2 "$((41000 + k)):$LAB_I2_IP:5000:$DGRAMS" >/dev/null 2>&1 &
	pid=$!
	lab_udp_send "$I2_NS" 2 "$((42000 + k)):$I31_IP:5001:$DGRAMS" >/dev/null 2>&1
	wait "$pid"
}

created=0 cancelled=0 cycles=0 prev_b=
t0=$(lab__now)
last_sample=-1000
create_tasks 0
while lab__elapsed_lt "$t0" "$DT_SOAK_S"; do
	now=$(awk -v s="$t0" -v n="$(lab__now)" 'BEGIN { printf "%d", n - s }')
	if ((now - last_sample >= DT_SOAK_EVERY_S)); then
		sample
		last_sample=$now
	fi
	prev_b=$B_TASK
	cycles=$((cycles + 1))
	create_tasks "$cycles"
	traffic $((cycles - 1))
	[[ -n $prev_b ]] && lab_cli task cancel "$prev_b" >/dev/null 2>&1 && cancelled=$((cancelled + 1))
	while lab__elapsed_lt "$t0" "$(awk -v c="$cycles" -v p="$CYCLE_S" 'BEGIN { print c * p }')"; do
		sleep 0.05
	done
done
sample
echo "# $cycles cycles in ${DT_SOAK_S}s: $created tasks created, $cancelled cancelled"
check_range "tasks created all along ($created in $cycles cycles)" "$created" $((cycles * 2)) $((cycles * 2 + 2))
check_range "a task cancelled each cycle ($cancelled)" "$cancelled" $((cycles - 1)) "$cycles"

# ---------------------------------------------------------------------------------------
# The curves

printf '# %6s %12s %12s %10s %10s %6s %6s\n' "${COLUMNS_[@]}"
for l in "${SAMPLES[@]}"; do
	# shellcheck disable=SC2086 # one sample's fields
	printf '# %6s %12s %12s %10s %10s %6s %6s\n' $l
done

# level_off COLUMN SLACK BY_RATE WHAT: the maximum of COLUMN (1-based in SAMPLES) over the
# last third of the samples is at most LEVEL_PCT percent plus SLACK above its maximum over
# the middle third; with BY_RATE 1 that maximum is first scaled by how much faster cycles
# ran in the last third than in the middle one, if they did (see the header).
level_off() {
	local col=$1 slack=$2 by_rate=$3 what=$4 got okay mid last lim f
	got=$(printf '%s\n' "${SAMPLES[@]}" | awk -v c="$col" -v p="$LEVEL_PCT" -v s="$slack" -v r="$by_rate" '
		{ t_[NR] = $1; v[NR] = $c; cy[NR] = $7 }
		END {
			t = int(NR / 3)
			for (i = t + 1; i <= 2 * t; i++) if (v[i] > mid) mid = v[i]
			for (i = 2 * t + 1; i <= NR; i++) if (v[i] > last) last = v[i]
			f = 1
			if (r && t >= 1 && cy[2 * t] > cy[t] && t_[NR] > t_[2 * t]) {
				last_rate = (cy[NR] - cy[2 * t]) / (t_[NR] - t_[2 * t])
				g = last_rate / ((cy[2 * t] - cy[t]) / (t_[2 * t] - t_[t]))
				if (g > f) f = g
			}
			lim = int(mid * f * (100 + p) / 100 + s)
			printf "%d %d %d %d %.2f\n", (t >= 3 && last <= lim), mid, last, lim, f
		}')
	read -r okay mid last lim f <<<"$got"
	check_eq "$what levels off: max over the last third $last <= max over the middle third $mid (x$f rate) + ${LEVEL_PCT}% + $slack ($lim)" \
		"$okay" 1
}

level_off 2 "$SLACK_RSS_KIB" 0 "analyzer RSS (KiB)"
level_off 3 "$SLACK_RSS_KIB" 0 "collector RSS (KiB)"
level_off 4 "$SLACK_PAGES" 1 "analyzer store (LMDB pages in use)"
level_off 5 "$SLACK_PAGES" 0 "collector store (LMDB pages in use)"
level_off 6 "$SLACK_TASKS" 1 "tasks in the analyzer's memory"

# The collector held batches only until the analyzer acknowledged them: the agents stop
# first (nothing more comes), then the collector forwards the rest and exits.
for h in h1 h2 h3; do
	check_stopped "agent-$h"
done
check_stopped collector
check_eq "collector: its store holds no batch at exit (each deleted once acknowledged)" \
	"$(exit_counter "$LAB_DIR/collector.log" DT-COLL-EXIT held)" 0

checks_teardown_clean
