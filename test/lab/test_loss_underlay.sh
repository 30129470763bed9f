#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_loss_underlay.sh - loss diagnosis, scenario 5: loss in the underlay. The lab runs
# with --underlay bridge: the hosts' ul0 meet on a bridge in namespace $P-ul, where no
# agent runs (the "wire").
#
# Blackhole: h1 gets a blackhole route for h2's underlay address. VXLAN cannot route the
# encapsulated packet and the kernel frees the frame on h1 with its own reason (no route
# for the outer packet): the packets never reach uplink-out. The report must say the last
# hop that saw them (h1 port-in) and the drop on h1 with the kernel's reason.
#
# Wire: the underlay bridge drops the VXLAN packets from h1 to h2 (nftables, family
# bridge, in $P-ul). No agent sees that drop (the drop tracer reports only its own
# namespace), so every packet vanished after its last hop, h1 uplink-out, with no reason.
#
# MTU: the underlay link of h1 accepts 1400 bytes only (the bridge-side end ul-h1 of h1's
# veth gets MTU 1400): the encapsulated form of a large packet (a 1428-byte UDP datagram is
# 1478 bytes with VXLAN) does not fit; small ones pass. The veth drops the large ones as h1's
# ul0 hands them over, in h1's namespace, with the kernel's reason (veth gives none more
# specific than NOT_SPECIFIED). The report: small ones delivered, large ones dropped on h1
# ul0 after h1 uplink-out, with that reason.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtlu" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtlu}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
PINGS=10
DGRAMS=10
UDP_SPORT=40200
UDP_DPORT=5200
MTU_SPORT=40201
MTU_DPORT=5201
SMALL=5
LARGE=5
LARGE_SIZE=1400 # UDP payload: 1428-byte IPv4 packets, 1478 bytes encapsulated
UL_MTU=1400

checks_lab_up "lab up (bridge underlay, daemons, window_ms $WINDOW_MS)" \
	"lab up: overlay over a bridged underlay ($LAB_UL), analyzer (window_ms $WINDOW_MS), agents h1 and h2" --underlay bridge --window-ms "$WINDOW_MS"

# Static neighbours: i1 sends its packets even when no ARP reply can come back.
check "static neighbours i1 <-> i2" lab_static_neighbours i1 i2

# ---------------------------------------------------------------------------------------
# Blackhole route on h1.
checks_task ping_task "create the ping task (icmp i1 -> i2)" "ping task armed" \
	--src "$LAB_I1_IP" --dst "$LAB_I2_IP" --proto icmp --vni "$LAB_VNI"
check "h1: blackhole route for h2's underlay address $LAB_H2_UL_IP" \
	ip -n "$LAB_H1" route add blackhole "$LAB_H2_UL_IP/32"
check "capture: VXLAN leaving h1" lab_capture_start vx-h1 "$LAB_H1" ul0 "src host $LAB_H1_UL_IP and udp port 4789"
check_eq "$PINGS pings i1 -> i2: none answered" "$(ping_received "$LAB_I1" "$LAB_I2_IP" "$PINGS")" 0
check "ping task: every packet judged (window passed)" lab_task_wait_judged "$ping_task" "$PINGS"
lab_capture_stop vx-h1
check_eq "no VXLAN packet left h1" "$(lab_capture_count vx-h1)" 0

r=$(report_fetch_text "$ping_task" blackhole)
check_verdict "$r" blackhole "$PINGS" 0 "$PINGS" 0
reason=$(jq_val "$r" '.verdict.reason')
echo "# blackhole: kernel reason '$reason' at $(jq_val "$r" '.packets[0] | lasthop | hopkey') ($(jq_val "$r" '.packets[0].drop.where'))"
jq_true "$r" "blackhole: verdict at h1, with the kernel's reason" \
	'.verdict.at.node == "h1" and (.verdict.reason | length > 0)'
jq_true "$r" "blackhole: the reason names a routing failure, not NETFILTER_DROP or NOT_SPECIFIED" \
	'.verdict.reason | test("ROUTE|NOROUTES|UNREACHABLE|BLACKHOLE") and . != "NOT_SPECIFIED"'
jq_true "$r" "blackhole: every packet was seen last at h1 port-in, then dropped on h1" \
	'all(.packets[]; .fate == "dropped" and path[:-1] == ["h1/pt1/port-in"]
		and lasthop.node == "h1" and lasthop.hook == "drop" and .drop.name == $reason)' \
	--arg reason "$reason"
jq_true "$r" "blackhole: verdict sentence names h1 and the reason" \
	'.verdict.sentence | test("h1") and test($reason)' --arg reason "$reason"
jq_true "$r" "blackhole: per-hop table: h1 port-in seen $PINGS, dropped $PINGS" \
	'row("h1"; "pt1"; "port-in"; "request") | .seen == $n and .dropped == $n' --argjson n "$PINGS"
jq_true "$r" "blackhole: no hop on h2 in the table" '[.hops[] | select(.node == "h2" and .seen > 0)] | length == 0'
echo "# verdict: $(jq_val "$r" '.verdict.sentence')"
check "h1: remove the blackhole route" ip -n "$LAB_H1" route del blackhole "$LAB_H2_UL_IP/32"

# ---------------------------------------------------------------------------------------
# Lost on the wire: the underlay bridge drops VXLAN from h1 to h2.
checks_task udp_task "create the UDP task (udp i1:$UDP_SPORT -> i2:$UDP_DPORT)" "UDP task armed" \
	--src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport "$UDP_SPORT" --dport "$UDP_DPORT" --proto udp --vni "$LAB_VNI"
check "underlay bridge ($LAB_UL): drop VXLAN from h1 to h2" \
	nft_bridge_drop "$LAB_UL" dtlab_wire forward "ip saddr $LAB_H1_UL_IP ip daddr $LAB_H2_UL_IP udp dport 4789"
check "capture: at i2 eth0" lab_capture_start udp-i2 "$LAB_I2" eth0 "udp port $UDP_DPORT"
for ((k = 1; k <= DGRAMS; k++)); do
	printf '%04d dyetrace wire loss\n' "$k" |
		lab_in "$LAB_I1" socat -u - "UDP:$LAB_I2_IP:$UDP_DPORT,sourceport=$UDP_SPORT,reuseaddr"
	sleep 0.05
done
check_eq "the underlay bridge dropped $DGRAMS" "$(nft_counter "$LAB_UL" bridge dtlab_wire forward)" "$DGRAMS"
check "UDP task: every packet judged (window passed)" lab_task_wait_judged "$udp_task" "$DGRAMS"
lab_capture_stop udp-i2
check_eq "i2 received none of the datagrams" "$(lab_capture_count udp-i2)" 0

r=$(report_fetch_text "$udp_task" wire)
check_verdict "$r" wire "$DGRAMS" 0 0 "$DGRAMS"
jq_true "$r" "wire: verdict: vanished after h1/ul0 uplink-out, no reason (no drop seen)" \
	'.verdict.at == {node: "h1", ifname: "ul0", hook: "uplink-out"} and .verdict.reason == ""'
jq_true "$r" "wire: every packet vanished after h1 port-in -> h1 uplink-out, no drop" \
	'all(.packets[]; .fate == "vanished" and .drop == null
		and path == ["h1/pt1/port-in","h1/ul0/uplink-out"])'
jq_true "$r" "wire: verdict sentence says vanished after h1" \
	'.verdict.sentence | test("vanish"; "i") and test("h1")'
jq_true "$r" "wire: per-hop table: h1 uplink-out seen $DGRAMS, vanished $DGRAMS" \
	'row("h1"; "ul0"; "uplink-out"; "request") | .seen == $n and .vanished == $n and .dropped == 0' \
	--argjson n "$DGRAMS"
jq_true "$r" "wire: the drop in the underlay namespace is nobody's (no drop hop reported)" \
	'[.packets[].hops[] | select(.hook == "drop")] | length == 0'
echo "# verdict: $(jq_val "$r" '.verdict.sentence')"

# ---------------------------------------------------------------------------------------
# MTU too small on h1's underlay link.
check "underlay bridge: remove the wire drop" lab_in "$LAB_UL" nft delete table bridge dtlab_wire
checks_task mtu_task "create the UDP task (udp i1:$MTU_SPORT -> i2:$MTU_DPORT)" "UDP task armed" \
	--src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport "$MTU_SPORT" --dport "$MTU_DPORT" --proto udp --vni "$LAB_VNI"
check "underlay: MTU $UL_MTU on h1's link (ul-h1, the bridge side of h1's ul0)" \
	ip -n "$LAB_UL" link set ul-h1 mtu "$UL_MTU"
check "capture: at i2 eth0" lab_capture_start mtu-i2 "$LAB_I2" eth0 "udp port $MTU_DPORT"
send_udp() { # SIZE COUNT: COUNT datagrams of SIZE payload bytes, first 4 bytes distinct
	local k payload
	for ((k = 1; k <= $2; k++)); do
		# One write, so that socat reads (and sends) the payload as one datagram.
		payload=$(printf '%04d' "$k"; head -c $(($1 - 4)) /dev/zero | tr '\0' x)
		printf '%s' "$payload" |
			lab_in "$LAB_I1" socat -u - "UDP:$LAB_I2_IP:$MTU_DPORT,sourceport=$MTU_SPORT,reuseaddr"
		sleep 0.05
	done
}
send_udp 20 "$SMALL"
send_udp "$LARGE_SIZE" "$LARGE"
# shellcheck disable=SC2154 # mtu_task: set by checks_task
check "UDP task: every packet judged (window passed)" lab_task_wait_judged "$mtu_task" $((SMALL + LARGE))
lab_capture_stop mtu-i2
check_eq "i2 received the $SMALL small datagrams only" \
	"$(lab_capture_count mtu-i2) $(lab_capture_read mtu-i2 'greater 1000' | wc -l)" "$SMALL 0"
r=$(report_fetch_text "$mtu_task" mtu)
check_verdict "$r" mtu $((SMALL + LARGE)) "$SMALL" "$LARGE" 0
reason=$(jq_val "$r" '.verdict.reason')
echo "# mtu: kernel reason '$reason' at $(jq_val "$r" '[.packets[] | select(.fate == "dropped")][0] | lasthop | hopkey') ($(jq_val "$r" '[.packets[] | select(.fate == "dropped")][0].drop.where'))"
jq_true "$r" "mtu: the small datagrams (48 bytes) delivered" \
	'[.packets[] | select(.len == 48)] | length == $n and all(.[]; .fate == "delivered"
		and path == ["h1/pt1/port-in","h1/ul0/uplink-out","h2/ul0/uplink-in","h2/pt1/port-out"])' \
	--argjson n "$SMALL"
jq_true "$r" "mtu: the large datagrams ($((LARGE_SIZE + 28)) bytes) last seen at h1 uplink-out, dropped on h1 ul0 with a reason" \
	'[.packets[] | select(.len == $l)] | length == $n and all(.[]; .fate == "dropped"
		and path[:-1] == ["h1/pt1/port-in","h1/ul0/uplink-out"]
		and lasthop.node == "h1" and lasthop.ifname == "ul0" and lasthop.hook == "drop"
		and (.drop.name | length > 0))' \
	--argjson n "$LARGE" --argjson l $((LARGE_SIZE + 28))
jq_true "$r" "mtu: verdict: dropped at h1 ul0, reason given" \
	'.verdict.at == {node: "h1", ifname: "ul0", hook: "drop"} and (.verdict.reason | length > 0)'
jq_true "$r" "mtu: per-hop table: h1 uplink-out seen $((SMALL + LARGE)), dropped $LARGE" \
	'row("h1"; "ul0"; "uplink-out"; "request") | .seen == $s + $l and .dropped == $l' \
	--argjson s "$SMALL" --argjson l "$LARGE"
echo "# verdict: $(jq_val "$r" '.verdict.sentence')"

# Whose drops: h1's agent reported the blackhole and MTU drops and nothing else, h2's none;
# both only counted the underlay bridge's drops (another namespace).
lab_bg_stop agent-h1
lab_bg_stop agent-h2
check_eq "h1's agent reported exactly the $PINGS blackhole and $LARGE MTU drops" \
	"$(exit_counter "$LAB_DIR/agent-h1.log" DT-AGENT-EXIT drops)" $((PINGS + LARGE))
check_eq "h2's agent reported no drop" "$(exit_counter "$LAB_DIR/agent-h2.log" DT-AGENT-EXIT drops)" 0
for h in h1 h2; do
	check_range "$h's agent counted the underlay's $DGRAMS drops as another namespace's" \
		"$(exit_counter "$LAB_DIR/agent-$h.log" DT-AGENT-EXIT drops_other_netns)" "$DGRAMS" 1000000000
done

checks_teardown_clean
