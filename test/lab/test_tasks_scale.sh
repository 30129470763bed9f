#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_tasks_scale.sh - 4096 tasks armed at once (issue 4, "Scale"): 8 tenants create 512
# tasks each, in parallel (UDP i1:10000+k -> i2:20000, k = 0..4095); all 4096 are armed
# (the agent of h1 holds them all in its data plane); traffic on 16 flows spread over the
# whole range is colored exactly (5 datagrams each, 80 colored packets on the wire and
# not one more: an untraced neighbour flow stays uncolored) and every one of those 16
# reports holds exactly its own 5 packets; after an analyzer restart (SIGTERM) all 4096
# are resumed and armed again, and those reports are the same.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtsc" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtsc}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

TENANTS=8
N=${DT_SCALE_TASKS:-4096}
PER=$((N / TENANTS))
SPORT0=10000
DPORT=20000
COLOR='ip[6] & 0x80 != 0'
SAMPLE=() # 16 task numbers spread over 0..N-1, the first and the last included
for ((j = 0; j < 16; j++)); do SAMPLE+=($((j * (N - 1) / 15))); done

checks_lab_up "lab up ($TENANTS tenants)" \
	"lab up: tenants t1..t$TENANTS" --tenants "$TENANTS" --window-ms 300

# ---------------------------------------------------------------------------------------
mkdir -p "$LAB_DIR/scale"
start=$(lab__now)
pids=()
for ((K = 1; K <= TENANTS; K++)); do
	(
		export DYETRACE_TOKEN
		DYETRACE_TOKEN=$(lab_tenant_token "t$K")
		for ((k = (K - 1) * PER; k < K * PER; k++)); do
			"$LAB_BIN/dyetrace" -a "ipc://$LAB_DIR/api.sock" task create --src "$LAB_I1_IP" \
				--dst "$LAB_I2_IP" --sport $((SPORT0 + k)) --dport "$DPORT" --proto udp \
				--vni "$LAB_VNI" >/dev/null 2>>"$LAB_DIR/scale/err-t$K" || echo "$k" >>"$LAB_DIR/scale/failed-t$K"
		done
	) &
	pids+=($!)
done
wait "${pids[@]}"
secs=$(awk -v s="$start" -v n="$(lab__now)" 'BEGIN { printf "%.1f", n - s }')
failed=$(cat "$LAB_DIR"/scale/failed-t* 2>/dev/null | wc -l)
check_eq "$N tasks created by $TENANTS tenants in parallel (${secs}s; failures, first error)" \
	"$failed $(cat "$LAB_DIR"/scale/err-t* 2>/dev/null | head -n 1)" "0 "

# Every tenant lists its own; all armed.
armed_count() {
	local K
	for ((K = 1; K <= TENANTS; K++)); do lab_cli_as "t$K" --json task list 2>/dev/null; done |
		jq -s '[.[].tasks[] | select(.state | IN("armed", "running"))] | length' 2>/dev/null
}
start=$(lab__now)
until [[ $(armed_count) == "$N" ]]; do
	lab__elapsed_lt "$start" 30 || break
	sleep 0.5
done
got=$(armed_count)
check_eq "all $N tasks armed at once ($(awk -v s="$start" -v n="$(lab__now)" 'BEGIN { printf "%.1f", n - s }')s after the last create)" "$got" "$N"
bad=()
for ((K = 1; K <= TENANTS; K++)); do
	n=$(lab_cli_as "t$K" --json task list 2>/dev/null | jq '[.tasks[] | select(.tenant == $t)] | length' --arg t "t$K")
	[[ $n == "$PER" ]] || bad+=("t$K: $n")
done
check_eq "every tenant lists its own $PER tasks" "${bad[*]}" ""
check "agent h1 applied a control set with all $N tasks" \
	grep -qE "DT-AGENT-ARMED: control set [0-9]+ applied: $N tasks armed" "$LAB_DIR/agent-h1.log"

# ---------------------------------------------------------------------------------------
# Traffic on 16 flows over the range, and an untraced neighbour.
check "capture: colored UDP at h2 vxlan0" lab_capture_start scale-wire "$LAB_H2" vxlan0 "$COLOR and udp"
flows=()
for k in "${SAMPLE[@]}"; do flows+=("$((SPORT0 + k)):$LAB_I2_IP:$DPORT:5"); done
flows+=("$((SPORT0 + N)):$LAB_I2_IP:$DPORT:5") # untraced: the next source port
check_eq "5 datagrams on each of 16 traced flows and 1 untraced" "$(lab_udp_send "$LAB_I1" 10 "${flows[@]}")" 85
declare -A ID_OF=()
for ((K = 1; K <= TENANTS; K++)); do
	while read -r sp id; do ID_OF[$sp]="t$K $id"; done < <(lab_cli_as "t$K" --json task list 2>/dev/null |
		jq -r '.tasks[] | "\(.flow.sport) \(.id)"')
done
bad=()
for k in "${SAMPLE[@]}"; do
	read -r t id <<<"${ID_OF[$((SPORT0 + k))]:-? ?}"
	if [[ $t == \? ]]; then
		bad+=("flow $k: no task")
		continue
	fi
	why=
	for _ in $(seq 30); do
		lab_cli_as "$t" --json report "$id" >"$LAB_DIR/scale/report-$k.json" 2>/dev/null
		why=$(jq -r --argjson sp $((SPORT0 + k)) '
			[ (if (.packets | length) != 5 then "\(.packets | length) packets" else empty end),
			  (if .task.colored != 5 then "colored \(.task.colored)" else empty end),
			  (if .verdict.in_flight != 0 then "\(.verdict.in_flight) in flight" else empty end),
			  ([.packets[] | select(.flow.sport != $sp or .fate != "delivered")] | if length > 0 then "\(length) foreign or lost" else empty end)
			] | join("; ")' "$LAB_DIR/scale/report-$k.json" 2>&1)
		[[ -z $why && -s $LAB_DIR/scale/report-$k.json ]] && break
		sleep 0.2
	done
	[[ -z $why && -s $LAB_DIR/scale/report-$k.json ]] || bad+=("flow $k (task $id of $t): ${why:-no report}")
done
check_eq "the 16 traced flows' reports hold exactly their own 5 packets, delivered" "${bad[*]}" ""
lab_capture_stop scale-wire
check_eq "80 colored packets on the wire: the 16 traced flows, not the untraced one" \
	"$(lab_capture_count scale-wire) $(lab_capture_read scale-wire "udp src port $((SPORT0 + N))" | wc -l)" "80 0"

# ---------------------------------------------------------------------------------------
# An analyzer restart with all of them active: every task resumed and armed again, the
# reports as they were.
for k in "${SAMPLE[@]}"; do jq -S . "$LAB_DIR/scale/report-$k.json" >"$LAB_DIR/scale/before-$k.json" 2>&1; done
start=$(lab__now)
if lab_analyzer_restart TERM; then
	ok "analyzer restarted (SIGTERM) with $N active tasks ($(awk -v s="$start" -v n="$(lab__now)" 'BEGIN { printf "%.1f", n - s }')s until its API answers)"
else
	not_ok "analyzer restarted (SIGTERM) with $N active tasks" "status ${LAB_ANALYZER_RC:-?}"
fi
start=$(lab__now)
until [[ $(armed_count) == "$N" ]]; do
	lab__elapsed_lt "$start" 30 || break
	sleep 0.5
done
got=$(armed_count)
check_eq "all $N tasks armed again after the restart ($(awk -v s="$start" -v n="$(lab__now)" 'BEGIN { printf "%.1f", n - s }')s)" "$got" "$N"
bad=()
for k in "${SAMPLE[@]}"; do
	read -r t id <<<"${ID_OF[$((SPORT0 + k))]:-? ?}"
	[[ $t == \? ]] && continue
	lab_cli_as "$t" --json report "$id" 2>&1 | jq -S 'del(.task.status, .task.status_text)' >"$LAB_DIR/scale/after-$k.json" 2>&1
	jq -S 'del(.task.status, .task.status_text)' "$LAB_DIR/scale/before-$k.json" | cmp -s - "$LAB_DIR/scale/after-$k.json" ||
		bad+=("$k")
done
check_eq "the 16 reports are the same after the restart (but for the task's status)" "${bad[*]}" ""

checks_teardown_clean
