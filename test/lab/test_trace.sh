#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_trace.sh - integration test on the lab: a traced ping and a traced TCP flow from i1
# to i2 take port-in(h1,pt1) -> uplink-out(h1,ul0) -> uplink-in(h2,ul0) -> port-out(h2,pt1),
# every colored packet is counted and delivered, the instance never sees the color, and
# untraced flows (other direction, other ports, other protocol) are never colored or
# sampled.
#
# An ICMP task that leaves the echo identifier out traces every ICMP packet from i1 to i2,
# echo replies included (bpf/dt_sample.h: a reply's tuple is its request's reversed), so
# the untraced traffic here never sends ICMP from i1 to i2: pings from i2 to i1 would make
# i1 send replies that rightly belong to the ping task.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Runs under ctest (test/CMakeLists.txt sets DT_BIN) or by hand as root. Uses the
# namespace prefix "dtt" unless DT_LAB says otherwise, so that it never touches a demo
# lab ("dtl") left up by hand.
set -uo pipefail

: "${DT_LAB:=dtt}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

PINGS=5
TCP_SPORT=40001
TCP_DPORT=5001
COLOR_FILTER='ip[6] & 0x80 != 0' # the IPv4 reserved flag bit: dyetrace's color
PATH_WANT='["h1/pt1/port-in","h1/ul0/uplink-out","h2/ul0/uplink-in","h2/pt1/port-out"]'
# pcap filters naming the traced flows exactly (i1 -> i2 only).
PING_FLOW="icmp and src host $LAB_I1_IP and dst host $LAB_I2_IP and icmp[icmptype] == icmp-echo"
TCP_FLOW="tcp and src host $LAB_I1_IP and dst host $LAB_I2_IP and src port $TCP_SPORT and dst port $TCP_DPORT"


# jq_check FILE DESC FILTER: FILTER (with --argjson path) must print true.
jq_check() {
	local file=$1 desc=$2 filter=$3 got
	got=$(jq -r --argjson path "$PATH_WANT" "$filter" "$file" 2>&1)
	if [[ $got == true ]]; then
		ok "$desc"
	else
		not_ok "$desc" "$(printf '%s' "$got" | tr '\n' ' ' | cut -c1-200)"
	fi
}

# IPv4 ids of the packets of capture NAME that match pcap FILTER, one a line, sorted.
capture_ip_ids() {
	lab_capture_read "$1" -v "$2" | sed -nE 's/.*\(tos [^,]*, ttl [0-9]+, id ([0-9]+),.*/\1/p' | sort -n
}

# Checks of one task's report FILE: counts, path of every packet, latencies.
check_report() {
	local name=$1 file=$2 id=$3 want_colored=$4 flow=$5 flow_jq=$6 colored ids bad
	jq_check "$file" "$name: report is JSON with task $id" ".task.id == $id"
	jq_check "$file" "$name: the report's task names the flow it was created with" ".task.flow | $flow_jq"
	colored=$(jq -r '.task.colored' "$file" 2>/dev/null)
	if [[ $want_colored == +* ]]; then
		if [[ $colored =~ ^[0-9]+$ ]] && ((colored >= ${want_colored#+})); then
			ok "$name: colored $colored >= ${want_colored#+}"
		else
			not_ok "$name: colored >= ${want_colored#+}" "got '$colored'"
		fi
	else
		check_eq "$name: colored == packets sent ($want_colored)" "$colored" "$want_colored"
	fi
	check_eq "$name: delivered == colored" "$(jq -r '.task.delivered' "$file" 2>/dev/null)" "$colored"
	check_eq "$name: one path per colored packet" "$(jq -r '.packets | length' "$file" 2>/dev/null)" "$colored"
	jq_check "$file" "$name: every path is port-in(h1,pt1) -> uplink-out(h1,ul0) -> uplink-in(h2,ul0) -> port-out(h2,pt1)" \
		'(.packets | length > 0) and all(.packets[]; [.hops[] | "\(.node)/\(.ifname)/\(.hook)"] == $path)'
	jq_check "$file" "$name: hop timestamps ascend and latency_ns is null on the first hop, >= 0 after" \
		'all(.packets[]; (.hops[0].latency_ns == null)
			and all(.hops[1:][]; (.latency_ns | type) == "number" and .latency_ns >= 0)
			and ([.hops[].ts_ns] == ([.hops[].ts_ns] | sort)))'
	jq_check "$file" "$name: hop_latency has the 3 hops, each over every packet, min <= mean <= max" \
		'(.packets | length) as $n | (.hop_latency | length == 3)
			and all(.hop_latency[]; .count == $n and .min_ns >= 0 and .min_ns <= .mean_ns
				and .mean_ns <= .max_ns and .stddev_ns >= 0)'
	# Only packets of the task's own tuple: every reported IPv4 id is one that i2 received
	# on that flow.
	ids=$(capture_ip_ids all-i2 "$flow" | tr '\n' ' ')
	bad=$(jq -r '.packets[].ip_id' "$file" 2>/dev/null | while read -r i; do
		[[ " $ids " == *" $i "* ]] || printf '%s ' "$i"
	done)
	if [[ -z $bad && -n $ids ]]; then
		ok "$name: every reported packet is one of the task's own flow"
	else
		not_ok "$name: every reported packet is one of the task's own flow" \
			"ip ids not on the flow: ${bad:-?}; flow ids: ${ids:-none}"
	fi
}

checks_trap

# ---------------------------------------------------------------------------------------
if ! lab_up; then
	not_ok "lab up (overlay and daemons)"
	exit 1
fi
ok "lab up: overlay works, analyzer, collector and two agents ready"

ping_task=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --proto icmp --vni "$LAB_VNI")
check "create the ping task (icmp $LAB_I1_IP -> $LAB_I2_IP vni $LAB_VNI)" test -n "$ping_task"
tcp_task=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport "$TCP_SPORT" \
	--dport "$TCP_DPORT" --proto tcp --vni "$LAB_VNI")
check "create the TCP task (tcp $LAB_I1_IP:$TCP_SPORT -> $LAB_I2_IP:$TCP_DPORT vni $LAB_VNI)" \
	test -n "$tcp_task"
if [[ -z $ping_task || -z $tcp_task ]]; then
	exit 1
fi
check "ping task armed" lab_task_wait_armed "$ping_task"
check "TCP task armed" lab_task_wait_armed "$tcp_task"

# Captures: the color inside the instance (must stay empty), the color on h2's VXLAN
# device (the decapsulated packets before the last hop: the positive control), and
# everything i2 receives from i1 (to tie reported packets to their flow by IPv4 id).
check "capture: color at i2 eth0" lab_capture_start color-i2 "$LAB_I2" eth0 "$COLOR_FILTER"
check "capture: color at h2 vxlan0" lab_capture_start color-h2 "$LAB_H2" vxlan0 "$COLOR_FILTER"
check "capture: all from i1 at i2 eth0" lab_capture_start all-i2 "$LAB_I2" eth0 \
	"ip and src host $LAB_I1_IP and dst host $LAB_I2_IP"

# Traffic. Traced: PINGS echo requests i1 -> i2, one TCP connection i1:40001 -> i2:5001.
# Untraced: the replies (i2 -> i1), a TCP connection from another source port to the same
# server port, the mirrored TCP connection i2:40001 -> i1:5001, UDP i1 -> i2.
lab_bg tcp-server "$LAB_I2" socat -T 5 "TCP-LISTEN:$TCP_DPORT,reuseaddr,fork" PIPE
check "TCP echo server listens in i2" lab_wait_listen "$LAB_I2" "$TCP_DPORT"
lab_bg tcp-server-i1 "$LAB_I1" socat -T 5 "TCP-LISTEN:$TCP_DPORT,reuseaddr,fork" PIPE
check "TCP echo server listens in i1" lab_wait_listen "$LAB_I1" "$TCP_DPORT"
check "traced: $PINGS pings i1 -> i2 all answered" \
	lab_in "$LAB_I1" ping -c "$PINGS" -i 0.2 -W 1 -q "$LAB_I2_IP"
got=$(printf 'traced\n' | lab_in "$LAB_I1" timeout 10 socat -t 1 - \
	"TCP:$LAB_I2_IP:$TCP_DPORT,sourceport=$TCP_SPORT,reuseaddr" 2>&1)
check_eq "traced: TCP exchange i1:$TCP_SPORT -> i2:$TCP_DPORT echoed" "$got" traced
got=$(printf 'untraced\n' | lab_in "$LAB_I1" timeout 10 socat -t 1 - \
	"TCP:$LAB_I2_IP:$TCP_DPORT,sourceport=$((TCP_SPORT + 1)),reuseaddr" 2>&1)
check_eq "untraced: TCP exchange i1:$((TCP_SPORT + 1)) -> i2:$TCP_DPORT echoed" "$got" untraced
got=$(printf 'mirrored\n' | lab_in "$LAB_I2" timeout 10 socat -t 1 - \
	"TCP:$LAB_I1_IP:$TCP_DPORT,sourceport=$TCP_SPORT,reuseaddr" 2>&1)
check_eq "untraced: mirrored TCP exchange i2:$TCP_SPORT -> i1:$TCP_DPORT echoed" "$got" mirrored
check "untraced: 3 UDP datagrams i1 -> i2:5002" lab_in "$LAB_I1" bash -c \
	"for n in 1 2 3; do echo untraced >/dev/udp/$LAB_I2_IP/5002; sleep 0.1; done"

# Until every sample has arrived: the counts reached the minimum and stopped moving.
lab_task_wait_settled "$ping_task" "$PINGS" || true
lab_task_wait_settled "$tcp_task" 1 || true
lab_capture_stop color-i2
lab_capture_stop color-h2
lab_capture_stop all-i2

# The color never reaches the instance, and the filter is proven on h2's VXLAN device.
check_eq "i2 eth0 receives no colored packet" "$(lab_capture_count color-i2)" 0
n_colored_wire=$(lab_capture_count color-h2)
if ((n_colored_wire > 0)); then
	ok "positive control: h2 vxlan0 sees $n_colored_wire colored packets"
else
	not_ok "positive control: h2 vxlan0 sees colored packets" "none"
fi
untraced=$(lab_capture_read color-h2 "not (($PING_FLOW) or ($TCP_FLOW))")
check_eq "no untraced packet is colored (h2 vxlan0)" "$untraced" ""

# Plain TCP on the lab's management address: both ingest endpoints say what that exposes.
for d in collector:$LAB_COLLECTOR_URL analyzer:$LAB_ANALYZER_URL; do
	check "the ${d%%:*} warns that ${d#*:} is open to anyone (DT-LISTEN-PLAIN)" grep -q \
		"warn DT-LISTEN-PLAIN: ${d#*:} is plain TCP.*inject samples or read the control set" \
		"$LAB_DIR/${d%%:*}.log"
done
check_eq "the analyzer's ipc:// API raises no such warning" \
	"$(grep -c DT-LISTEN-PLAIN "$LAB_DIR/analyzer.log")" 1

# Reports.
lab_cli --json report "$ping_task" >"$LAB_DIR/report-ping.json" 2>"$LAB_DIR/report-ping.err"
check "report of the ping task" test -s "$LAB_DIR/report-ping.json"
lab_cli --json report "$tcp_task" >"$LAB_DIR/report-tcp.json" 2>"$LAB_DIR/report-tcp.err"
check "report of the TCP task" test -s "$LAB_DIR/report-tcp.json"
check_report ping "$LAB_DIR/report-ping.json" "$ping_task" "$PINGS" "$PING_FLOW" \
	".src == \"$LAB_I1_IP\" and .dst == \"$LAB_I2_IP\" and .proto == \"icmp\" and .vni == $LAB_VNI"
check_report tcp "$LAB_DIR/report-tcp.json" "$tcp_task" +1 "$TCP_FLOW" \
	".src == \"$LAB_I1_IP\" and .dst == \"$LAB_I2_IP\" and .proto == \"tcp\" and .vni == $LAB_VNI
		and .sport == $TCP_SPORT and .dport == $TCP_DPORT"

# Every colored packet on the wire was counted by exactly one task.
sum=$(($(jq -r '.task.colored // 0' "$LAB_DIR/report-ping.json" 2>/dev/null || echo 0) + \
	$(jq -r '.task.colored // 0' "$LAB_DIR/report-tcp.json" 2>/dev/null || echo 0)))
check_eq "colored packets on the wire == colored in the reports" "$n_colored_wire" "$sum"

if ((CHECKS_FAILED > 0)); then
	echo "--- report-ping.json"; head -c 3000 "$LAB_DIR/report-ping.json"; echo
	echo "--- report-tcp.json"; head -c 3000 "$LAB_DIR/report-tcp.json"; echo
	cat "$LAB_DIR"/report-*.err
	lab_logs_tail 15
fi

# Teardown leaves nothing behind.
lab_down
leftover=$(ip netns list | awk '{print $1}' | grep -E "^$LAB_P-(mgmt|h1|h2|i1|i2)\$" | tr '\n' ' ')
check_eq "teardown leaves no namespace" "$leftover" ""
