#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_loss_regions.sh - loss diagnosis, scenario 6: two regions, each with its own
# collector, feeding one analyzer. The lab runs with --regions 2: h1's agent reports to
# collector c1 (:7400), h2's to collector c2 (:7402, its own store); both forward to the
# analyzer. A flow from i1 to i2 crosses the regions: its samples come half through c1,
# half through c2, and must be stitched into one path per packet, in both directions; a
# drop in region 2 of a flow that started in region 1 is stitched and judged too.
#
# Late region: collector c2 is stopped while i1 pings i2 again, so region 2's samples wait
# in h2's agent spool; no request can be delivered meanwhile. Once c2 is back, the late
# samples arrive (seconds after the window) and the same packets are stitched and
# delivered, nothing left unmatched.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtlg" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtlg}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
PINGS=10
DGRAMS=10
UDP_SPORT=40300
UDP_DPORT=5300
LATE_SPORT=40301
LATE_DPORT=5301
REQ_PATH='["h1/pt1/port-in","h1/ul0/uplink-out","h2/ul0/uplink-in","h2/pt1/port-out"]'
REP_PATH='["h2/pt1/port-in","h2/ul0/uplink-out","h1/ul0/uplink-in","h1/pt1/port-out"]'

checks_lab_up "lab up (two regions: collectors c1 and c2, window_ms $WINDOW_MS)" \
	"lab up: analyzer (window_ms $WINDOW_MS), collector c1 (h1) and c2 (h2), agents h1 and h2" --regions 2 --window-ms "$WINDOW_MS"
check_eq "h1's agent reports to c1, h2's to c2" \
	"$(sed -nE 's/^collector = "(.*)";/\1/p' "$LAB_DIR/h1.conf") $(sed -nE 's/^collector = "(.*)";/\1/p' "$LAB_DIR/h2.conf")" \
	"$LAB_COLLECTOR_URL $LAB_COLLECTOR2_URL"

# ---------------------------------------------------------------------------------------
# A healthy cross-region flow, both directions.
checks_task ping_task "create the ping task (icmp i1 -> i2, both directions)" "ping task armed (through both collectors)" \
	--src "$LAB_I1_IP" --dst "$LAB_I2_IP" --proto icmp --vni "$LAB_VNI" --direction both
check "$PINGS pings i1 -> i2, all answered" lab_in "$LAB_I1" ping -c "$PINGS" -i 0.05 -W 1 -q "$LAB_I2_IP"
check "ping task: every packet judged (window passed)" lab_task_wait_judged "$ping_task" $((2 * PINGS))

r=$(report_fetch_text "$ping_task" regions-ping)
check_verdict "$r" "cross-region ping" $((2 * PINGS)) $((2 * PINGS)) 0 0
jq_true "$r" "one path per packet: $PINGS requests, $PINGS replies" \
	'(.packets | length == 2 * $n) and ([req] | length == $n) and ([rep] | length == $n)' --argjson n "$PINGS"
jq_true "$r" "every request stitched h1 port-in -> h1 uplink-out (c1) -> h2 uplink-in -> h2 port-out (c2)" \
	'all(req; path == $p)' --argjson p "$REQ_PATH"
jq_true "$r" "every reply stitched h2 port-in -> h2 uplink-out (c2) -> h1 uplink-in -> h1 port-out (c1)" \
	'all(rep; path == $p)' --argjson p "$REP_PATH"
jq_true "$r" "hop latency across the regions: h1 uplink-out -> h2 uplink-in over all $PINGS requests" \
	'[.hop_latency[] | select(.from.node == "h1" and .from.hook == "uplink-out"
		and .to.node == "h2" and .to.hook == "uplink-in")] | length == 1 and .[0].count == $n' \
	--argjson n "$PINGS"
jq_true "$r" "no sample left unmatched" '.unmatched == 0'

# ---------------------------------------------------------------------------------------
# A drop in region 2 of a flow from region 1.
checks_task udp_task "create the UDP task (udp i1:$UDP_SPORT -> i2:$UDP_DPORT)" "UDP task armed" \
	--src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport "$UDP_SPORT" --dport "$UDP_DPORT" --proto udp --vni "$LAB_VNI"
check "h2 (region 2): nftables bridge rule drops udp i1 -> i2:$UDP_DPORT" \
	nft_bridge_drop "$LAB_H2" dtlab_fw forward "ip saddr $LAB_I1_IP ip daddr $LAB_I2_IP udp dport $UDP_DPORT"
for ((k = 1; k <= DGRAMS; k++)); do
	printf '%04d dyetrace regions\n' "$k" |
		lab_in "$LAB_I1" socat -u - "UDP:$LAB_I2_IP:$UDP_DPORT,sourceport=$UDP_SPORT,reuseaddr"
	sleep 0.05
done
check_eq "h2's rule counted $DGRAMS drops" "$(nft_counter "$LAB_H2" bridge dtlab_fw forward)" "$DGRAMS"
check "UDP task: every packet judged (window passed)" lab_task_wait_judged "$udp_task" "$DGRAMS"
r=$(report_fetch_text "$udp_task" regions-drop)
check_verdict "$r" "cross-region drop" "$DGRAMS" 0 "$DGRAMS" 0
jq_true "$r" "verdict: dropped at h2, reason NETFILTER_DROP" \
	'.verdict.at.node == "h2" and .verdict.reason == "NETFILTER_DROP"'
jq_true "$r" "every path stitched h1 port-in -> h1 uplink-out (c1) -> h2 uplink-in -> drop on h2 (c2)" \
	'all(.packets[]; .fate == "dropped"
		and path[:-1] == ["h1/pt1/port-in","h1/ul0/uplink-out","h2/ul0/uplink-in"]
		and lasthop.node == "h2" and lasthop.hook == "drop")'

# ---------------------------------------------------------------------------------------
# Region 2 late: its collector is down while the traffic flows.
late_task=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport "$LATE_SPORT" \
	--dport "$LATE_DPORT" --proto tcp --vni "$LAB_VNI" --direction both)
check "create the TCP task for the outage (tcp i1:$LATE_SPORT -> i2:$LATE_DPORT, both directions)" \
	test -n "$late_task"
[[ -n $late_task ]] || exit 1
check "TCP task armed" lab_task_wait_armed "$late_task"
lab_bg tcp-server "$LAB_I2" socat -T 5 "TCP-LISTEN:$LATE_DPORT,reuseaddr" PIPE
check "TCP echo server listens in i2" lab_wait_listen "$LAB_I2" "$LATE_DPORT"
lab_bg_stop collector-c2
mv "$LAB_DIR/collector-c2.log" "$LAB_DIR/collector-c2.run1.log"
check "collector c2 is down" bash -c "! ip netns exec $LAB_MGMT ss -Htln 'sport = :7402' | grep -q ."
got=$(printf 'late region\n' | lab_in "$LAB_I1" timeout 10 socat -t 1 - \
	"TCP:$LAB_I2_IP:$LATE_DPORT,sourceport=$LATE_SPORT,reuseaddr" 2>&1)
check_eq "TCP exchange i1:$LATE_SPORT -> i2:$LATE_DPORT echoed while c2 is down" "$got" "late region"
sleep $((3 * WINDOW_MS / 1000 + 2)) # several windows pass without region 2's samples
r=$(report_fetch_text "$late_task" regions-late-outage)
jq_true "$r" "during the outage: no request delivered (h2's port-out samples cannot have arrived)" \
	'[req | select(.fate == "delivered")] | length == 0'
jq_true "$r" "during the outage: the requests were seen in region 1 (h1 port-in, uplink-out)" \
	'[req] | length >= 3 and all(.[]; .hops[0].node == "h1")'
echo "# during the outage: $(jq_val "$r" '.verdict.sentence')"
lab_bg collector-c2 "$LAB_MGMT" "$LAB_BIN/dyetrace-collector" -c "$LAB_DIR/collector-c2.conf"
check "collector c2 back (same store)" lab_wait_listen "$LAB_MGMT" 7402
# Until every packet is delivered and that holds for a second.
late_all_delivered() {
	local start stable=0 v
	start=$(lab__now)
	while lab__elapsed_lt "$start" 30; do
		v=$(lab_cli --json report "$late_task" 2>/dev/null |
			jq -r '.verdict | (.judged > 0 and .delivered == .judged and .in_flight == 0)' 2>/dev/null)
		if [[ $v == true ]]; then
			stable=$((stable + 1))
			((stable >= 4)) && return 0
		else
			stable=0
		fi
		sleep 0.25
	done
	return 1
}
check "after c2 is back: every packet of the task delivered (within 30 s)" late_all_delivered
r=$(report_fetch_text "$late_task" regions-late)
jq_true "$r" "after c2 is back: nothing dropped or vanished, requests and replies both there" \
	'(.verdict | .dropped == 0 and .vanished == 0 and .judged == .delivered) and ([req] | length >= 3)
	and ([rep] | length >= 3)'
jq_true "$r" "after c2 is back: every request and reply stitched over both regions (4 hops each)" \
	'all(req; path == $q) and all(rep; path == $p)' --argjson q "$REQ_PATH" --argjson p "$REP_PATH"
jq_true "$r" "after c2 is back: no sample left unmatched" '.unmatched == 0'
echo "# after c2 is back: $(jq_val "$r" '.verdict.sentence')"

# ---------------------------------------------------------------------------------------
# The samples really took both collectors: each stored and forwarded its region's.
for d in agent-h1 agent-h2 collector collector-c2; do lab_bg_stop "$d"; done
c1_fwd=$(exit_counter "$LAB_DIR/collector.log" DT-COLL-EXIT samples_forwarded)
c2_fwd1=$(exit_counter "$LAB_DIR/collector-c2.run1.log" DT-COLL-EXIT samples_forwarded)
c2_fwd2=$(exit_counter "$LAB_DIR/collector-c2.log" DT-COLL-EXIT samples_forwarded)
echo "# samples forwarded: c1 ${c1_fwd:-?}, c2 ${c2_fwd1:-?} before the outage and ${c2_fwd2:-?} after"
# h1 samples 4 per ping exchange (request port-in, uplink-out; reply uplink-in, port-out)
# plus 2 per datagram; h2 as many for the pings plus uplink-in and drop per datagram.
check_range "c1 forwarded h1's samples (>= $((4 * PINGS + 2 * DGRAMS)))" "${c1_fwd:-x}" $((4 * PINGS + 2 * DGRAMS)) 1000000
check_range "c2 forwarded h2's samples before the outage (>= $((4 * PINGS + 2 * DGRAMS)))" \
	"${c2_fwd1:-x}" $((4 * PINGS + 2 * DGRAMS)) 1000000
check_range "c2 forwarded h2's late samples after the outage (>= 12: 3+ requests and replies, 2 hops each)" \
	"${c2_fwd2:-x}" 12 1000000
check "c1's log names collector c1" grep -q 'DT-COLL-READY: collector c1:' "$LAB_DIR/collector.log"
check "c2's log names collector c2 with its own store" \
	grep -q "DT-COLL-READY: collector c2: .* store $LAB_DIR/collector-c2" "$LAB_DIR/collector-c2.run1.log"

checks_teardown_clean
