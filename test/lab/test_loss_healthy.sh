#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_loss_healthy.sh - loss diagnosis, scenario 1: a healthy flow. Pings and a TCP
# exchange from i1 to i2, traced in both directions, and a UDP exchange traced in the reply
# direction only, lose nothing: the verdict says every
# judged packet was delivered, requests take h1 port-in -> h1 uplink-out -> h2 uplink-in
# -> h2 port-out and replies the mirror path, the per-hop table has no loss, no sample is
# left unmatched, and neither instance ever sees the color.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtlh" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtlh}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
PINGS=20
TCP_SPORT=40011
TCP_DPORT=5011
UDP_SPORT=40012
UDP_DPORT=5012
ECHOS=5
COLOR_FILTER='ip[6] & 0x80 != 0'
REQ_PATH='["h1/pt1/port-in","h1/ul0/uplink-out","h2/ul0/uplink-in","h2/pt1/port-out"]'
REP_PATH='["h2/pt1/port-in","h2/ul0/uplink-out","h1/ul0/uplink-in","h1/pt1/port-out"]'

window_lab_up "lab up: overlay, analyzer (window_ms $WINDOW_MS), collector, agents h1 and h2"

ping_task=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --proto icmp --vni "$LAB_VNI" \
	--direction both)
check "create the ping task, both directions" test -n "$ping_task"
tcp_task=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport "$TCP_SPORT" \
	--dport "$TCP_DPORT" --proto tcp --vni "$LAB_VNI" --direction both)
check "create the TCP task, both directions" test -n "$tcp_task"
udp_task=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport "$UDP_SPORT" \
	--dport "$UDP_DPORT" --proto udp --vni "$LAB_VNI" --direction reply)
check "create the UDP task, replies only" test -n "$udp_task"
[[ -n $ping_task && -n $tcp_task && -n $udp_task ]] || exit 1
check "ping task armed" lab_task_wait_armed "$ping_task"
check "TCP task armed" lab_task_wait_armed "$tcp_task"
check "UDP task armed" lab_task_wait_armed "$udp_task"

check "capture: color at i1 eth0" lab_capture_start color-i1 "$LAB_I1" eth0 "$COLOR_FILTER"
check "capture: color at i2 eth0" lab_capture_start color-i2 "$LAB_I2" eth0 "$COLOR_FILTER"
check "capture: color at h2 vxlan0 (positive control)" lab_capture_start color-h2 "$LAB_H2" vxlan0 "$COLOR_FILTER"

check "$PINGS pings i1 -> i2, all answered" lab_in "$LAB_I1" ping -c "$PINGS" -i 0.05 -W 1 -q "$LAB_I2_IP"
lab_bg tcp-server "$LAB_I2" socat -T 5 "TCP-LISTEN:$TCP_DPORT,reuseaddr" PIPE
check "TCP echo server listens in i2" lab_wait_listen "$LAB_I2" "$TCP_DPORT"
got=$(printf 'healthy\n' | lab_in "$LAB_I1" timeout 10 socat -t 1 - \
	"TCP:$LAB_I2_IP:$TCP_DPORT,sourceport=$TCP_SPORT,reuseaddr" 2>&1)
check_eq "TCP exchange i1:$TCP_SPORT -> i2:$TCP_DPORT echoed" "$got" healthy

lab_bg udp-server "$LAB_I2" socat -T 2 "UDP-RECVFROM:$UDP_DPORT,reuseaddr,fork" PIPE
sleep 0.3 # UDP: nothing to wait for with ss -t; socat binds at once
echoed=0
for ((k = 1; k <= ECHOS; k++)); do
	got=$(printf '%04d healthy udp\n' "$k" | lab_in "$LAB_I1" timeout 5 socat -t 1 - \
		"UDP:$LAB_I2_IP:$UDP_DPORT,sourceport=$UDP_SPORT,reuseaddr" 2>/dev/null)
	[[ $got == "$(printf '%04d' "$k") healthy udp" ]] && echoed=$((echoed + 1))
done
check_eq "$ECHOS UDP datagrams i1:$UDP_SPORT -> i2:$UDP_DPORT echoed" "$echoed" "$ECHOS"

check "ping task: every packet judged (window passed)" lab_task_wait_judged "$ping_task" $((2 * PINGS))
check "UDP task: every packet judged (window passed)" lab_task_wait_judged "$udp_task" "$ECHOS"
check "TCP task: every packet judged (window passed)" lab_task_wait_judged "$tcp_task" 6
lab_capture_stop color-i1
lab_capture_stop color-i2
lab_capture_stop color-h2

check_no_color color-i1 "i1 eth0 never sees a colored packet (replies uncolored at h1 port-out)"
check_no_color color-i2 "i2 eth0 never sees a colored packet"
n=$(lab_capture_count color-h2)
if ((n > 0)); then ok "positive control: h2 vxlan0 sees $n colored packets"; else not_ok "positive control: h2 vxlan0 sees colored packets" none; fi

# --- the ping task
r=$(report_fetch_text "$ping_task" ping)
jq_true "$r" "ping: report is JSON with task $ping_task" '.task.id == $id' --argjson id "$ping_task"
check_verdict "$r" ping $((2 * PINGS)) $((2 * PINGS)) 0 0
jq_true "$r" "ping: the task traces both directions" '.task.flow.direction == "both"'
jq_true "$r" "ping: verdict reason empty and at null (no loss)" \
	'.verdict.reason == "" and .verdict.at == null'
jq_true "$r" "ping: verdict sentence says no loss" '.verdict.sentence | test("no loss"; "i")'
jq_true "$r" "ping: $PINGS request and $PINGS reply packets" \
	'[req] | length == $n' --argjson n "$PINGS"
jq_true "$r" "ping: $PINGS reply packets" '[rep] | length == $n' --argjson n "$PINGS"
jq_true "$r" "ping: every packet delivered, no drop" \
	'all(.packets[]; .fate == "delivered" and .drop == null)'
jq_true "$r" "ping: every request takes h1 port-in -> h1 uplink-out -> h2 uplink-in -> h2 port-out" \
	'all(req; path == $p)' --argjson p "$REQ_PATH"
jq_true "$r" "ping: every reply takes h2 port-in -> h2 uplink-out -> h1 uplink-in -> h1 port-out" \
	'all(rep; path == $p)' --argjson p "$REP_PATH"
jq_true "$r" "ping: per-hop table has the 8 hops, each seen $PINGS times, nothing dropped or vanished" \
	'(.hops | length == 8) and all(.hops[]; .seen == $n and .dropped == 0 and .vanished == 0)' \
	--argjson n "$PINGS"
jq_true "$r" "ping: per-hop table names both directions" \
	'([.hops[].direction] | unique) == ["reply","request"]'
jq_true "$r" "ping: no sample left unmatched" '.unmatched == 0'
jq_true "$r" "ping: window_ms is $WINDOW_MS" '.window_ms == $w' --argjson w "$WINDOW_MS"
# Both are printed with 3 decimals: stddev^2 from the printed stddev is off by at most
# 0.001 * stddev, the printed variance by 0.0005.
jq_true "$r" "ping: hop latency statistics have variance = stddev^2" \
	'(.hop_latency | length > 0) and all(.hop_latency[]; .variance_ns2 >= 0
		and ((.variance_ns2 - .stddev_ns * .stddev_ns) | fabs) <= 0.0011 * .stddev_ns + 0.0011)'

# --- the TCP task
r=$(report_fetch_text "$tcp_task" tcp)
jq_true "$r" "tcp: nothing dropped, vanished or in flight; delivered == judged" \
	'.verdict | .dropped == 0 and .vanished == 0 and .in_flight == 0 and .delivered == .judged and .judged >= 6'
jq_true "$r" "tcp: requests (i1:$TCP_SPORT -> i2:$TCP_DPORT) and replies both traced, at least 3 each" \
	'([req] | length >= 3) and ([rep] | length >= 3)'
jq_true "$r" "tcp: every request takes the request path, every reply the mirror path" \
	'all(req; path == $q) and all(rep; path == $p)' --argjson q "$REQ_PATH" --argjson p "$REP_PATH"
jq_true "$r" "tcp: every packet delivered" 'all(.packets[]; .fate == "delivered")'
jq_true "$r" "tcp: packet count == verdict judged" '(.packets | length) == .verdict.judged'

# --- the UDP task, replies only
r=$(report_fetch_text "$udp_task" udp)
check_verdict "$r" "udp replies only" "$ECHOS" "$ECHOS" 0 0
jq_true "$r" "udp: the task traces replies only" '.task.flow.direction == "reply"'
jq_true "$r" "udp: $ECHOS reply packets i2:$UDP_DPORT -> i1:$UDP_SPORT, no request" \
	'([rep] | length == $n) and ([req] | length == 0)
	and all(rep; .flow | .src == $d and .sport == $dp and .dst == $s and .dport == $sp)' \
	--argjson n "$ECHOS" --arg s "$LAB_I1_IP" --argjson sp "$UDP_SPORT" --arg d "$LAB_I2_IP" \
	--argjson dp "$UDP_DPORT"
jq_true "$r" "udp: every reply takes h2 port-in -> h2 uplink-out -> h1 uplink-in -> h1 port-out" \
	'all(rep; path == $p)' --argjson p "$REP_PATH"

checks_teardown_clean
