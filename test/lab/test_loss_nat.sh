#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_loss_nat.sh - loss diagnosis, scenario 4: instance -> internet through the NAT
# gateway. The lab runs with --gw: gw masquerades everything leaving ext0 towards the
# internet namespace (203.0.113.10), i1's default route is gw on the overlay.
#
# Healthy: pings from i1 to 203.0.113.10, traced in both directions. Requests take h1
# port-in -> h1 uplink-out -> gw uplink-in -> gw gw-out, and the gw-out hop shows the
# translated tuple (source 203.0.113.1); replies enter at gw gw-in (translated tuple,
# destination 203.0.113.1) and end at h1 port-out; all delivered; the internet namespace
# never sees the color (and the positive control sees it on gw's br0).
#
# UDP through the NAT is also port-translated: the test puts a rule before the lab's
# masquerade that maps UDP source ports into 20000-20999, so both the address and the port
# change. Healthy UDP echo, both directions: the gw-out hop shows 203.0.113.1:2xxxx, the
# reply enters at gw-in towards 203.0.113.1:2xxxx and is named in the task's terms.
#
# Dropped after translation: an nftables filter chain on gw's postrouting hook at priority
# 110 (after masquerade at srcnat = 100) drops UDP from the translated source 203.0.113.1
# to 203.0.113.10:7 (the rule matches only translated packets). The kernel frees each with
# NETFILTER_DROP; the report must attribute every drop to the task (named by the inside
# tuple 10.100.0.1:40100 -> 203.0.113.10:7) although the dropped packet's tuple is the
# translated one (other address, other port), at gw, reason NETFILTER_DROP, and leave
# nothing unmatched.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtln" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtln}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
PINGS=10
DGRAMS=10
ECHOS=5
UDP_SPORT=40100
ECHO_SPORT=40101
NAT_PORT_LO=20000
NAT_PORT_HI=20999
COLOR_FILTER='ip[6] & 0x80 != 0'
REQ_PATH='["h1/pt1/port-in","h1/ul0/uplink-out","gw/ul0/uplink-in","gw/ext0/gw-out"]'
REP_PATH='["gw/ext0/gw-in","gw/ul0/uplink-out","h1/ul0/uplink-in","h1/pt1/port-out"]'
DROP_PREFIX='["h1/pt1/port-in","h1/ul0/uplink-out","gw/ul0/uplink-in"]'

checks_lab_up "lab up (overlay, gateway with NAT, daemons, window_ms $WINDOW_MS)" \
	"lab up: overlay, gateway gw (masquerade on ext0), internet namespace, agents h1, h2, gw" --gw --window-ms "$WINDOW_MS"
got=$(lab_in "$LAB_I1" curl -sS -m 5 "http://$LAB_INET_IP:$LAB_INET_HTTP_PORT/" 2>&1)
check_eq "i1 reaches the internet namespace's HTTP server through the NAT" "$got" \
	"hello from the internet namespace"
check "gw: UDP leaving ext0 is masqueraded to ports $NAT_PORT_LO-$NAT_PORT_HI" \
	lab_in "$LAB_GW" nft insert rule ip dtlab_nat postrouting oifname ext0 meta l4proto udp \
	masquerade to ":$NAT_PORT_LO-$NAT_PORT_HI"

# ---------------------------------------------------------------------------------------
# Healthy: pings through the NAT, both directions.
checks_task ping_task "create the ping task (icmp i1 -> $LAB_INET_IP, both directions)" "ping task armed" \
	--src "$LAB_I1_IP" --dst "$LAB_INET_IP" --proto icmp --vni "$LAB_VNI" --direction both

check "capture: color at the internet namespace" lab_capture_start color-inet "$LAB_INET" eth0 "$COLOR_FILTER"
check "capture: everything the internet namespace receives" lab_capture_start all-inet "$LAB_INET" eth0 ip
check "capture: color at gw br0 (positive control)" lab_capture_start color-gw "$LAB_GW" br0 "$COLOR_FILTER"
check "capture: color at i1 eth0" lab_capture_start color-i1 "$LAB_I1" eth0 "$COLOR_FILTER"

check "$PINGS pings i1 -> $LAB_INET_IP through the NAT, all answered" \
	lab_in "$LAB_I1" ping -c "$PINGS" -i 0.05 -W 1 -q "$LAB_INET_IP"
check "ping task: every packet judged (window passed)" lab_task_wait_judged "$ping_task" $((2 * PINGS))
for c in color-inet all-inet color-gw color-i1; do lab_capture_stop "$c"; done

check_no_color color-inet "the internet namespace never sees the color (ip[6] & 0x80)"
check_no_color color-i1 "i1 never sees the color on the replies"
n=$(lab_capture_count color-gw)
if ((n > 0)); then ok "positive control: gw br0 sees $n colored packets"; else not_ok "positive control: gw br0 sees colored packets" none; fi
check_eq "the internet namespace sees the requests from the masquerade address only" \
	"$(lab_capture_read all-inet "icmp[icmptype] == icmp-echo and src host $LAB_GW_EXT_IP" | wc -l) $(lab_capture_read all-inet "src host $LAB_I1_IP" | wc -l)" \
	"$PINGS 0"

r=$(report_fetch_text "$ping_task" nat-ping)
check_verdict "$r" "nat ping" $((2 * PINGS)) $((2 * PINGS)) 0 0
jq_true "$r" "nat ping: $PINGS requests and $PINGS replies" \
	'([req] | length == $n) and ([rep] | length == $n)' --argjson n "$PINGS"
jq_true "$r" "nat ping: every request takes h1 port-in -> h1 uplink-out -> gw uplink-in -> gw gw-out" \
	'all(req; path == $p)' --argjson p "$REQ_PATH"
jq_true "$r" "nat ping: every reply takes gw gw-in -> gw uplink-out -> h1 uplink-in -> h1 port-out" \
	'all(rep; path == $p)' --argjson p "$REP_PATH"
jq_true "$r" "nat ping: the gw-out hop shows the translated tuple ($LAB_GW_EXT_IP -> $LAB_INET_IP)" \
	'all(req; . as $p | .hops[] | select(.hook == "gw-out") | hflow($p) | .src == $x and .dst == $d)' \
	--arg x "$LAB_GW_EXT_IP" --arg d "$LAB_INET_IP"
jq_true "$r" "nat ping: the port-in hop shows the inside tuple ($LAB_I1_IP -> $LAB_INET_IP)" \
	'all(req; . as $p | .hops[0] | hflow($p) | .src == $s and .dst == $d)' --arg s "$LAB_I1_IP" --arg d "$LAB_INET_IP"
jq_true "$r" "nat ping: the gw-in hop shows the translated reply ($LAB_INET_IP -> $LAB_GW_EXT_IP)" \
	'all(rep; . as $p | .hops[0] | hflow($p) | .src == $d and .dst == $x)' --arg x "$LAB_GW_EXT_IP" --arg d "$LAB_INET_IP"
jq_true "$r" "nat ping: replies are named in the task's terms ($LAB_INET_IP -> $LAB_I1_IP)" \
	'all(rep; .flow.src == $d and .flow.dst == $s)' --arg s "$LAB_I1_IP" --arg d "$LAB_INET_IP"
jq_true "$r" "nat ping: every packet delivered" 'all(.packets[]; .fate == "delivered" and .drop == null)'
jq_true "$r" "nat ping: no sample left unmatched" '.unmatched == 0'

# ---------------------------------------------------------------------------------------
# Healthy UDP echo through the port-translating NAT, both directions.
echo_task=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_INET_IP" --sport "$ECHO_SPORT" \
	--dport "$LAB_INET_ECHO_PORT" --proto udp --vni "$LAB_VNI" --direction both)
check "create the UDP echo task (udp i1:$ECHO_SPORT -> $LAB_INET_IP:$LAB_INET_ECHO_PORT, both directions)" \
	test -n "$echo_task"
[[ -n $echo_task ]] || exit 1
check "UDP echo task armed" lab_task_wait_armed "$echo_task"
check "capture: UDP echo at the internet namespace" lab_capture_start echo-inet "$LAB_INET" eth0 \
	"udp port $LAB_INET_ECHO_PORT"
echoed=0
for ((k = 1; k <= ECHOS; k++)); do
	got=$(printf '%04d dyetrace nat echo\n' "$k" | lab_in "$LAB_I1" timeout 5 socat -t 1 - \
		"UDP:$LAB_INET_IP:$LAB_INET_ECHO_PORT,sourceport=$ECHO_SPORT,reuseaddr" 2>/dev/null)
	[[ $got == "$(printf '%04d' "$k") dyetrace nat echo" ]] && echoed=$((echoed + 1))
done
check_eq "$ECHOS UDP datagrams echoed through the NAT" "$echoed" "$ECHOS"
check "UDP echo task: every packet judged (window passed)" lab_task_wait_judged "$echo_task" $((2 * ECHOS))
lab_capture_stop echo-inet
inet_sports=$(lab_capture_read echo-inet "dst port $LAB_INET_ECHO_PORT" |
	sed -nE "s/.* $LAB_GW_EXT_IP\.([0-9]+) > .*/\1/p" | sort -u | tr '\n' ' ')
if [[ $inet_sports =~ ^2[0-9]{4}\ $ ]] && ((${inet_sports% } >= NAT_PORT_LO && ${inet_sports% } <= NAT_PORT_HI)); then
	ok "the internet namespace sees the datagrams from $LAB_GW_EXT_IP:${inet_sports% } (port translated)"
else
	not_ok "the internet namespace sees the datagrams from one translated port" "source ports: '${inet_sports}'"
fi

r=$(report_fetch_text "$echo_task" nat-echo)
check_verdict "$r" "nat echo" $((2 * ECHOS)) $((2 * ECHOS)) 0 0
jq_true "$r" "nat echo: $ECHOS requests and $ECHOS replies, all delivered" \
	'([req] | length == $n) and ([rep] | length == $n) and all(.packets[]; .fate == "delivered")' \
	--argjson n "$ECHOS"
jq_true "$r" "nat echo: requests h1 port-in -> ... -> gw gw-out, replies gw gw-in -> ... -> h1 port-out" \
	'all(req; path == $q) and all(rep; path == $p)' --argjson q "$REQ_PATH" --argjson p "$REP_PATH"
jq_true "$r" "nat echo: the gw-out hop shows $LAB_GW_EXT_IP with a port in $NAT_PORT_LO-$NAT_PORT_HI" \
	'all(req; . as $p | lasthop | hflow($p) | .src == $x and .sport >= $lo and .sport <= $hi
		and .dport == $dp)' --arg x "$LAB_GW_EXT_IP" --argjson lo "$NAT_PORT_LO" \
	--argjson hi "$NAT_PORT_HI" --argjson dp "$LAB_INET_ECHO_PORT"
jq_true "$r" "nat echo: the gw-in hop shows the reply to $LAB_GW_EXT_IP:$NAT_PORT_LO-$NAT_PORT_HI" \
	'all(rep; . as $p | .hops[0] | hflow($p) | .dst == $x and .dport >= $lo and .dport <= $hi
		and .sport == $dp)' --arg x "$LAB_GW_EXT_IP" --argjson lo "$NAT_PORT_LO" \
	--argjson hi "$NAT_PORT_HI" --argjson dp "$LAB_INET_ECHO_PORT"
jq_true "$r" "nat echo: requests named i1:$ECHO_SPORT -> $LAB_INET_IP:$LAB_INET_ECHO_PORT, replies the reverse" \
	'all(req; .flow | .src == $s and .sport == $sp and .dst == $d and .dport == $dp)
	and all(rep; .flow | .src == $d and .sport == $dp and .dst == $s and .dport == $sp)' \
	--arg s "$LAB_I1_IP" --argjson sp "$ECHO_SPORT" --arg d "$LAB_INET_IP" --argjson dp "$LAB_INET_ECHO_PORT"
jq_true "$r" "nat echo: no sample left unmatched" '.unmatched == 0'

# ---------------------------------------------------------------------------------------
# Dropped after translation.
checks_task udp_task "create the UDP task (udp i1:$UDP_SPORT -> $LAB_INET_IP:$LAB_INET_ECHO_PORT)" "UDP task armed" \
	--src "$LAB_I1_IP" --dst "$LAB_INET_IP" --sport "$UDP_SPORT" --dport "$LAB_INET_ECHO_PORT" --proto udp --vni "$LAB_VNI"

drop_up() {
	lab_in "$LAB_GW" nft -f - <<-EOF
		table ip dtlab_drop {
			chain postrouting {
				type filter hook postrouting priority 110; policy accept;
				oifname "ext0" ip saddr $LAB_GW_EXT_IP ip daddr $LAB_INET_IP udp dport $LAB_INET_ECHO_PORT counter drop
			}
		}
	EOF
}
check "gw: nftables drops translated UDP to $LAB_INET_IP:$LAB_INET_ECHO_PORT at postrouting priority 110 (after srcnat)" drop_up
check "capture: UDP at the internet namespace" lab_capture_start udp-inet "$LAB_INET" eth0 "udp port $LAB_INET_ECHO_PORT"
for ((k = 1; k <= DGRAMS; k++)); do
	# The first 4 payload bytes differ per datagram: they are the UDP ident.
	printf '%04d dyetrace nat drop\n' "$k" |
		lab_in "$LAB_I1" socat -u - "UDP:$LAB_INET_IP:$LAB_INET_ECHO_PORT,sourceport=$UDP_SPORT,reuseaddr"
	sleep 0.05
done
check_eq "gw's rule counted $DGRAMS drops" "$(nft_counter "$LAB_GW" ip dtlab_drop postrouting)" "$DGRAMS"
check "UDP task: every packet judged (window passed)" lab_task_wait_judged "$udp_task" "$DGRAMS"
lab_capture_stop udp-inet
check_eq "the internet namespace received none of the datagrams" "$(lab_capture_count udp-inet)" 0

r=$(report_fetch_text "$udp_task" nat-drop)
check_verdict "$r" "nat drop" "$DGRAMS" 0 "$DGRAMS" 0
jq_true "$r" "nat drop: verdict at gw, reason NETFILTER_DROP" \
	'.verdict.at.node == "gw" and .verdict.reason == "NETFILTER_DROP"'
jq_true "$r" "nat drop: verdict sentence names the count, gw and NETFILTER_DROP" \
	'.verdict.sentence | test("\($n) of \($n)") and test("gw") and test("NETFILTER_DROP")' \
	--argjson n "$DGRAMS"
jq_true "$r" "nat drop: $DGRAMS packets attributed to the task, every one dropped with NETFILTER_DROP" \
	'(.packets | length == $n) and all(.packets[]; .fate == "dropped" and .drop.name == "NETFILTER_DROP")' \
	--argjson n "$DGRAMS"
jq_true "$r" "nat drop: every path h1 port-in -> h1 uplink-out -> gw uplink-in -> drop on gw ext0" \
	'all(.packets[]; path[:-1] == $p and lasthop.node == "gw" and lasthop.hook == "drop"
		and lasthop.ifname == "ext0")' --argjson p "$DROP_PREFIX"
jq_true "$r" "nat drop: the drop hop shows the translated tuple ($LAB_GW_EXT_IP, port in $NAT_PORT_LO-$NAT_PORT_HI)" \
	'all(.packets[]; . as $p | lasthop | hflow($p) | .src == $x and .dst == $d and .dport == $dp
		and .sport >= $lo and .sport <= $hi)' \
	--arg x "$LAB_GW_EXT_IP" --arg d "$LAB_INET_IP" --argjson dp "$LAB_INET_ECHO_PORT" \
	--argjson lo "$NAT_PORT_LO" --argjson hi "$NAT_PORT_HI"
jq_true "$r" "nat drop: the packets are named by the inside tuple ($LAB_I1_IP:$UDP_SPORT)" \
	'all(.packets[]; .flow.src == $s and .flow.sport == $sp and .direction == "request")' \
	--arg s "$LAB_I1_IP" --argjson sp "$UDP_SPORT"
jq_true "$r" "nat drop: per-hop table: gw uplink-in seen $DGRAMS, dropped $DGRAMS, top reason NETFILTER_DROP" \
	'row("gw"; "ul0"; "uplink-in"; "request") | .seen == $n and .dropped == $n
		and .top_reason == "NETFILTER_DROP"' --argjson n "$DGRAMS"
jq_true "$r" "nat drop: no sample left unmatched (the translated drops were matched)" '.unmatched == 0'
echo "# verdict: $(jq_val "$r" '.verdict.sentence')"

checks_teardown_clean
