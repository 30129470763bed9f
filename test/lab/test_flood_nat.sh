#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_flood_nat.sh - copies, scenario 5 (issue 13): NAT through the gateway on an overlay
# that floods (3 hosts and gw, --fdb flood), both directions. i1's requests to the internet
# namespace leave h1 three times (to gw, and copies to h2 and h3); the replies leave gw
# three times (to h1, and copies to h2 and h3). The bystanders' bridges discard every copy.
#
# Pings (ICMP, address translated) and UDP echo (address and port translated), traced in
# both directions: every packet delivered, requests along h1 port-in -> h1 uplink-out ->
# gw uplink-in -> gw gw-out with the translated tuple there, replies from gw gw-in to h1
# port-out named in the task's terms (stitched through the NAT), each with two filtered
# copies (h2, h3) per direction; copies[] counts them per node and direction; the internet
# and i1 never see the color; no sample unmatched, every sample a hop.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtxa" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtxa}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
PINGS=10
ECHOS=5
ECHO_SPORT=40101
NAT_PORT_LO=20000
NAT_PORT_HI=20999
COLOR_FILTER='ip[6] & 0x80 != 0'
BYSTANDERS='["h2","h3"]'
REQ_PATH='["h1/pt1/port-in","h1/ul0/uplink-out","gw/ul0/uplink-in","gw/ext0/gw-out"]'
REP_PATH='["gw/ext0/gw-in","gw/ul0/uplink-out","h1/ul0/uplink-in","h1/pt1/port-out"]'
REQ_COPIES='[["h1/pt1/port-in","h1/ul0/uplink-out","h2/ul0/uplink-in","h2/vxlan0/drop"],
	["h1/pt1/port-in","h1/ul0/uplink-out","h3/ul0/uplink-in","h3/vxlan0/drop"]]'
REP_COPIES='[["gw/ext0/gw-in","gw/ul0/uplink-out","h2/ul0/uplink-in","h2/vxlan0/drop"],
	["gw/ext0/gw-in","gw/ul0/uplink-out","h3/ul0/uplink-in","h3/vxlan0/drop"]]'

# copies_both N: the expected copies[] of N packets each way, filtered at h2 and h3.
copies_both() {
	local n=$1 node dir sep='' out='['
	for node in h2 h3; do
		for dir in request reply; do
			out+="$sep{\"node\":\"$node\",\"direction\":\"$dir\",\"fate\":\"filtered\",\"count\":$n}"
			sep=,
		done
	done
	echo "$out]"
}

# check_nat_tree FILE NAME N: N requests and N replies, all delivered along the NAT paths,
# two filtered copies each, and the tree invariants.
check_nat_tree() {
	local f=$1 name=$2 n=$3
	check_verdict "$f" "$name" $((2 * n)) $((2 * n)) 0 0
	jq_true "$f" "$name: verdict says no loss" '.verdict.reason == "" and .verdict.at == null'
	jq_true "$f" "$name: $n requests and $n replies, every one delivered" \
		'([req] | length == $n) and ([rep] | length == $n) and all(.packets[]; .fate == "delivered" and .drop == null)' \
		--argjson n "$n"
	jq_true "$f" "$name: every request's destination branch: h1 port-in -> h1 uplink-out -> gw uplink-in -> gw gw-out" \
		'all(req; dpath == $p)' --argjson p "$REQ_PATH"
	jq_true "$f" "$name: every reply's destination branch: gw gw-in -> gw uplink-out -> h1 uplink-in -> h1 port-out" \
		'all(rep; dpath == $p)' --argjson p "$REP_PATH"
	jq_true "$f" "$name: every request: 2 copies, h1 uplink-out -> h2 (h3) uplink-in -> drop, filtered" \
		'all(req; .copies == 2 and (copy_paths | sort) == ($c | sort) and all(copy_ends[]; .copy_fate == "filtered"))' \
		--argjson c "$REQ_COPIES"
	jq_true "$f" "$name: every reply: 2 copies, gw uplink-out -> h2 (h3) uplink-in -> drop, filtered" \
		'all(rep; .copies == 2 and (copy_paths | sort) == ($c | sort) and all(copy_ends[]; .copy_fate == "filtered"))' \
		--argjson c "$REP_COPIES"
	jq_true "$f" "$name: every reply's destination (i1) is known" 'all(rep; .destination_known == true)'
	check_tree "$f" "$name"
	check_hop_latency_tree "$f" "$name"
	check_loss_table_destination "$f" "$name" "$BYSTANDERS"
	jq_true "$f" "$name: per-hop loss table: the requests' and replies' destination hops, $n each, nothing lost" \
		'[.hops[] | "\(.direction) \(hopkey) \(.seen) \(.dropped) \(.vanished)"] | sort
			== ([($q[] | "request \(.) \($n) 0 0"), ($p[] | "reply \(.) \($n) 0 0")] | sort)' \
		--argjson q "$REQ_PATH" --argjson p "$REP_PATH" --argjson n "$n"
	check_copies "$f" "$name" "$(copies_both "$n")"
	jq_true "$f" "$name: no sample left unmatched" '.unmatched == 0'
}

flood_lab_up "lab up: h1, h2, h3 and gw flood to each other, gw masquerades, agents on each"
got=$(lab_in "$LAB_I1" curl -sS -m 5 "http://$LAB_INET_IP:$LAB_INET_HTTP_PORT/" 2>&1)
check_eq "i1 reaches the internet namespace's HTTP server through the NAT (and warms the bridges)" "$got" \
	"hello from the internet namespace"
check_bystanders_know "gw's br0 MAC" "$LAB_GW_BR_MAC" h2 h3
check_bystanders_know "i1's MAC" "$LAB_I1_MAC" h2 h3
check "gw: UDP leaving ext0 is masqueraded to ports $NAT_PORT_LO-$NAT_PORT_HI" \
	lab_in "$LAB_GW" nft insert rule ip dtlab_nat postrouting oifname ext0 meta l4proto udp \
	masquerade to ":$NAT_PORT_LO-$NAT_PORT_HI"

# ---------------------------------------------------------------------------------------
# Pings through the NAT, both directions.
checks_task ping_task "create the ping task (icmp i1 -> $LAB_INET_IP, both directions)" "ping task armed" \
	--src "$LAB_I1_IP" --dst "$LAB_INET_IP" --proto icmp --vni "$LAB_VNI" --direction both

check "capture: color at the internet namespace" lab_capture_start color-inet "$LAB_INET" eth0 "$COLOR_FILTER"
check "capture: color at i1 eth0" lab_capture_start color-i1 "$LAB_I1" eth0 "$COLOR_FILTER"
for h in h2 h3; do
	check "capture: VXLAN on $h ul0" lab_capture_start "ul-$h" "$LAB_P-$h" ul0 "udp port 4789"
done

check "$PINGS pings i1 -> $LAB_INET_IP through the NAT, all answered" \
	lab_in "$LAB_I1" ping -c "$PINGS" -i 0.05 -W 1 -q "$LAB_INET_IP"
check "ping task: every packet judged (window passed)" lab_task_wait_judged "$ping_task" $((2 * PINGS))
for c in color-inet color-i1 ul-h2 ul-h3; do lab_capture_stop "$c"; done
check_no_color color-inet "the internet namespace never sees the color"
check_no_color color-i1 "i1 never sees the color on the replies"
for h in h2 h3; do
	check_eq "kernel: $h's underlay got a copy of each request and each reply" \
		"$(capture_vxlan_count "ul-$h" "IP $LAB_I1_IP > $LAB_INET_IP: ICMP echo request") $(capture_vxlan_count "ul-$h" "IP $LAB_INET_IP > $LAB_I1_IP: ICMP echo reply")" \
		"$PINGS $PINGS"
done

r_ping=$(report_fetch_text "$ping_task" flood-nat-ping)
check_nat_tree "$r_ping" "flood nat ping" "$PINGS"
jq_true "$r_ping" "flood nat ping: the gw-out hop shows the translated tuple ($LAB_GW_EXT_IP -> $LAB_INET_IP)" \
	'all(req; . as $p | [.hops[] | select(.hook == "gw-out")] | length == 1
		and all(.[]; hflow($p) | .src == $x and .dst == $d))' --arg x "$LAB_GW_EXT_IP" --arg d "$LAB_INET_IP"
jq_true "$r_ping" "flood nat ping: the gw-in hop shows the translated reply; replies named in the task's terms" \
	'all(rep; . as $p | (.hops[] | select(.parent == null) | hflow($p) | .src == $d and .dst == $x)
		and .flow.src == $d and .flow.dst == $s)' --arg s "$LAB_I1_IP" --arg x "$LAB_GW_EXT_IP" --arg d "$LAB_INET_IP"
echo "# ping verdict: $(jq_val "$r_ping" '.verdict.sentence')"

# ---------------------------------------------------------------------------------------
# UDP echo through the port-translating NAT, both directions.
echo_task=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_INET_IP" --sport "$ECHO_SPORT" \
	--dport "$LAB_INET_ECHO_PORT" --proto udp --vni "$LAB_VNI" --direction both)
check "create the UDP echo task (udp i1:$ECHO_SPORT -> $LAB_INET_IP:$LAB_INET_ECHO_PORT, both directions)" \
	test -n "$echo_task"
[[ -n $echo_task ]] || exit 1
check "UDP echo task armed" lab_task_wait_armed "$echo_task"
echoed=0
for ((k = 1; k <= ECHOS; k++)); do
	got=$(printf '%04d dyetrace flood echo\n' "$k" | lab_in "$LAB_I1" timeout 5 socat -t 1 - \
		"UDP:$LAB_INET_IP:$LAB_INET_ECHO_PORT,sourceport=$ECHO_SPORT,reuseaddr" 2>/dev/null)
	[[ $got == "$(printf '%04d' "$k") dyetrace flood echo" ]] && echoed=$((echoed + 1))
done
check_eq "$ECHOS UDP datagrams echoed through the NAT" "$echoed" "$ECHOS"
check "UDP echo task: every packet judged (window passed)" lab_task_wait_judged "$echo_task" $((2 * ECHOS))

r_echo=$(report_fetch_text "$echo_task" flood-nat-echo)
check_nat_tree "$r_echo" "flood nat echo" "$ECHOS"
jq_true "$r_echo" "flood nat echo: the gw-out hop shows $LAB_GW_EXT_IP with a port in $NAT_PORT_LO-$NAT_PORT_HI" \
	'all(req; . as $p | [.hops[] | select(.hook == "gw-out")] | length == 1 and all(.[]; hflow($p)
		| .src == $x and .sport >= $lo and .sport <= $hi and .dport == $dp))' --arg x "$LAB_GW_EXT_IP" \
	--argjson lo "$NAT_PORT_LO" --argjson hi "$NAT_PORT_HI" --argjson dp "$LAB_INET_ECHO_PORT"
jq_true "$r_echo" "flood nat echo: requests named i1:$ECHO_SPORT -> $LAB_INET_IP:$LAB_INET_ECHO_PORT, replies the reverse" \
	'all(req; .flow | .src == $s and .sport == $sp and .dst == $d and .dport == $dp)
	and all(rep; .flow | .src == $d and .sport == $dp and .dst == $s and .dport == $sp)' \
	--arg s "$LAB_I1_IP" --argjson sp "$ECHO_SPORT" --arg d "$LAB_INET_IP" --argjson dp "$LAB_INET_ECHO_PORT"
echo "# echo verdict: $(jq_val "$r_echo" '.verdict.sentence')"

check_samples_accounted "flood nat" "$r_ping" "$r_echo"
check_eq "kernel: drops reported by the agents of h1 h2 h3 gw (h2 and h3: every copy, each way)" \
	"$(agent_exit h1 drops) $(agent_exit h2 drops) $(agent_exit h3 drops) $(agent_exit gw drops)" \
	"0 $((2 * (PINGS + ECHOS))) $((2 * (PINGS + ECHOS))) 0"

checks_teardown_clean
