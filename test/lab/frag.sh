# shellcheck shell=bash
# shellcheck disable=SC2016 # jq and awk programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# frag.sh - IPv4 fragments in the lab (issue 19; test/lab/test_frag_*.sh): MTUs per host
# and instance, conntrack on a host's bridge (br_netfilter), a UDP sender of large
# datagrams that its kernel fragments, and a UDP sink that counts what arrived whole.
# Sourced after lab.sh (and checks.sh); not a test itself (the test glob is test_*.sh).
#
#     frag_instance_mtu h1 1500       # i1's eth0 and h1's pt1
#     frag_vxlan_mtu h1 1450          # h1's vxlan0
#     frag_bridge_conntrack h1        # h1's kernel reassembles (and refragments) on br0
#     frag_sink_start sink "$LAB_I31" 5019
#     frag_send "$LAB_I1" "$LAB_I31_IP" 5019 20 4000    # prints 20
#     frag_sink_count sink 4000       # datagrams of 4000 bytes that arrived
#     frag_snmp "$LAB_H1" Ip ReasmOKs # an IPv4 counter of a namespace (/proc/net/snmp)

# The flow of the fragment tests: i1 -> i31 (h1 -> h3), UDP, datagrams of 4000 bytes. With
# an instance MTU of 1450 the sender's kernel cuts each into 3 fragments: 1424 + 1424 +
# 1160 bytes of IP payload (8 bytes of UDP header and 4000 of data), offsets 0, 1424 and
# 2848.
FRAG_SPORT=40019
# shellcheck disable=SC2034 # for the tests
FRAG_DPORT=5019
# shellcheck disable=SC2034
FRAG_SIZE=4000

# frag_lab_up: checks_lab_up for the fragment tests' lab: 3 hosts, --fdb unicast, window_ms
# $WINDOW_MS.
frag_lab_up() {
	checks_lab_up "lab up (3 hosts, --fdb unicast, window_ms $WINDOW_MS)" \
		"lab up: h1, h2, h3 with unicast FDB, agents on each" \
		--hosts 3 --fdb unicast --window-ms "$WINDOW_MS"
}

# frag_task [NAME SPORT DPORT [DST]]: checks_task for a UDP task from i1:SPORT to DST:DPORT
# (default: the fragment flow, i1:FRAG_SPORT -> i31:FRAG_DPORT), its checks named
# "[NAME: ]create the UDP task (i1:SPORT -> i31:DPORT)" (DST instead of i31 when given) and
# "[NAME: ]task armed"; sets task.
frag_task() {
	local name=${1:+$1: } sport=${2:-$FRAG_SPORT} dport=${3:-$FRAG_DPORT} dst=${4:-$LAB_I31_IP}
	checks_task task "${name}create the UDP task (i1:$sport -> ${4:-i31}:$dport)" "${name}task armed" \
		--src "$LAB_I1_IP" --dst "$dst" --sport "$sport" --dport "$dport" --proto udp --vni "$LAB_VNI"
	# shellcheck disable=SC2034 # for the tests
	task=$CHECKS_TASK
}

# frag_phase_task NAME SPORT DPORT [DST]: a phase of a fragment test begins: a UDP sink in
# i31 on DPORT (background process sink-NAME; a check), then frag_task NAME SPORT DPORT
# [DST]; sets task.
frag_phase_task() {
	check "$1: UDP sink in i31 (:$3)" frag_sink_start "sink-$1" "$LAB_I31" "$3"
	frag_task "$@"
}

# frag_snmp_save NS...: the IPv4 reassembly and fragmentation counters of each NS now, for
# frag_snmp_since.
declare -gA FRAG_SNMP0=()
frag_snmp_save() {
	local ns f
	for ns in "$@"; do
		for f in ReasmReqds ReasmOKs ReasmFails FragOKs FragFails FragCreates; do
			FRAG_SNMP0[$ns.$f]=$(frag_snmp "$ns" Ip "$f")
		done
	done
}

# frag_snmp_since NS FIELD...: how much each counter of NS rose since frag_snmp_save,
# space-separated.
frag_snmp_since() {
	local ns=$1 f out=()
	shift
	for f in "$@"; do out+=("$(frag_snmp_delta "$ns" Ip "$f" "${FRAG_SNMP0[$ns.$f]}")"); done
	echo "${out[*]}"
}

# frag_link_mtu NS DEV MTU: sets DEV's MTU in namespace NS.
frag_link_mtu() {
	ip -n "$1" link set "$2" mtu "$3"
}

# frag_instance_mtu HOST MTU: the MTU of the instance behind HOST's pt1 (its eth0) and of
# the port itself (the bridge's MTU follows its smallest port).
frag_instance_mtu() {
	frag_link_mtu "$LAB_P-$1" pt1 "$2" &&
		frag_link_mtu "$LAB_P-$(lab_host_instance "$1")" eth0 "$2"
}

# frag_vxlan_mtu HOST MTU: the MTU of HOST's VXLAN device vxlan0.
frag_vxlan_mtu() {
	frag_link_mtu "$LAB_P-$1" vxlan0 "$2"
}

# frag_underlay_mtu HOST MTU: the MTU of HOST's underlay NIC ul0 and of its peer ul-HOST on
# the underlay bridge (--underlay bridge; --hosts 3 implies it).
frag_underlay_mtu() {
	frag_link_mtu "$LAB_P-$1" ul0 "$2" && frag_link_mtu "$LAB_UL" "ul-$1" "$2"
}

# frag_bridge_conntrack HOST: conntrack on HOST's bridge, as br_netfilter gives it to every
# Docker or Kubernetes host: bridged IPv4 goes through iptables (bridge-nf-call-iptables,
# built into the lab's kernel; /proc/sys/net/bridge must exist in the namespace), and a
# FORWARD rule that uses conntrack registers conntrack and its defragmentation there. The
# kernel then reassembles every fragmented datagram it bridges, and fragments it again on
# the way out (br_nf_dev_queue_xmit) to the output device's MTU.
frag_bridge_conntrack() {
	local ns=$LAB_P-$1
	if ! lab_in "$ns" test -d /proc/sys/net/bridge; then
		echo "no /proc/sys/net/bridge in $ns: br_netfilter is missing from this kernel" >&2
		return 1
	fi
	lab_in "$ns" sysctl -q -w net.bridge.bridge-nf-call-iptables=1 &&
		lab_in "$ns" iptables -A FORWARD -m conntrack --ctstate NEW,ESTABLISHED -j ACCEPT
}

# frag_sink_start NAME NS PORT: a UDP sink on PORT in NS (background process NAME); it
# writes one line per datagram it receives, "LEN FIRST-4-BYTES", into $LAB_DIR/NAME.log.
# Returns once it listens.
frag_sink_start() {
	local name=$1 ns=$2 port=$3 try
	lab_bg "$name" "$ns" python3 -u -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind(("0.0.0.0", int(sys.argv[1])))
while True:
    d = s.recv(65535)
    print(len(d), d[:4].decode("ascii", "replace"), flush=True)
' "$port" || return 1
	for ((try = 0; try < 50; try++)); do
		[[ -n $(lab_in "$ns" ss -Hlun "sport = :$port" 2>/dev/null) ]] && return 0
		sleep 0.1
	done
	echo "the UDP sink $name does not listen on :$port in $ns" >&2
	cat "$LAB_DIR/$name.log" >&2
	return 1
}

# frag_sink_count NAME [SIZE]: how many datagrams sink NAME received (of SIZE bytes only,
# when given).
frag_sink_count() {
	local f=$LAB_DIR/$1.log
	[[ -e $f ]] || {
		echo 0
		return 0
	}
	if [[ -n ${2:-} ]]; then
		awk -v n="$2" '$1 == n { c++ } END { print c + 0 }' "$f"
	else
		awk '$1 ~ /^[0-9]+$/ { c++ } END { print c + 0 }' "$f"
	fi
}

# frag_sink_wait NAME COUNT [SIZE] [TIMEOUT]: waits until sink NAME has COUNT datagrams
# (of SIZE bytes). Returns 1 on timeout (default 5 s).
frag_sink_wait() {
	local start
	start=$(lab__now)
	until (($(frag_sink_count "$1" "${3:-}") >= $2)); do
		lab__elapsed_lt "$start" "${4:-5}" || return 1
		sleep 0.1
	done
}

# frag_send NS DST DPORT COUNT SIZE [GAP_MS] [SPORT]: sends COUNT UDP datagrams of SIZE
# bytes from NS to DST:DPORT (source port SPORT, default FRAG_SPORT), GAP_MS apart
# (default 20). Each payload starts with its number (4 digits, so each datagram has its
# own UDP ident), padded with dots. The socket leaves path MTU discovery to the kernel's
# default (a datagram larger than the MTU is fragmented without DF). Prints how many were
# sent.
frag_send() {
	lab_in "$1" python3 -c '
import socket, sys, time
dst, dport, n, size, gap, sport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", sport))
sent = 0
for i in range(1, n + 1):
    head = b"%04d dyetrace fragments " % i
    s.sendto(head + b"." * (size - len(head)), (dst, dport))
    sent += 1
    if i < n and gap > 0:
        time.sleep(gap / 1000.0)
print(sent)
' "$2" "$3" "$4" "$5" "${6:-20}" "${7:-$FRAG_SPORT}"
}

# frag_snmp NS GROUP FIELD: a counter of /proc/net/snmp in NS, e.g. frag_snmp NS Ip
# FragCreates (ReasmReqds, ReasmOKs, ReasmFails, FragOKs, FragFails, FragCreates).
frag_snmp() {
	lab_in "$1" awk -v g="$2:" -v f="$3" '
		$1 == g && !h { for (i = 2; i <= NF; i++) k[i] = $i; h = 1; next }
		$1 == g && h { for (i = 2; i <= NF; i++) if (k[i] == f) print $i; exit }
	' /proc/net/snmp
}

# frag_snmp_delta NS GROUP FIELD BEFORE: how much the counter rose since BEFORE.
frag_snmp_delta() {
	local now
	now=$(frag_snmp "$1" "$2" "$3")
	echo $((${now:-0} - ${4:-0}))
}

# jq definitions for the fragment checks (jq_true, jq_val): a packet's fragment offset,
# the datagrams of a report (its fragments grouped by direction, IPv4 id and ident, as
# report.schema.json says), and a datagram's layout as "OFFSET/MORE/LEN" strings by offset.
CHECKS_JQ_DEFS+='
	def foff: .fragment.offset_bytes;
	def frags: [.packets[] | select(.fragment != null)];
	def datagrams: frags | group_by([.direction, .ip_id, .ident]);
	def layout: sort_by(.fragment.offset_bytes) | map("\(.fragment.offset_bytes)/\(.fragment.more)/\(.len)");
'

# The layout of a datagram of FRAG_SIZE bytes that a 1450-byte MTU cut into 3 fragments.
FRAG_LAYOUT_1450='["0/true/1444","1424/true/1444","2848/false/1180"]'

# frag_check_layout FILE NAME COUNT [LAYOUT]: the report lists COUNT datagrams, each as its
# fragments (LAYOUT, default FRAG_LAYOUT_1450), and no packet that is not a fragment.
frag_check_layout() {
	local f=$1 name=$2 n=$3 layout=${4:-$FRAG_LAYOUT_1450}
	jq_true "$f" "$name: $((n * $(jq length <<<"$layout"))) packets, each a fragment (fragment set)" \
		'(.packets | length) == $n * ($l | length) and all(.packets[]; .fragment != null)' \
		--argjson n "$n" --argjson l "$layout"
	jq_true "$f" "$name: $n datagrams (by IPv4 id and ident), each its fragments $(jq -r 'join(", ")' <<<"$layout") (offset/more/len)" \
		'datagrams | length == $n and all(.[]; layout == $l)' --argjson n "$n" --argjson l "$layout"
}

# frag_capture_count NAME [FILTER]: the packets of capture NAME (matching pcap FILTER);
# one per packet, whatever tcpdump prints for it (a VXLAN packet is two lines).
frag_capture_count() {
	lab_capture_read "$1" ${2:+"$2"} | grep -c '^[0-9]' || true
}
