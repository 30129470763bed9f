#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# lab.sh - a real VXLAN overlay in network namespaces, with the dyetrace daemons on it.
#
# Sourced by the demo and the lab tests, or run on its own:
#
#     test/lab/lab.sh up [--net-only] [--hosts N] [--fdb flood|learn|unicast] [--gw]
#                        [--regions 2] [--underlay bridge] [--window-ms N] [--instances 4]
#                        [--tenants N] [--tls]
#                                        build the lab (and start the daemons), leave it up
#     test/lab/lab.sh down               tear it down (idempotent; also cleans a crashed run)
#     test/lab/lab.sh status             what exists now
#
# Default topology ($P is $DT_LAB, default "dtl"):
#
#            $P-mgmt: bridge mgbr0 10.254.0.1/24, analyzer (:7401, api ipc) and collector (:7400)
#               |  mg-h1                                 |  mg-h2
#               |  mg0 10.254.0.11                       |  mg0 10.254.0.12
#     $P-h1: agent h1                             $P-h2: agent h2
#        br0 = { pt1, vxlan0 (vni 100) }             br0 = { pt1, vxlan0 (vni 100) }
#        ul0 172.31.0.1/24  <---- underlay veth ---->   ul0 172.31.0.2/24
#        pt1                                          pt1
#         |                                            |
#     $P-i1: eth0 10.100.0.1/24 (mtu 1450)       $P-i2: eth0 10.100.0.2/24 (mtu 1450)
#
# Options (each off by default; the default lab above never changes):
#
#   --underlay bridge (DT_LAB_UNDERLAY=bridge): the underlay is a small L2 segment, a bridge
#       ulbr0 in namespace $P-ul with one veth per host (ul-h1, ul-h2, ul-h3.., ul-gw); the
#       hosts keep ul0 and their 172.31.0.x addresses, and VXLAN has one all-zeros FDB entry
#       per other host (bridge fdb append 00:00:00:00:00:00 ... dst X) instead of one remote
#       (see --fdb). No agent runs in $P-ul, so a packet lost there is "lost on the wire".
#   --gw (DT_LAB_GW=1; implies --underlay bridge): a gateway host $P-gw on the overlay and
#       an "internet" namespace behind it:
#           $P-gw: agent gw; mg0 10.254.0.13; ul0 172.31.0.3/24; br0 = { vxlan0 (vni 100) }
#                  with 10.100.0.254/24 (the instances' default route); ip_forward on;
#                  nftables masquerade of everything leaving ext0 (table ip dtlab_nat);
#                  ext0 203.0.113.1/24
#           $P-inet: eth0 203.0.113.10/24, answers ping; TCP echo on :7, UDP echo on :7,
#                  HTTP on :80 (socat)
#       The agent on gw attaches ul0 as uplink and ext0 as gateway (vni 100).
#   --regions 2 (DT_LAB_REGIONS=2): a second collector c2 in $P-mgmt on :7402 with its own
#       store; h2's agent reports to c2, h1's (and gw's) to c1; both forward to the one
#       analyzer. With --hosts N: the even hosts (h2, h4, ...) report to c2, the odd ones
#       (and gw) to c1.
#   --window-ms N (DT_LAB_WINDOW_MS=N): the analyzer's window_ms (analysis window). Unset:
#       the key is not written and the analyzer's default applies.
#   --instances 4 (DT_LAB_INSTANCES=4): two more instances, one more port per host:
#           $P-i3: eth0 10.100.0.3/24 behind h1's pt2;  $P-i4: eth0 10.100.0.4/24 behind h2's pt2
#   --tenants N (DT_LAB_TENANTS=N): N more tenants, t1..tN, besides the default tenant "lab"
#       (0..64, default 0); their tokens are known (lab_tenant_token tK).
#   --tls (DT_LAB_TLS=1): every link is tls+tcp:// with mutual TLS. lab_up makes a CA and a
#       certificate for each daemon with openssl in $LAB_DIR/tls (NAME.pem, NAME.key; the
#       name is the node, c1/c2 or analyzer, also as DNS SAN); lab_tls_cert makes more.
#   --hosts N (DT_LAB_HOSTS=N; 2..9, default 2; N >= 3 implies --underlay bridge): instance
#       hosts h1..hN. h1 and h2 stay as above; every further host hK (K = 3..N) is built
#       the same way (br0 = { pt1, vxlan0 (vni 100) }, an agent "hK", its port listing its
#       instance, ul-hK on the underlay bridge, mg-hK on mgbr0) with:
#           $P-hK: ul0 172.31.0.(10+K)/24 (h3: 172.31.0.13); mg0 10.254.0.(20+K) (h3: .23)
#           $P-iK1: eth0 10.100.0.K1/24 behind hK's pt1 (h3: instance i31, 10.100.0.31,
#                  MAC 02:00:0a:64:00:1f); with --instances 4 also $P-iK2 (10.100.0.K2)
#                  behind hK's pt2
#       Instance names: iKP is "the instance behind port ptP of host hK"; i1..i4 keep their
#       meaning (i3 and i4 are the second ports of h1 and h2, not instances of h3 and h4).
#       Every instance is in the one overlay subnet 10.100.0.0/24, the MAC of an instance is
#       02:00:0a:64:00:XX with XX its address's last byte in hex (lab_instance_mac).
#       LAB_H3 and LAB_I31 (LAB_I31_IP, LAB_I31_MAC) name h3 and its instance; for any host
#       use lab_host_ns, lab_host_instance, lab_instance_ip, lab_instance_ns.
#   --fdb MODE (DT_LAB_FDB=MODE): how each host's vxlan0 (gw's too) finds the VTEP of a MAC:
#       learn    (the default; what the lab always did) the kernel's learning, and one
#                all-zeros FDB entry per remote VTEP for what is not learned yet (broadcast,
#                unknown unicast); with the veth underlay that is vxlan0's "remote PEER";
#       flood    head-end replication: vxlan0 has "nolearning" and one all-zeros entry per
#                remote VTEP, so every frame it sends goes to every other VTEP (the hosts
#                and, with --gw, the gateway), a copy each;
#       unicast  "nolearning", a static entry per remote MAC (every remote instance, and the
#                gateway's br0 with --gw) to the VTEP that hosts it, plus the all-zeros
#                entries for broadcast (ARP): a known unicast frame goes to one VTEP only.
#       The hosts' bridges (br0) learn as Linux bridges do, whatever the mode. Mind what
#       they do with a copy (--fdb flood, or learn before it learned): a bridge that has
#       learned the destination MAC behind vxlan0 discards the copy (the kernel frees it in
#       br_handle_frame_finish, drop reason NOT_SPECIFIED, a drop sample at HOST/vxlan0);
#       one that has not floods it to its own ports (a port-out sample there, and the
#       instance's kernel discards a frame for another MAC). Every frame a host floods
#       teaches the others' bridges its source MAC, so on a flood lab that has carried
#       traffic both ways (lab_up pings i1 -> every other instance) the copies are
#       discarded. bridge -n NS fdb show br br0 tells what a bridge knows.
#
# Tenants, limits, the task store and the instances behind each port (the task service):
#   - tenants: the analyzer always has the default tenant "lab" (token $LAB_TOKEN, from
#     DT_LAB_TOKEN, default "dyetrace-lab-default-token"), which lab_cli uses unless told
#     otherwise (LAB_CLI_TOKEN=T lab_cli ..., or lab_cli_as tK ...), and t1..tN with
#     --tenants N;
#   - limits: generous for the lab (budget 10000 by default, rate 10000 pps, duration
#     600 s) so that no older test meets them by accident; DT_LAB_LIMITS (or LAB_OPT_LIMITS
#     before lab_up) replaces the members of the limits group (libconfig text; members
#     left out take the analyzer's defaults, so start from $LAB_LIMITS_DEFAULT);
#   - store: the analyzer's LMDB store in $LAB_DIR/analyzer-store (it survives
#     lab_analyzer_restart; it goes with the state dir);
#   - instances: every port lists the address of the instance behind it (the analyzer
#     arms a task only at the node that hosts its source instance).
#
# Every interface lives inside a namespace the lab creates (veth peers are created directly
# in their target namespace), so nothing is ever added to the root namespace and deleting
# the namespaces removes every interface, qdisc, nftables rule and attached BPF program.
#
# Environment:
#   DT_LAB       namespace prefix (default "dtl"); one lab per prefix at a time
#   DT_LAB_DIR   state dir: configs, logs, the collectors' LMDB stores, the agents' spools,
#                the API socket, captures (default: a new mktemp -d); removed at down
#                unless DT_KEEP=1
#   DT_BIN       where the binaries are (default <repo>/build/bin)
#   DT_KEEP=1    keep the state dir at down (its path is printed)
#   DT_LAB_TIMEOUT  seconds to wait for each daemon to become ready (default 20)
#   DT_LAB_HOSTS, DT_LAB_FDB, DT_LAB_GW, DT_LAB_REGIONS, DT_LAB_UNDERLAY, DT_LAB_WINDOW_MS,
#   DT_LAB_INSTANCES, DT_LAB_TENANTS: the options above
#   DT_LAB_TOKEN the default tenant's token; DT_LAB_LIMITS the limits group's members
#   DT_LAB_ANALYZER_EXTRA  more analyzer config lines (e.g. "arm_timeout_ms = 2000;")
#   DT_LAB_METRICS  1 (the default): every daemon serves Prometheus metrics on 127.0.0.1
#                in its namespace (lab_metrics_url, lab_metrics_scrape); 0: none
#
# Library use (the caller may run under set -euo pipefail; no option is changed here):
#
#     . test/lab/lab.sh
#     lab_trap                 # lab_down on EXIT, INT and TERM
#     lab_up                   # or lab_up --net-only, lab_up --gw --regions 2 ...
#     id=$(lab_task_create --src 10.100.0.1 --dst 10.100.0.2 --proto icmp --vni 100)
#     lab_task_wait_armed "$id"
#     lab_in "$LAB_I1" ping -c 5 10.100.0.2
#     lab_cli report "$id"
#     lab_cli_as t1 task list  # as tenant t1 (with --tenants 1 or more)
#     lab_as t1 lab_task_wait_armed "$id"   # any lab function, as tenant t1
#     lab_udp_send "$LAB_I1" 10 40000:10.100.0.2:5000:20   # 20 datagrams, 10 ms apart
#     state=$(lab_task_wait_ended "$id")    # done, expired, cancelled or failed
#     lab_analyzer_restart TERM             # or KILL; the store stays
#     lab_down
#
# Functions return non-zero (after printing why on stderr) rather than exiting.

# ---------------------------------------------------------------------------------------
# Names and addresses

# ip, ss, sysctl and tcpdump live in sbin directories, which some environments leave out.
case ":$PATH:" in
*:/usr/sbin:*) ;;
*) PATH=$PATH:/usr/sbin:/sbin ;;
esac

LAB_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB_P=${DT_LAB:-dtl}
LAB_BIN=${DT_BIN:-$LAB_REPO/build/bin}
LAB_DIR=${DT_LAB_DIR:-}
LAB_TIMEOUT=${DT_LAB_TIMEOUT:-20}

LAB_MGMT=$LAB_P-mgmt
LAB_H1=$LAB_P-h1
LAB_H2=$LAB_P-h2
LAB_I1=$LAB_P-i1
LAB_I2=$LAB_P-i2
LAB_I3=$LAB_P-i3 # --instances 4
LAB_I4=$LAB_P-i4
LAB_GW=$LAB_P-gw
LAB_INET=$LAB_P-inet
LAB_UL=$LAB_P-ul
# The namespaces of this lab (set by lab__topology from the options), and every namespace
# any lab of this prefix may have (what cleanup and status look for).
LAB_NAMESPACES=("$LAB_MGMT" "$LAB_H1" "$LAB_H2" "$LAB_I1" "$LAB_I2")
LAB_HOSTS=(h1 h2) # the forwarding nodes that run an agent (lab__topology adds gw)
LAB_NAMESPACES_ALL=("$LAB_MGMT" "$LAB_H1" "$LAB_H2" "$LAB_I1" "$LAB_I2" "$LAB_I3" "$LAB_I4" "$LAB_GW" "$LAB_INET" "$LAB_UL")
LAB_HOSTS_MAX=9 # --hosts N: h3..h9 and their instances iK1, iK2
for ((lab__k = 3; lab__k <= LAB_HOSTS_MAX; lab__k++)); do
	LAB_NAMESPACES_ALL+=("$LAB_P-h$lab__k" "$LAB_P-i${lab__k}1" "$LAB_P-i${lab__k}2")
done
unset lab__k
# h3 and its instance (--hosts 3 or more); lab_host_ns and lab_host_instance name any host's.
# shellcheck disable=SC2034 # for the tests
LAB_H3=$LAB_P-h3
# shellcheck disable=SC2034
LAB_I31=$LAB_P-i31

# Options (see the header); lab_up's flags override these.
LAB_OPT_HOSTS=${DT_LAB_HOSTS:-2}
LAB_OPT_FDB=${DT_LAB_FDB:-learn}
LAB_OPT_GW=${DT_LAB_GW:-0}
LAB_OPT_REGIONS=${DT_LAB_REGIONS:-1}
LAB_OPT_UNDERLAY=${DT_LAB_UNDERLAY:-veth}
LAB_OPT_WINDOW_MS=${DT_LAB_WINDOW_MS:-}
LAB_OPT_INSTANCES=${DT_LAB_INSTANCES:-2}
LAB_OPT_TENANTS=${DT_LAB_TENANTS:-0}
LAB_OPT_LIMITS=${DT_LAB_LIMITS:-}
LAB_OPT_METRICS=${DT_LAB_METRICS:-1}
LAB_OPT_TLS=${DT_LAB_TLS:-0}

# The default tenant, whose token lab_cli passes (see the header).
LAB_TENANT=lab
LAB_TOKEN=${DT_LAB_TOKEN:-dyetrace-lab-default-token}
# The lab's limits (the analyzer's configuration; DT_LAB_LIMITS replaces them).
LAB_LIMITS_DEFAULT='budget_default = 10000; budget_max = 100000; duration_default_s = 600; duration_max_s = 3600; rate_default_pps = 10000; rate_max_pps = 10000; tasks_max_per_tenant = 4096;'

LAB_MGMT_IP=10.254.0.1
# mgbr0's own MAC, fixed: a bridge without one takes the lowest MAC of its ports, so a host
# added to a running lab (test/lab/router.sh) could change it under the daemons' links
# (the hosts' ARP entries then point at a MAC the bridge no longer answers to).
LAB_MGMT_BR_MAC=02:00:0a:fe:00:01
LAB_H1_MGMT_IP=10.254.0.11
LAB_H2_MGMT_IP=10.254.0.12
LAB_H1_UL_IP=172.31.0.1
LAB_H2_UL_IP=172.31.0.2
LAB_I1_IP=10.100.0.1
LAB_I2_IP=10.100.0.2
# shellcheck disable=SC2034 # read through lab_instance_mac (and by some tests)
LAB_I1_MAC=02:00:0a:64:00:01
# shellcheck disable=SC2034
LAB_I2_MAC=02:00:0a:64:00:02
LAB_I3_IP=10.100.0.3 # --instances 4: behind h1's pt2
LAB_I4_IP=10.100.0.4 # --instances 4: behind h2's pt2
# shellcheck disable=SC2034
LAB_I3_MAC=02:00:0a:64:00:03
# shellcheck disable=SC2034
LAB_I4_MAC=02:00:0a:64:00:04
# shellcheck disable=SC2034
LAB_I31_IP=10.100.0.31 # --hosts 3 or more: behind h3's pt1
# shellcheck disable=SC2034
LAB_I31_MAC=02:00:0a:64:00:1f
# shellcheck disable=SC2034
LAB_H3_UL_IP=172.31.0.13 # --hosts 3 or more (lab_host_ul_ip for any host)
LAB_VNI=100
LAB_MTU=1450 # 1500 underlay - 50 bytes of outer Ethernet/IPv4/UDP/VXLAN
# The gateway (--gw) and the internet behind it.
LAB_GW_MGMT_IP=10.254.0.13
LAB_GW_UL_IP=172.31.0.3
LAB_GW_IP=10.100.0.254 # on the overlay: the instances' default route
LAB_GW_BR_MAC=02:00:00:00:03:fe # its br0, which holds LAB_GW_IP
LAB_GW_EXT_IP=203.0.113.1 # outside; the masquerade address
LAB_INET_IP=203.0.113.10
LAB_INET_ECHO_PORT=7 # TCP and UDP echo in $LAB_INET
LAB_INET_HTTP_PORT=80

LAB_COLLECTOR_URL=tcp://$LAB_MGMT_IP:7400
LAB_COLLECTOR2_URL=tcp://$LAB_MGMT_IP:7402 # region 2 (--regions 2)
LAB_ANALYZER_URL=tcp://$LAB_MGMT_IP:7401

declare -gA LAB__EXIT=() # pid -> exit status of stopped children

# Where a standalone "lab.sh up" records its state dir for a later "lab.sh down".
LAB_RUN_DIR=/run/dyetrace-lab
LAB_MARK=.dyetrace-lab

# ---------------------------------------------------------------------------------------
# Messages

lab_log() { printf 'lab: %s\n' "$*" >&2; }
lab_err() { printf 'lab: error: %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------
# Small helpers

# lab_in NS CMD...: runs CMD inside namespace NS.
lab_in() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

# lab_cli ARGS...: the dyetrace CLI against the lab's analyzer, as the default tenant
# (its token in DYETRACE_TOKEN), or with the token in LAB_CLI_TOKEN when set
# (LAB_CLI_TOKEN=T lab_cli ...). An explicit --token in ARGS wins over both.
lab_cli() {
	DYETRACE_TOKEN=${LAB_CLI_TOKEN:-$LAB_TOKEN} "$LAB_BIN/dyetrace" -a "ipc://$LAB_DIR/api.sock" "$@"
}

# lab_cli_as TENANT ARGS...: the CLI as TENANT ("lab", or t1..tN with --tenants N).
lab_cli_as() {
	local t=$1
	shift
	lab_as "$t" lab_cli "$@"
}

# lab_as TENANT CMD...: runs CMD (e.g. lab_task_wait_armed ID) with every lab_cli in it
# as TENANT.
lab_as() {
	local tok
	tok=$(lab_tenant_token "$1") || return 2
	shift
	LAB_CLI_TOKEN=$tok "$@"
}

# lab_cli_notoken ARGS...: the CLI with no token at all (neither --token nor DYETRACE_TOKEN).
lab_cli_notoken() {
	env -u DYETRACE_TOKEN "$LAB_BIN/dyetrace" -a "ipc://$LAB_DIR/api.sock" "$@"
}

# lab_tenant_token TENANT: the token of a tenant of the lab ("lab" or t1..tN).
lab_tenant_token() {
	case $1 in
	"$LAB_TENANT") echo "$LAB_TOKEN" ;;
	t[1-9] | t[1-9][0-9])
		if ((${1#t} > LAB_OPT_TENANTS)); then
			lab_err "no tenant $1 in this lab (--tenants $LAB_OPT_TENANTS)"
			return 1
		fi
		echo "dyetrace-lab-token-$1-0123456789abcdef"
		;;
	*)
		lab_err "no tenant $1 in this lab"
		return 1
		;;
	esac
}

# lab_tenants: the names of the extra tenants, t1..tN, one a line.
lab_tenants() {
	local k
	for ((k = 1; k <= LAB_OPT_TENANTS; k++)); do echo "t$k"; done
}

lab__ns_exists() { [[ -e /run/netns/$1 ]]; }

# True when PID is a live process (not a zombie).
lab__alive() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) }
	[[ ${s%% *} != Z ]]
}

# Seconds since the epoch with fractions, for timeouts.
lab__now() { date +%s.%N; }
lab__elapsed_lt() { # START LIMIT: true while less than LIMIT seconds passed since START
	awk -v s="$1" -v n="$(lab__now)" -v l="$2" 'BEGIN { exit !(n - s < l) }'
}

# lab_logs_tail [N]: the last N lines (default 20) of every log in the state dir.
lab_logs_tail() {
	local n=${1:-20} f
	[[ -n $LAB_DIR && -d $LAB_DIR ]] || return 0
	for f in "$LAB_DIR"/*.log; do
		[[ -e $f ]] || continue
		printf -- '----- %s (last %s lines) -----\n' "${f##*/}" "$n" >&2
		tail -n "$n" "$f" >&2
	done
}

# ---------------------------------------------------------------------------------------
# Background processes: every one runs inside a lab namespace, logs into the state dir
# and has a pid file in $LAB_DIR/pids, so that down can stop it by its id.

# lab_bg NAME NS CMD...: starts CMD in NS in the background; output to $LAB_DIR/NAME.log.
lab_bg() {
	local name=$1 ns=$2
	shift 2
	mkdir -p "$LAB_DIR/pids" || return 1
	# ip netns exec execs CMD in place, so $! is the pid of CMD itself.
	ip netns exec "$ns" "$@" </dev/null >"$LAB_DIR/$name.log" 2>&1 &
	echo $! >"$LAB_DIR/pids/$name.pid"
}

# lab_agent_nsenter NAME NS CONF: starts dyetrace-agent -c CONF in NS's network namespace
# only (nsenter, not "ip netns exec", which also gives the agent a mount namespace of its
# own: pins made there die with the agent), logging to NAME.log. Returns 0 once the agent
# says it is ready, 1 when it has not after 10 s. Its pid is lab_pid NAME.
lab_agent_nsenter() {
	local name=$1 ns=$2 conf=$3
	mkdir -p "$LAB_DIR/pids" || return 1
	nsenter --net="/run/netns/$ns" "$LAB_BIN/dyetrace-agent" -c "$conf" \
		</dev/null >"$LAB_DIR/$name.log" 2>&1 &
	echo $! >"$LAB_DIR/pids/$name.pid"
	for _ in $(seq 100); do
		grep -q DT-AGENT-READY "$LAB_DIR/$name.log" && return 0
		sleep 0.1
	done
	return 1
}

# lab_pid NAME: prints the pid of background process NAME.
lab_pid() {
	local f=$LAB_DIR/pids/$1.pid
	[[ -r $f ]] && cat "$f"
}

# lab__stop_pids WAIT PID...: SIGTERM, up to WAIT seconds, then SIGKILL. Reaps our
# children and warns about any that needed SIGKILL.
lab__stop_pids() {
	local wait=$1 pid start left
	shift
	(($# > 0)) || return 0
	for pid in "$@"; do
		lab__alive "$pid" && kill -TERM "$pid" 2>/dev/null
	done
	start=$(lab__now)
	while :; do
		left=()
		for pid in "$@"; do
			lab__alive "$pid" && left+=("$pid")
		done
		((${#left[@]} > 0)) || break
		if ! lab__elapsed_lt "$start" "$wait"; then
			for pid in "${left[@]}"; do
				lab_log "pid $pid ($(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null | cut -c1-60)) ignored SIGTERM for ${wait}s: SIGKILL"
				kill -KILL "$pid" 2>/dev/null
			done
			sleep 0.2
			break
		fi
		sleep 0.1
	done
	# Exit statuses of our own children, for lab__cleanup_prefix's report.
	local rc
	for pid in "$@"; do
		rc=0
		wait "$pid" 2>/dev/null || rc=$?
		((rc == 127)) || LAB__EXIT[$pid]=$rc # 127: not our child, status unknown
	done
	return 0
}

# lab_bg_stop NAME [WAIT]: stops background process NAME (SIGTERM, then SIGKILL after WAIT
# seconds, default 5).
lab_bg_stop() {
	local name=$1 wait=${2:-5} pid
	pid=$(lab_pid "$name") || return 0
	lab__stop_pids "$wait" "$pid"
	rm -f "$LAB_DIR/pids/$name.pid"
}

# ---------------------------------------------------------------------------------------
# Captures: tcpdump inside a namespace, into $LAB_DIR/NAME.pcap.

# lab_capture_start NAME NS IFACE FILTER: returns once tcpdump is listening.
lab_capture_start() {
	local name=$1 ns=$2 ifc=$3 filter=$4 start
	rm -f "$LAB_DIR/$name.pcap"
	# -Z root: do not drop privileges, the state dir belongs to root; -U: write each
	# packet at once so that the file is complete whenever tcpdump is stopped;
	# --immediate-mode: hand each packet to tcpdump at once (TPACKET_V3 otherwise holds
	# packets in a ring block up to a timeout, and a capture stopped within it loses them).
	lab_bg "$name" "$ns" tcpdump -i "$ifc" --immediate-mode -nn -U -Z root -w "$LAB_DIR/$name.pcap" "$filter" ||
		return 1
	start=$(lab__now)
	until grep -q 'listening on' "$LAB_DIR/$name.log" 2>/dev/null; do
		if ! lab__alive "$(lab_pid "$name")" || ! lab__elapsed_lt "$start" 10; then
			lab_err "tcpdump $name on $ns/$ifc did not start:"
			cat "$LAB_DIR/$name.log" >&2
			return 1
		fi
		sleep 0.05
	done
}

# lab_capture_stop NAME: stops the capture; the pcap file stays.
lab_capture_stop() {
	lab_bg_stop "$1" 5
}

# lab_capture_read NAME [TCPDUMP-OPTS...]: the captured packets, one line each.
lab_capture_read() {
	local name=$1
	shift
	tcpdump -nn -r "$LAB_DIR/$name.pcap" "$@" 2>/dev/null
}

# lab_capture_count NAME: how many packets were captured.
lab_capture_count() {
	lab_capture_read "$1" | wc -l
}

# ---------------------------------------------------------------------------------------
# The network

# Runs one command per line of stdin (words split on blanks, no quoting), stopping at the
# first failure with the command and its error.
lab__run_lines() {
	local -a cmd
	local out
	while read -r -a cmd; do
		((${#cmd[@]} > 0)) || continue
		[[ ${cmd[0]} == \#* ]] && continue
		if ! out=$("${cmd[@]}" </dev/null 2>&1); then
			lab_err "failed: ${cmd[*]}"
			[[ -n $out ]] && printf '%s\n' "$out" >&2
			return 1
		fi
	done
}

# lab__topology: validates the options and derives the lab's hosts and namespaces.
lab__topology() {
	case $LAB_OPT_GW in 0 | 1) ;; *)
		lab_err "DT_LAB_GW must be 0 or 1, not '$LAB_OPT_GW'"
		return 1
		;;
	esac
	case $LAB_OPT_REGIONS in 1 | 2) ;; *)
		lab_err "DT_LAB_REGIONS (--regions) must be 1 or 2, not '$LAB_OPT_REGIONS'"
		return 1
		;;
	esac
	case $LAB_OPT_UNDERLAY in veth | bridge) ;; *)
		lab_err "DT_LAB_UNDERLAY (--underlay) must be veth or bridge, not '$LAB_OPT_UNDERLAY'"
		return 1
		;;
	esac
	if [[ -n $LAB_OPT_WINDOW_MS && ! $LAB_OPT_WINDOW_MS =~ ^[0-9]+$ ]]; then
		lab_err "DT_LAB_WINDOW_MS (--window-ms) must be a number of milliseconds, not '$LAB_OPT_WINDOW_MS'"
		return 1
	fi
	case $LAB_OPT_INSTANCES in 2 | 4) ;; *)
		lab_err "DT_LAB_INSTANCES (--instances) must be 2 or 4, not '$LAB_OPT_INSTANCES'"
		return 1
		;;
	esac
	if [[ ! $LAB_OPT_TENANTS =~ ^[0-9]+$ ]] || ((LAB_OPT_TENANTS > 64)); then
		lab_err "DT_LAB_TENANTS (--tenants) must be 0..64, not '$LAB_OPT_TENANTS'"
		return 1
	fi
	if [[ ! $LAB_OPT_HOSTS =~ ^[0-9]$ ]] || ((LAB_OPT_HOSTS < 2 || LAB_OPT_HOSTS > LAB_HOSTS_MAX)); then
		lab_err "DT_LAB_HOSTS (--hosts) must be 2..$LAB_HOSTS_MAX, not '$LAB_OPT_HOSTS'"
		return 1
	fi
	case $LAB_OPT_FDB in flood | learn | unicast) ;; *)
		lab_err "DT_LAB_FDB (--fdb) must be flood, learn or unicast, not '$LAB_OPT_FDB'"
		return 1
		;;
	esac
	# Three VTEPs or more need a shared L2 segment.
	((LAB_OPT_GW || LAB_OPT_HOSTS > 2)) && LAB_OPT_UNDERLAY=bridge
	local k inst
	LAB_HOSTS=(h1 h2)
	for ((k = 3; k <= LAB_OPT_HOSTS; k++)); do LAB_HOSTS+=("h$k"); done
	((LAB_OPT_GW)) && LAB_HOSTS+=(gw)
	LAB_NAMESPACES=("$LAB_MGMT")
	for ((k = 1; k <= LAB_OPT_HOSTS; k++)); do LAB_NAMESPACES+=("$LAB_P-h$k"); done
	for inst in $(lab_instances); do LAB_NAMESPACES+=("$LAB_P-$inst"); done
	[[ $LAB_OPT_UNDERLAY == bridge ]] && LAB_NAMESPACES+=("$LAB_UL")
	((LAB_OPT_GW)) && LAB_NAMESPACES+=("$LAB_GW" "$LAB_INET")
	return 0
}

# lab_instance_hosts: the hosts with instances (h1..hN; not gw), one a line.
lab_instance_hosts() {
	local k
	for ((k = 1; k <= LAB_OPT_HOSTS; k++)); do echo "h$k"; done
}

# lab_host_ns HOST: the namespace of a host (h1..hN, gw).
lab_host_ns() { echo "$LAB_P-$1"; }

# lab_host_instance HOST: the instance behind the host's pt1 (h1 i1, h2 i2, hK iK1).
lab_host_instance() { lab_port_instance "$1" pt1; }

# Hosts that a script sourcing lab.sh adds to a running lab (test/lab/router.sh): HOST ->
# its number in addresses (4..10 are free: underlay 172.31.0.N, management 10.254.0.(10+N)),
# and HOST -> the MACs behind its VTEP (lab_host_vtep_macs). Such a host is built with
# lab__host_link_lines, lab__vxlan_lines, lab__vxlan_peer_lines, lab__write_agent_conf and
# lab_agent_start.
declare -gA LAB_EXTRA_HOST_NUM=()
declare -gA LAB_EXTRA_HOST_MACS=()
# Instances readdressed on a running lab: INSTANCE -> its address (lab_instance_ip).
declare -gA LAB_INSTANCE_IP=()

# lab__host_num HOST: the host's number in its addresses (h1 1, h2 2, gw 3, hK 10+K; an
# extra host its LAB_EXTRA_HOST_NUM).
lab__host_num() {
	case $1 in
	h1) echo 1 ;; h2) echo 2 ;; gw) echo 3 ;; h[3-9]) echo $((10 + ${1#h})) ;;
	*) [[ -n ${LAB_EXTRA_HOST_NUM[$1]:-} ]] && echo "${LAB_EXTRA_HOST_NUM[$1]}" ;;
	esac
}

# lab__hex2 N: N as two hex digits (a byte of a MAC address).
lab__hex2() { printf '%02x' "$1"; }

# lab_host_ul_ip HOST: the host's underlay address (172.31.0.1, .2, gw .3, hK .10+K).
lab_host_ul_ip() {
	case $1 in
	h1) echo "$LAB_H1_UL_IP" ;; h2) echo "$LAB_H2_UL_IP" ;; gw) echo "$LAB_GW_UL_IP" ;;
	*) echo "172.31.0.$(lab__host_num "$1")" ;;
	esac
}

# lab_host_mgmt_ip HOST: the host's management address (10.254.0.11, .12, gw .13, hK .20+K).
lab_host_mgmt_ip() {
	case $1 in
	h1) echo "$LAB_H1_MGMT_IP" ;; h2) echo "$LAB_H2_MGMT_IP" ;; gw) echo "$LAB_GW_MGMT_IP" ;;
	*) echo "10.254.0.$((10 + $(lab__host_num "$1")))" ;;
	esac
}

# lab_host_vtep_macs HOST: the MACs behind a host's VTEP that the other VTEPs send unicast
# to (its instances; the gateway's br0), one a line (for --fdb unicast).
lab_host_vtep_macs() {
	local port
	if [[ $1 == gw ]]; then
		echo "$LAB_GW_BR_MAC"
		return 0
	fi
	if [[ -n ${LAB_EXTRA_HOST_MACS[$1]:-} ]]; then
		echo "${LAB_EXTRA_HOST_MACS[$1]}"
		return 0
	fi
	for port in $(lab_host_ports "$1"); do
		lab_instance_mac "$(lab_port_instance "$1" "$port")"
	done
}

# lab__vxlan_lines HOST: the commands that create HOST's vxlan0 and its FDB (--fdb).
lab__vxlan_lines() {
	local host=$1 h=$LAB_P-$1 n local_ul peer learn=
	n=$(lab__host_num "$host")
	local_ul=$(lab_host_ul_ip "$host")
	[[ $LAB_OPT_FDB == learn ]] || learn=' nolearning'
	if [[ $LAB_OPT_UNDERLAY == veth && $LAB_OPT_FDB == learn ]]; then
		# The lab as it always was: one remote, the kernel's learning.
		[[ $host == h1 ]] && peer=$LAB_H2_UL_IP || peer=$LAB_H1_UL_IP
		echo "ip -n $h link add vxlan0 address 02:00:00:00:$(lab__hex2 "$n"):02 type vxlan id $LAB_VNI local $local_ul remote $peer dstport 4789 dev ul0"
		return 0
	fi
	echo "ip -n $h link add vxlan0 address 02:00:00:00:$(lab__hex2 "$n"):02 type vxlan id $LAB_VNI local $local_ul dstport 4789 dev ul0$learn"
	for peer in "${LAB_HOSTS[@]}"; do
		[[ $peer == "$host" ]] && continue
		lab__vxlan_peer_lines "$host" "$peer"
	done
}

# lab__vxlan_peer_lines HOST PEER: the FDB entries of HOST's vxlan0 for the VTEP of PEER.
lab__vxlan_peer_lines() {
	local h=$LAB_P-$1 peer=$2 mac
	# broadcast and unknown unicast (all of it with --fdb flood): one copy per VTEP
	echo "bridge -n $h fdb append 00:00:00:00:00:00 dev vxlan0 dst $(lab_host_ul_ip "$peer")"
	[[ $LAB_OPT_FDB == unicast ]] || return 0
	for mac in $(lab_host_vtep_macs "$peer"); do
		echo "bridge -n $h fdb add $mac dev vxlan0 dst $(lab_host_ul_ip "$peer") static"
	done
}

# lab__host_ul_lines HOST: the commands that join HOST to the underlay bridge (ul0, with
# its underlay address; --underlay bridge).
lab__host_ul_lines() {
	local host=$1 h=$LAB_P-$1 n
	n=$(lab__hex2 "$(lab__host_num "$host")")
	cat <<-EOF
		ip -n $h link add ul0 address 02:00:ac:1f:00:$n type veth peer name ul-$host address 02:00:ac:1f:01:$n netns $LAB_UL
		ip -n $LAB_UL link set ul-$host master ulbr0
		ip -n $LAB_UL link set ul-$host up
		ip -n $h addr add $(lab_host_ul_ip "$host")/24 dev ul0
		ip -n $h link set ul0 up
	EOF
}

# lab__host_mgmt_lines HOST: the commands that join HOST to the management network (mg0).
lab__host_mgmt_lines() {
	local host=$1 h=$LAB_P-$1 n
	n=$(lab__hex2 "$(lab__host_num "$host")")
	cat <<-EOF
		# host $host: management veth
		ip -n $h link add mg0 address 02:00:0a:fe:00:$(lab__hex2 $((0x10 + 0x$n))) type veth peer name mg-$host netns $LAB_MGMT
		ip -n $LAB_MGMT link set mg-$host master mgbr0
		ip -n $LAB_MGMT link set mg-$host up
		ip -n $h addr add $(lab_host_mgmt_ip "$host")/24 dev mg0
		ip -n $h link set mg0 up
	EOF
}

# The commands that build the network, one a line (for lab__run_lines).
lab__net_lines() {
	local ns h n host ipaddr mac port inst
	for ns in "${LAB_NAMESPACES[@]}"; do
		echo "ip netns add $ns"
	done
	for ns in "${LAB_NAMESPACES[@]}"; do
		# No IPv6: keeps router solicitations and MLD out of the captures.
		echo "ip netns exec $ns sysctl -e -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1"
		echo "ip -n $ns link set lo up"
	done
	cat <<-EOF
		# management network: a bridge in mgmt, one veth per host into it
		ip -n $LAB_MGMT link add mgbr0 address $LAB_MGMT_BR_MAC type bridge
		ip -n $LAB_MGMT addr add $LAB_MGMT_IP/24 dev mgbr0
		ip -n $LAB_MGMT link set mgbr0 up
	EOF
	if [[ $LAB_OPT_UNDERLAY == veth ]]; then
		cat <<-EOF
			# underlay: one veth between the hosts
			ip -n $LAB_H1 link add ul0 address 02:00:ac:1f:00:01 type veth peer name ul0 address 02:00:ac:1f:00:02 netns $LAB_H2
			ip -n $LAB_H1 addr add $LAB_H1_UL_IP/24 dev ul0
			ip -n $LAB_H2 addr add $LAB_H2_UL_IP/24 dev ul0
			ip -n $LAB_H1 link set ul0 up
			ip -n $LAB_H2 link set ul0 up
		EOF
	else
		cat <<-EOF
			# underlay: an L2 segment, a bridge in $LAB_UL with one veth per host
			ip -n $LAB_UL link add ulbr0 type bridge
			ip -n $LAB_UL link set ulbr0 up
		EOF
		for host in "${LAB_HOSTS[@]}"; do
			lab__host_ul_lines "$host"
		done
	fi
	for host in "${LAB_HOSTS[@]}"; do
		h=$LAB_P-$host n=$(lab__hex2 "$(lab__host_num "$host")")
		lab__host_mgmt_lines "$host"
		# host: VXLAN over the underlay (its FDB by --fdb), a bridge joining it with the
		# ports (or, on gw, with the gateway's overlay address)
		lab__vxlan_lines "$host"
		if [[ $host == gw ]]; then
			cat <<-EOF
				ip -n $h link add br0 address $LAB_GW_BR_MAC type bridge
				ip -n $h link set vxlan0 master br0
				ip -n $h addr add $LAB_GW_IP/24 dev br0
				ip -n $h link set vxlan0 up
				ip -n $h link set br0 up
				ip netns exec $h sysctl -q -w net.ipv4.ip_forward=1
				# the outside: ext0 into the internet namespace
				ip -n $h link add ext0 address 02:00:cb:00:71:01 type veth peer name eth0 address 02:00:cb:00:71:0a netns $LAB_INET
				ip -n $h addr add $LAB_GW_EXT_IP/24 dev ext0
				ip -n $h link set ext0 up
				ip -n $LAB_INET addr add $LAB_INET_IP/24 dev eth0
				ip -n $LAB_INET link set eth0 up
			EOF
			continue
		fi
		cat <<-EOF
			ip -n $h link add br0 type bridge
			ip -n $h link set vxlan0 master br0
			ip -n $h link set vxlan0 up
			ip -n $h link set br0 up
		EOF
		# the ports: pt1 (i1 on h1, i2 on h2, iK1 on hK), with --instances 4 also pt2 (i3 on
		# h1, i4 on h2, iK2 on hK)
		for port in $(lab_host_ports "$host"); do
			inst=$(lab_port_instance "$host" "$port")
			ipaddr=$(lab_instance_ip "$inst") mac=$(lab_instance_mac "$inst")
			cat <<-EOF
				ip -n $h link add $port address 02:00:00:00:$n:0${port#pt} type veth peer name eth0 address $mac netns $LAB_P-$inst
				ip -n $h link set $port mtu $LAB_MTU
				ip -n $h link set $port master br0
				ip -n $h link set $port up
				# instance $inst
				ip -n $LAB_P-$inst link set eth0 mtu $LAB_MTU
				ip -n $LAB_P-$inst addr add $ipaddr/24 dev eth0
				ip -n $LAB_P-$inst link set eth0 up
			EOF
			((LAB_OPT_GW)) && echo "ip -n $LAB_P-$inst route add default via $LAB_GW_IP"
		done
	done
	return 0
}

# lab_host_ports HOST: the ports of an instance host (pt1, and pt2 with --instances 4).
lab_host_ports() {
	case $1 in
	h[1-9]) if ((LAB_OPT_INSTANCES == 4)); then echo pt1 pt2; else echo pt1; fi ;;
	esac
}

# lab_port_instance HOST PORT: the instance behind a port (i1..i4; iKP behind hK's ptP).
lab_port_instance() {
	case $1/$2 in
	h1/pt1) echo i1 ;; h2/pt1) echo i2 ;; h1/pt2) echo i3 ;; h2/pt2) echo i4 ;;
	h[3-9]/pt[12]) echo "i${1#h}${2#pt}" ;;
	esac
}

# lab_instance_ip INSTANCE: i1..i4 -> 10.100.0.1..4, iKP -> 10.100.0.KP (or the address
# LAB_INSTANCE_IP gives a readdressed instance); lab_instance_mac:
# 02:00:0a:64:00 and the address's last byte; lab_instance_host INSTANCE: h1, h2 or hK;
# lab_instance_ns INSTANCE: its namespace.
lab_instance_ip() { echo "${LAB_INSTANCE_IP[$1]:-10.100.0.${1#i}}"; }
lab_instance_mac() { echo "02:00:0a:64:00:$(lab__hex2 "${1#i}")"; }
lab_instance_host() {
	case $1 in i1 | i3) echo h1 ;; i2 | i4) echo h2 ;; i[3-9][12]) echo "h${1:1:1}" ;; esac
}
lab_instance_ns() { echo "$LAB_P-$1"; }

# lab_instances: the lab's instances, i1 i2 (and i3 i4 with --instances 4), then iK1 (and
# iK2) for every host hK from h3 on.
lab_instances() {
	local k out=(i1 i2)
	((LAB_OPT_INSTANCES == 4)) && out+=(i3 i4)
	for ((k = 3; k <= LAB_OPT_HOSTS; k++)); do
		out+=("i${k}1")
		((LAB_OPT_INSTANCES == 4)) && out+=("i${k}2")
	done
	echo "${out[*]}"
}

# lab_static_neighbours INSTANCE INSTANCE: each instance gets a permanent ARP entry for
# the other (no ARP crosses the overlay between them afterwards).
lab_static_neighbours() {
	ip -n "$LAB_P-$1" neigh replace "$(lab_instance_ip "$2")" lladdr "$(lab_instance_mac "$2")" \
		dev eth0 nud permanent &&
		ip -n "$LAB_P-$2" neigh replace "$(lab_instance_ip "$1")" lladdr "$(lab_instance_mac "$1")" \
			dev eth0 nud permanent
}

# lab__ping NS DST WHAT: NS reaches DST (up to 10 tries of a second).
lab__ping() {
	local try
	for ((try = 0; try < 10; try++)); do
		lab_in "$1" ping -c 1 -W 1 -q "$2" >/dev/null 2>&1 && return 0
	done
	lab_err "$3: $1 cannot ping $2"
	return 1
}

# lab_net_up: the namespaces, the management network, the underlay, VXLAN and bridges
# (and, with --gw, the gateway, its NAT and the internet namespace).
lab_net_up() {
	lab__topology || return 1
	lab__net_lines | lab__run_lines || return 1
	# The pipeline above runs lab__run_lines in a subshell; its status is the pipeline's.

	if ((LAB_OPT_GW)); then
		# Masquerade everything that leaves for the internet.
		if ! lab_in "$LAB_GW" nft -f - <<-EOF; then
			table ip dtlab_nat {
				chain postrouting {
					type nat hook postrouting priority srcnat; policy accept;
					oifname "ext0" masquerade
				}
			}
		EOF
			lab_err "cannot load the masquerade rule on $LAB_GW"
			return 1
		fi
	fi

	# The overlay must carry traffic before anything else starts.
	lab__ping "$LAB_I1" "$LAB_I2_IP" "overlay (VXLAN $LAB_VNI)" || return 1
	lab_log "overlay up: $LAB_I1 ($LAB_I1_IP) reaches $LAB_I2 ($LAB_I2_IP) over VXLAN $LAB_VNI ($LAB_OPT_UNDERLAY underlay, fdb $LAB_OPT_FDB)"
	if ((LAB_OPT_HOSTS > 2)); then
		local inst reached=()
		for inst in $(lab_instances); do
			[[ $inst == i[1-4] ]] && continue
			lab__ping "$LAB_I1" "$(lab_instance_ip "$inst")" "overlay to $(lab_instance_host "$inst")" || return 1
			reached+=("$inst ($(lab_instance_ip "$inst"), $(lab_instance_host "$inst"))")
		done
		lab_log "hosts h3..h$LAB_OPT_HOSTS up: $LAB_I1 reaches $(printf '%s, ' "${reached[@]}" | sed 's/, $//')"
	fi
	if ((LAB_OPT_INSTANCES == 4)); then
		lab__ping "$LAB_I3" "$LAB_I4_IP" "overlay (VXLAN $LAB_VNI), second ports" || return 1
		lab__ping "$LAB_I3" "$LAB_I1_IP" "bridge of h1 (pt2 to pt1)" || return 1
		lab__ping "$LAB_I4" "$LAB_I2_IP" "bridge of h2 (pt2 to pt1)" || return 1
		lab_log "second ports up: $LAB_I3 ($LAB_I3_IP, h1) and $LAB_I4 ($LAB_I4_IP, h2)"
	fi
	if ((LAB_OPT_GW)); then
		lab__ping "$LAB_I1" "$LAB_GW_IP" "overlay to the gateway" || return 1
		lab__ping "$LAB_I2" "$LAB_GW_IP" "overlay to the gateway" || return 1
		lab__ping "$LAB_I1" "$LAB_INET_IP" "through the gateway's NAT" || return 1
		lab_log "gateway up: $LAB_I1 and $LAB_I2 reach $LAB_GW ($LAB_GW_IP), $LAB_I1 reaches $LAB_INET ($LAB_INET_IP) through the NAT"
	fi
	return 0
}

# lab__mgmt_check: every host reaches the management address (where the collectors listen).
lab__mgmt_check() {
	local host
	for host in "${LAB_HOSTS[@]}"; do
		if ! lab_in "$LAB_P-$host" ping -c 1 -W 2 -q "$LAB_MGMT_IP" >/dev/null 2>&1; then
			lab_err "$LAB_P-$host cannot reach the management network ($LAB_MGMT_IP)"
			return 1
		fi
	done
}

# lab_inet_up: the servers in the internet namespace (--gw): TCP and UDP echo on
# $LAB_INET_ECHO_PORT and a tiny HTTP server on $LAB_INET_HTTP_PORT. Ping is the kernel's.
lab_inet_up() {
	cat >"$LAB_DIR/inet-http.sh" <<-'EOF'
		#!/bin/sh
		# One HTTP exchange on stdin/stdout: read the request head, answer 200.
		while IFS= read -r line; do
			[ -z "$(printf '%s' "$line" | tr -d '\r')" ] && break
		done
		printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nhello from the internet namespace\n'
	EOF
	lab_bg inet-tcp-echo "$LAB_INET" socat -T 5 "TCP-LISTEN:$LAB_INET_ECHO_PORT,reuseaddr,fork" PIPE || return 1
	lab_bg inet-udp-echo "$LAB_INET" socat -T 2 "UDP-RECVFROM:$LAB_INET_ECHO_PORT,reuseaddr,fork" PIPE || return 1
	lab_bg inet-http "$LAB_INET" socat -T 5 "TCP-LISTEN:$LAB_INET_HTTP_PORT,reuseaddr,fork" \
		"SYSTEM:sh $LAB_DIR/inet-http.sh" || return 1
	lab_wait_listen "$LAB_INET" "$LAB_INET_ECHO_PORT" || return 1
	lab_wait_listen "$LAB_INET" "$LAB_INET_HTTP_PORT" || return 1
}

# ---------------------------------------------------------------------------------------
# The daemons

# lab_metrics_port DAEMON: the metrics port of analyzer, collector, collector-c2 or
# agent-HOST (on 127.0.0.1 in the daemon's own namespace).
lab_metrics_port() {
	case $1 in
	agent-*) echo 9101 ;;
	collector) echo 9102 ;;
	analyzer) echo 9103 ;;
	collector-c2) echo 9104 ;;
	*)
		lab_err "no daemon $1 (analyzer, collector, collector-c2, agent-HOST)"
		return 1
		;;
	esac
}

# lab_metrics_ns DAEMON: the namespace a daemon runs in.
lab_metrics_ns() {
	case $1 in agent-*) echo "$LAB_P-${1#agent-}" ;; *) echo "$LAB_MGMT" ;; esac
}

# lab__metrics_on: true when the daemons serve metrics (DT_LAB_METRICS, see the header).
lab__metrics_on() {
	[[ $LAB_OPT_METRICS == 1 ]]
}

# lab_metrics_url DAEMON: the URL of a daemon's metrics page, to fetch inside its namespace
# (ip netns exec "$(lab_metrics_ns DAEMON)" curl ...). Fails when metrics are off.
lab_metrics_url() {
	local port
	port=$(lab_metrics_port "$1") || return 1
	if ! lab__metrics_on; then
		lab_err "metrics are off in this lab (DT_LAB_METRICS=$LAB_OPT_METRICS)"
		return 1
	fi
	echo "http://127.0.0.1:$port/metrics"
}

# lab_metrics_scrape DAEMON: prints the daemon's metrics page (Prometheus text format).
lab_metrics_scrape() {
	local url
	url=$(lab_metrics_url "$1") || return 1
	lab_in "$(lab_metrics_ns "$1")" curl -sSf --max-time 10 "$url"
}

# lab_metric DAEMON NAME: the value of the unlabelled metric NAME on DAEMON's page (empty
# when it has none).
lab_metric() {
	lab_metrics_scrape "$1" 2>/dev/null | awk -v n="$2" '$1 == n { print $2; exit }'
}

# lab__metrics_line DAEMON: the daemon's "metrics" setting, when metrics are on.
lab__metrics_line() {
	lab__metrics_on || return 0
	echo "metrics = \"http://127.0.0.1:$(lab_metrics_port "$1")\";   # lab_metrics_url $1"
}

# lab_tls_cert NAME [--ca CA] [--expired] [--as FILE]: a key and a certificate for NAME
# (CN and DNS SAN) in $LAB_DIR/tls as NAME.pem and NAME.key (FILE.pem, FILE.key with --as),
# signed by CA (default "ca"; another name makes that CA first, one no daemon trusts),
# valid for a day, or expired yesterday with --expired.
lab_tls_cert() {
	local name=$1 ca=ca days=1 d=$LAB_DIR/tls file=$1
	shift
	while (($# > 0)); do
		case $1 in
		--ca)
			ca=$2
			shift
			;;
		--as)
			file=$2
			shift
			;;
		--expired) days=-1 ;;
		*)
			lab_err "lab_tls_cert: unknown option '$1'"
			return 1
			;;
		esac
		shift
	done
	mkdir -p "$d" || return 1
	if [[ ! -f $d/$ca.pem ]]; then
		openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/$ca.key" -out "$d/$ca.pem" \
			-days 2 -subj "/CN=dyetrace-lab-$ca" >/dev/null 2>&1 || {
			lab_err "openssl: cannot make the CA $ca"
			return 1
		}
	fi
	printf 'subjectAltName=DNS:%s\n' "$name" >"$d/$file.ext"
	openssl req -newkey rsa:2048 -nodes -keyout "$d/$file.key" -out "$d/$file.csr" \
		-subj "/CN=$name" >/dev/null 2>&1 &&
		openssl x509 -req -in "$d/$file.csr" -CA "$d/$ca.pem" -CAkey "$d/$ca.key" \
			-CAcreateserial -out "$d/$file.pem" -days "$days" -extfile "$d/$file.ext" \
			>/dev/null 2>&1 || {
		lab_err "openssl: cannot make the certificate of $name"
		return 1
	}
}

# lab__tls_up: --tls: certificates for every daemon, and tls+tcp:// URLs.
lab__tls_up() {
	local name
	command -v openssl >/dev/null || {
		lab_err "missing tool: openssl (run packaging/setup.sh deps)"
		return 1
	}
	for name in analyzer c1 c2 "${LAB_HOSTS[@]}"; do
		lab_tls_cert "$name" || return 1
	done
	LAB_COLLECTOR_URL=${LAB_COLLECTOR_URL/#tcp:/tls+tcp:}
	LAB_COLLECTOR2_URL=${LAB_COLLECTOR2_URL/#tcp:/tls+tcp:}
	LAB_ANALYZER_URL=${LAB_ANALYZER_URL/#tcp:/tls+tcp:}
	lab_log "mutual TLS on every link (certificates in $LAB_DIR/tls)"
}

# lab__tls_line NAME [SERVER_NAME]: with --tls, the tls group of a daemon whose certificate
# is NAME's (and which dials SERVER_NAME).
lab__tls_line() {
	((LAB_OPT_TLS)) || return 0
	local d=$LAB_DIR/tls
	printf 'tls = { ca = "%s"; cert = "%s"; key = "%s";%s };\n' "$d/ca.pem" "$d/$1.pem" \
		"$d/$1.key" "${2:+ server_name = \"$2\";}"
}

# lab__url_collector_name URL: the name of the collector listening on URL (c1 or c2).
lab__url_collector_name() {
	[[ $1 == "$LAB_COLLECTOR2_URL" ]] && echo c2 || echo c1
}

lab__write_configs() {
	local host t
	{
		echo "# dyetrace-analyzer, written by test/lab/lab.sh"
		echo "listen = \"$LAB_ANALYZER_URL\";   # collectors connect here"
		echo "api = \"ipc://$LAB_DIR/api.sock\";   # the CLI connects here"
		[[ -n $LAB_OPT_WINDOW_MS ]] && echo "window_ms = $LAB_OPT_WINDOW_MS;   # analysis window (DT_LAB_WINDOW_MS)"
		echo "store = \"$LAB_DIR/analyzer-store\";   # tasks and reports (LMDB)"
		echo "tenants = ("
		printf '\t{ name = "%s"; token = "%s"; }' "$LAB_TENANT" "$LAB_TOKEN"
		for t in $(lab_tenants); do
			printf ',\n\t{ name = "%s"; token = "%s"; }' "$t" "$(lab_tenant_token "$t")"
		done
		printf '\n);\n'
		echo "limits = { ${LAB_OPT_LIMITS:-$LAB_LIMITS_DEFAULT} };"
		lab__metrics_line analyzer
		lab__tls_line analyzer
		[[ -n ${DT_LAB_ANALYZER_EXTRA:-} ]] && printf '%s\n' "$DT_LAB_ANALYZER_EXTRA"
	} >"$LAB_DIR/analyzer.conf"
	mkdir -p "$LAB_DIR/analyzer-store"
	cat >"$LAB_DIR/collector.conf" <<-EOF
		# dyetrace-collector, written by test/lab/lab.sh
		name = "c1";
		listen = "$LAB_COLLECTOR_URL";   # agents connect here
		analyzer = "$LAB_ANALYZER_URL";
		store = "$LAB_DIR/collector-c1";
		$(lab__metrics_line collector)
		$(lab__tls_line c1 analyzer)
	EOF
	mkdir -p "$LAB_DIR/collector-c1"
	if ((LAB_OPT_REGIONS == 2)); then
		cat >"$LAB_DIR/collector-c2.conf" <<-EOF
			# dyetrace-collector of region 2, written by test/lab/lab.sh
			name = "c2";
			listen = "$LAB_COLLECTOR2_URL";   # agents of region 2 connect here
			analyzer = "$LAB_ANALYZER_URL";
			store = "$LAB_DIR/collector-c2";
			$(lab__metrics_line collector-c2)
			$(lab__tls_line c2 analyzer)
		EOF
		mkdir -p "$LAB_DIR/collector-c2"
	fi
	for host in "${LAB_HOSTS[@]}"; do
		lab__write_agent_conf "$host"
	done
}

# lab__write_agent_conf HOST: $LAB_DIR/HOST.conf, the configuration of HOST's agent: its
# ports (with their instances' addresses) and ul0 as uplink; on gw ext0 as gateway.
lab__write_agent_conf() {
	local host=$1 url port
	url=$(lab_host_collector_url "$host")
	{
		echo "# dyetrace-agent for host $host, written by test/lab/lab.sh"
		echo "node = \"$host\";"
		echo "collector = \"$url\";"
		echo "spool_dir = \"$LAB_DIR/spool-$host\";   # batches the collector did not take yet"
		lab__metrics_line "agent-$host"
		lab__tls_line "$host" "$(lab__url_collector_name "$url")"
		echo "interfaces = ("
		if [[ $host == gw ]]; then
			echo "	{ name = \"ul0\"; role = \"uplink\"; },"
			echo "	{ name = \"ext0\"; role = \"gateway\"; vni = $LAB_VNI; }"
		else
			for port in $(lab_host_ports "$host"); do
				echo "	{ name = \"$port\"; role = \"port\"; vni = $LAB_VNI;"
				echo "	  instances = [ \"$(lab_instance_ip "$(lab_port_instance "$host" "$port")")\" ]; },"
			done
			echo "	{ name = \"ul0\"; role = \"uplink\"; }"
		fi
		echo ");"
	} >"$LAB_DIR/$host.conf"
}

# lab_agent_start HOST: starts HOST's agent (its configuration written) and waits until
# it is ready (a restart after lab_bg_stop agent-HOST, or a host added to a running lab).
lab_agent_start() {
	lab_bg "agent-$1" "$LAB_P-$1" "$LAB_BIN/dyetrace-agent" -c "$LAB_DIR/$1.conf" || return 1
	lab__wait "agent-$1" "DT-AGENT-READY in agent-$1.log" lab__agent_ready "agent-$1" || return 1
	lab_log "agent $1 ready (pid $(lab_pid "agent-$1"))"
}

# lab_host_collector_url HOST: the collector HOST's agent reports to (h2, h4, ... to c2
# with --regions 2, everything else to c1).
lab_host_collector_url() {
	if [[ $1 == h[2468] ]] && ((LAB_OPT_REGIONS == 2)); then
		echo "$LAB_COLLECTOR2_URL"
	else
		echo "$LAB_COLLECTOR_URL"
	fi
}

# Fails (with the log) when daemon NAME has exited.
lab__check_running() {
	local name=$1 pid
	pid=$(lab_pid "$name")
	if [[ -z $pid ]] || ! lab__alive "$pid"; then
		local rc=0
		[[ -n $pid ]] && { wait "$pid" 2>/dev/null || rc=$?; }
		lab_err "$name exited during start-up (status $rc); its log $LAB_DIR/$name.log:"
		tail -n 30 "$LAB_DIR/$name.log" >&2
		return 1
	fi
}

# lab__wait NAME WHAT CMD...: polls CMD until it succeeds, while NAME runs, for
# LAB_TIMEOUT seconds.
lab__wait() {
	local name=$1 what=$2 start
	shift 2
	start=$(lab__now)
	until "$@" >/dev/null 2>&1; do
		lab__check_running "$name" || return 1
		if ! lab__elapsed_lt "$start" "$LAB_TIMEOUT"; then
			lab_err "timed out after ${LAB_TIMEOUT}s waiting for $name: $what"
			lab_logs_tail 20
			return 1
		fi
		sleep 0.1
	done
}

lab__tcp_listening() { # NS PORT
	[[ -n $(ip netns exec "$1" ss -Htln "sport = :$2" 2>/dev/null) ]]
}

# lab_wait_listen NS PORT [TIMEOUT]: waits until something listens on TCP PORT in NS.
lab_wait_listen() {
	local start
	start=$(lab__now)
	until lab__tcp_listening "$1" "$2"; do
		if ! lab__elapsed_lt "$start" "${3:-10}"; then
			lab_err "nothing listens on TCP port $2 in $1"
			return 1
		fi
		sleep 0.05
	done
}

# The API answers when a request for a task that does not exist gets the analyzer's
# answer: a task (exit 0) or "not found" (exit 3); not "unreachable" (exit 5) or a hang.
lab__api_answers() {
	local rc=0
	[[ -S $LAB_DIR/api.sock ]] || return 1
	timeout 5 env DYETRACE_TOKEN="$LAB_TOKEN" "$LAB_BIN/dyetrace" -a "ipc://$LAB_DIR/api.sock" \
		-t 2000 task show 999999 >/dev/null 2>&1 || rc=$?
	((rc == 0 || rc == 3))
}

lab__agent_ready() { grep -q 'DT-AGENT-READY' "$LAB_DIR/$1.log" 2>/dev/null; }

# The daemons and the CLI must be there before anything is built.
lab__check_bins() {
	local b missing=()
	for b in dyetrace-analyzer dyetrace-collector dyetrace-agent dyetrace; do
		[[ -x $LAB_BIN/$b ]] || missing+=("$b")
	done
	if ((${#missing[@]} > 0)); then
		lab_err "missing in $LAB_BIN: ${missing[*]}"
		lab_err "build first (packaging/setup.sh build), or point DT_BIN at the binaries"
		return 1
	fi
}

# lab_analyzer_start: starts the analyzer (with the configuration written at lab_up) and
# waits until it listens for collectors and answers the API. A log of an earlier run is
# kept as analyzer.N.log (N = 1, 2, ...).
lab_analyzer_start() {
	local n=1
	if [[ -e $LAB_DIR/analyzer.log ]]; then
		while [[ -e $LAB_DIR/analyzer.$n.log ]]; do n=$((n + 1)); done
		mv "$LAB_DIR/analyzer.log" "$LAB_DIR/analyzer.$n.log"
	fi
	lab_bg analyzer "$LAB_MGMT" "$LAB_BIN/dyetrace-analyzer" -c "$LAB_DIR/analyzer.conf" || return 1
	lab__wait analyzer "collector endpoint $LAB_ANALYZER_URL" lab__tcp_listening "$LAB_MGMT" 7401 || return 1
	lab__wait analyzer "API ipc://$LAB_DIR/api.sock" lab__api_answers || return 1
	lab_log "analyzer ready (pid $(lab_pid analyzer))"
}

# lab_analyzer_stop [TERM|KILL]: stops the analyzer. TERM (the default): SIGTERM, and
# fails unless it exits with status 0 within 10 s; KILL: SIGKILL at once (a crash).
# LAB_ANALYZER_RC is its exit status. Call it (and lab_analyzer_start) from the shell
# that called lab_up, not in a $(...) or a pipeline: only the parent learns a child's
# exit status (elsewhere a clean exit is told by the analyzer's DT-ANA-EXIT log line).
# lab__backtrace PID: every thread's stack of a hung daemon (PID: ip netns exec's child),
# when gdb is there; for the log of a failed test.
lab__backtrace() {
	local pid=$1 child
	command -v gdb >/dev/null || return 0
	child=$(pgrep -P "$pid" | head -n1)
	lab_err "threads of pid ${child:-$pid}:"
	# the main thread in full, then every thread's frames that are ours or libc's waits
	timeout 20 gdb -p "${child:-$pid}" -batch -ex 'thread apply 1 bt' -ex 'thread apply all bt' \
		2>/dev/null | grep -E '^(Thread|#)' | grep -v ' in ?? ()' | head -n 150
}

lab_analyzer_stop() {
	local sig=${1:-TERM} pid start
	LAB_ANALYZER_RC=
	pid=$(lab_pid analyzer) || {
		lab_err "the analyzer is not running"
		return 1
	}
	kill -"$sig" "$pid" 2>/dev/null || {
		lab_err "cannot signal the analyzer (pid $pid)"
		return 1
	}
	start=$(lab__now)
	while lab__alive "$pid"; do
		if ! lab__elapsed_lt "$start" 10; then
			lab_err "the analyzer (pid $pid) ignored SIG$sig for 10 s: SIGKILL; its log ends:"
			tail -n 10 "$LAB_DIR/analyzer.log" >&2
			lab__backtrace "$pid" >&2
			kill -KILL "$pid" 2>/dev/null
			sleep 0.2
			break
		fi
		sleep 0.05
	done
	LAB_ANALYZER_RC=0
	wait "$pid" 2>/dev/null || LAB_ANALYZER_RC=$?
	if [[ $LAB_ANALYZER_RC == 127 || $LAB_ANALYZER_RC == 255 ]]; then
		# not our child: its status is unknown; a clean exit logs DT-ANA-EXIT
		if grep -q 'DT-ANA-EXIT' "$LAB_DIR/analyzer.log"; then LAB_ANALYZER_RC=0; else LAB_ANALYZER_RC=unknown; fi
	fi
	rm -f "$LAB_DIR/pids/analyzer.pid"
	if [[ $sig == TERM && $LAB_ANALYZER_RC != 0 ]]; then
		lab_err "the analyzer exited with status $LAB_ANALYZER_RC on SIGTERM; its log ends:"
		tail -n 10 "$LAB_DIR/analyzer.log" >&2
		return 1
	fi
	return 0
}

# lab_analyzer_restart [TERM|KILL]: lab_analyzer_stop, then lab_analyzer_start.
lab_analyzer_restart() {
	local rc=0
	lab_analyzer_stop "${1:-TERM}" || rc=1
	lab_analyzer_start || return 1
	return $rc
}

lab_daemons_up() {
	lab__check_bins || return 1
	if ((${#LAB_DIR} + 16 > 107)); then
		lab_err "state dir path too long for an ipc:// socket: $LAB_DIR"
		return 1
	fi
	lab__write_configs || return 1

	lab_analyzer_start || return 1

	lab_bg collector "$LAB_MGMT" "$LAB_BIN/dyetrace-collector" -c "$LAB_DIR/collector.conf" || return 1
	lab__wait collector "agent endpoint $LAB_COLLECTOR_URL" lab__tcp_listening "$LAB_MGMT" 7400 || return 1
	if lab__metrics_on; then
		lab__wait collector "metrics" lab__tcp_listening "$LAB_MGMT" "$(lab_metrics_port collector)" || return 1
	fi
	lab_log "collector ready (pid $(lab_pid collector))"

	if ((LAB_OPT_REGIONS == 2)); then
		lab_bg collector-c2 "$LAB_MGMT" "$LAB_BIN/dyetrace-collector" -c "$LAB_DIR/collector-c2.conf" || return 1
		lab__wait collector-c2 "agent endpoint $LAB_COLLECTOR2_URL" lab__tcp_listening "$LAB_MGMT" 7402 || return 1
		if lab__metrics_on; then
			lab__wait collector-c2 "metrics" lab__tcp_listening "$LAB_MGMT" "$(lab_metrics_port collector-c2)" || return 1
		fi
		lab_log "collector c2 (region 2) ready (pid $(lab_pid collector-c2))"
	fi

	local host ready=()
	for host in "${LAB_HOSTS[@]}"; do
		lab_bg "agent-$host" "$LAB_P-$host" "$LAB_BIN/dyetrace-agent" -c "$LAB_DIR/$host.conf" || return 1
	done
	for host in "${LAB_HOSTS[@]}"; do
		lab__wait "agent-$host" "DT-AGENT-READY in agent-$host.log" lab__agent_ready "agent-$host" || return 1
		ready+=("$host pid $(lab_pid "agent-$host")")
	done
	lab_log "agents ready ($(printf '%s, ' "${ready[@]}" | sed 's/, $//'))"
}

# ---------------------------------------------------------------------------------------
# Traffic

# lab_udp_send NS GAP_MS FLOW...: sends UDP datagrams from namespace NS, one socket per
# flow, FLOW = SPORT:DST:DPORT:COUNT. Round by round, one datagram of every flow that has
# some left, GAP_MS milliseconds between rounds. Every payload starts with its number in
# the flow (4 digits: the UDP ident differs per datagram). Unconnected sockets: an ICMP
# "port unreachable" from a destination without a listener does not stop the sending.
# Prints how many datagrams were sent; fails when one could not be.
lab_udp_send() {
	local ns=$1 gap=$2
	shift 2
	# shellcheck disable=SC2016 # a perl program
	lab_in "$ns" perl -MIO::Socket::INET -MSocket -MTime::HiRes=usleep -e '
		my $gap = shift @ARGV;
		my (@f, $max, $sent);
		for (@ARGV) {
			my ($sp, $d, $dp, $n) = split /:/;
			my $s = IO::Socket::INET->new(Proto => "udp", LocalPort => $sp, ReuseAddr => 1)
				or die "lab_udp_send: bind :$sp: $!\n";
			push @f, [$s, pack_sockaddr_in($dp, inet_aton($d)), $n, "$sp>$d:$dp"];
			$max = $n if !defined $max || $n > $max;
		}
		for my $i (1 .. ($max // 0)) {
			for (@f) {
				next if $i > $_->[2];
				defined(send($_->[0], sprintf("%04d dyetrace %s", $i, $_->[3]), 0, $_->[1]))
					or die "lab_udp_send: $_->[3]: $!\n";
				$sent++;
			}
			usleep($gap * 1000) if $gap && $i < $max;
		}
		print(($sent // 0), "\n");
	' "$gap" "$@"
}

# lab_tcp_echo NS SPORT DST DPORT MSG: one TCP exchange from NS (source port SPORT) with
# an echo server at DST:DPORT; prints what came back.
lab_tcp_echo() {
	printf '%s\n' "$5" | lab_in "$1" timeout 10 socat -t 1 - \
		"TCP:$3:$4,sourceport=$2,reuseaddr" 2>&1
}

# ---------------------------------------------------------------------------------------
# Tasks

# lab_task_create ARGS...: creates a task (dyetrace task create ARGS) and prints its id.
lab_task_create() {
	local out id
	out=$(lab_cli --json task create "$@") || {
		lab_err "task create $* failed: $out"
		return 1
	}
	id=$(jq -er '.id' <<<"$out" 2>/dev/null) || {
		lab_err "task create $*: no id in: $out"
		return 1
	}
	echo "$id"
}

# lab_task_field ID JQ-FILTER: one field of the task, e.g. lab_task_field 3 .colored
lab_task_field() {
	lab_cli --json task show "$1" | jq -r "$2"
}

# lab_task_wait_armed ID [TIMEOUT]: waits until the task is armed (or running).
lab_task_wait_armed() {
	local id=$1 limit=${2:-$LAB_TIMEOUT} start state=
	start=$(lab__now)
	while :; do
		state=$(lab_task_field "$id" .state 2>/dev/null) || state=
		case $state in
		armed | running) return 0 ;;
		failed | expired | cancelled | done)
			lab_err "task $id is $state, it will never be armed"
			return 1
			;;
		esac
		if ! lab__elapsed_lt "$start" "$limit"; then
			lab_err "task $id not armed after ${limit}s (state '${state:-?}')"
			lab_logs_tail 15
			return 1
		fi
		sleep 0.1
	done
}

# lab_task_wait_ended ID [TIMEOUT]: waits until the task is in a terminal state (done,
# expired, cancelled, failed) and prints it. Returns 1 on timeout (printing the last state).
lab_task_wait_ended() {
	local id=$1 limit=${2:-$LAB_TIMEOUT} start state=
	start=$(lab__now)
	while :; do
		state=$(lab_task_field "$id" .state 2>/dev/null) || state=
		case $state in
		done | expired | cancelled | failed)
			echo "$state"
			return 0
			;;
		esac
		if ! lab__elapsed_lt "$start" "$limit"; then
			echo "${state:-?}"
			return 1
		fi
		sleep 0.1
	done
}

# lab_task_wait_counts ID COLORED [TIMEOUT]: waits until the task has at least COLORED
# colored packets and as many delivered as colored. Returns 1 on timeout (not an error
# message: the caller's assertions say what is missing).
lab_task_wait_counts() {
	local id=$1 want=$2 limit=${3:-10} start c d
	start=$(lab__now)
	while :; do
		read -r c d < <(lab_cli --json task show "$id" 2>/dev/null | jq -r '"\(.colored) \(.delivered)"' 2>/dev/null) || true
		if [[ $c =~ ^[0-9]+$ && $d =~ ^[0-9]+$ ]] && ((c >= want && d >= c)); then
			return 0
		fi
		lab__elapsed_lt "$start" "$limit" || return 1
		sleep 0.2
	done
}

# lab_task_wait_settled ID COLORED [TIMEOUT]: like lab_task_wait_counts, and then until the
# counts have not changed for a second (samples of one packet come from several nodes,
# in several batches). Returns 1 on timeout.
lab_task_wait_settled() {
	local id=$1 want=$2 limit=${3:-15} start last='' now c d stable=0
	start=$(lab__now)
	while :; do
		read -r c d < <(lab_cli --json task show "$id" 2>/dev/null | jq -r '"\(.colored) \(.delivered)"' 2>/dev/null) || true
		now="$c $d"
		if [[ $c =~ ^[0-9]+$ && $d =~ ^[0-9]+$ ]] && ((c >= want && d >= c)) && [[ $now == "$last" ]]; then
			stable=$((stable + 1))
			((stable >= 5)) && return 0
		else
			stable=0
		fi
		last=$now
		lab__elapsed_lt "$start" "$limit" || return 1
		sleep 0.2
	done
}

# lab_task_wait_judged ID JUDGED [TIMEOUT]: waits until the task's report has judged at
# least JUDGED packets (delivered, dropped or vanished), none is in flight any more, and the
# count has not moved for a second (the analyzer judges a packet once its window has
# passed). Returns 1 on timeout (default 20 s).
lab_task_wait_judged() {
	local id=$1 want=$2 limit=${3:-20} start last='' now j f stable=0
	start=$(lab__now)
	while :; do
		read -r j f < <(lab_cli --json report "$id" 2>/dev/null |
			jq -r '"\(.verdict.judged) \(.verdict.in_flight)"' 2>/dev/null) || true
		now="$j $f"
		if [[ $j =~ ^[0-9]+$ && $f == 0 ]] && ((j >= want)) && [[ $now == "$last" ]]; then
			stable=$((stable + 1))
			((stable >= 4)) && return 0
		else
			stable=0
		fi
		last=$now
		lab__elapsed_lt "$start" "$limit" || return 1
		sleep 0.25
	done
}

# ---------------------------------------------------------------------------------------
# Up, down, status

# lab_up [--net-only]: cleans leftovers of this prefix, builds the network and starts the
# daemons. On failure it returns 1 and leaves the cleanup to lab_down (or the trap).
lab_up() {
	local net_only=0
	while (($# > 0)); do
		case $1 in
		--net-only) net_only=1 ;;
		--gw) LAB_OPT_GW=1 ;;
		--tls) LAB_OPT_TLS=1 ;;
		--hosts)
			LAB_OPT_HOSTS=${2:-}
			shift
			;;
		--fdb)
			LAB_OPT_FDB=${2:-}
			shift
			;;
		--regions)
			LAB_OPT_REGIONS=${2:-}
			shift
			;;
		--underlay)
			LAB_OPT_UNDERLAY=${2:-}
			shift
			;;
		--window-ms)
			LAB_OPT_WINDOW_MS=${2:-}
			shift
			;;
		--instances)
			LAB_OPT_INSTANCES=${2:-}
			shift
			;;
		--tenants)
			LAB_OPT_TENANTS=${2:-}
			shift
			;;
		'') ;;
		*)
			lab_err "lab_up: unknown option '$1'"
			return 1
			;;
		esac
		shift
	done
	lab__topology || return 1
	if ((EUID != 0)); then
		lab_err "the lab needs root (network namespaces)"
		return 1
	fi
	local tool tools=(ip bridge jq tcpdump ping timeout ss)
	((LAB_OPT_GW)) && tools+=(nft socat)
	for tool in "${tools[@]}"; do
		command -v "$tool" >/dev/null || {
			lab_err "missing tool: $tool (run packaging/setup.sh deps)"
			return 1
		}
	done
	((net_only)) || lab__check_bins || return 1
	# Leftovers of an earlier run with the same prefix (crashed, or never taken down).
	LAB_DIR_SAVE=$LAB_DIR
	lab__cleanup_prefix
	LAB_DIR=$LAB_DIR_SAVE

	if [[ -z $LAB_DIR ]]; then
		LAB_DIR=$(mktemp -d "/tmp/dyetrace-lab.$LAB_P.XXXXXX") || return 1
		echo "created=1" >"$LAB_DIR/$LAB_MARK"
	else
		if [[ -d $LAB_DIR ]]; then
			[[ -e $LAB_DIR/$LAB_MARK ]] || echo "created=0" >"$LAB_DIR/$LAB_MARK"
		else
			mkdir -p "$LAB_DIR" || return 1
			echo "created=1" >"${LAB_DIR:?}/$LAB_MARK"
		fi
		LAB_DIR=$(cd "$LAB_DIR" && pwd)
	fi
	mkdir -p "$LAB_DIR/pids" "$LAB_RUN_DIR" || return 1
	echo "$LAB_DIR" >"$LAB_RUN_DIR/$LAB_P.dir"
	export DT_LAB_DIR=$LAB_DIR
	lab_log "prefix $LAB_P, state in $LAB_DIR"

	lab_net_up || return 1
	lab__mgmt_check || return 1
	if ((LAB_OPT_GW)); then
		lab_inet_up || return 1
	fi
	((net_only)) && return 0
	if ((LAB_OPT_TLS)); then
		lab__tls_up || return 1
	fi
	lab_daemons_up || return 1
}

# Stops every process of the lab and deletes its namespaces. Quiet when nothing is left.
lab__cleanup_prefix() {
	local ns f pid pids=() present=() daemons=()
	# The state dir of an earlier standalone run of this prefix.
	if [[ -z $LAB_DIR && -r $LAB_RUN_DIR/$LAB_P.dir ]]; then
		LAB_DIR=$(cat "$LAB_RUN_DIR/$LAB_P.dir")
	fi
	for ns in "${LAB_NAMESPACES_ALL[@]}"; do
		lab__ns_exists "$ns" && present+=("$ns")
	done
	# Daemons by pid file (stopped first so that agents detach cleanly), then anything
	# else still running inside the lab's namespaces.
	if [[ -n $LAB_DIR && -d $LAB_DIR/pids ]]; then
		for f in "$LAB_DIR"/pids/agent-*.pid "$LAB_DIR"/pids/*.pid; do
			[[ -r $f ]] || continue
			pid=$(cat "$f")
			{ [[ $pid =~ ^[0-9]+$ ]] && lab__alive "$pid"; } || continue
			[[ " ${pids[*]} " != *" $pid "* ]] || continue
			pids+=("$pid")
			f=${f##*/}
			case $f in analyzer.pid | collector.pid | collector-*.pid | agent-*.pid) daemons+=("${f%.pid}:$pid") ;; esac
		done
	fi
	for ns in "${present[@]}"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			[[ " ${pids[*]} " == *" $pid "* ]] || pids+=("$pid")
		done
	done
	if ((${#pids[@]} > 0)); then
		lab_log "stopping ${#pids[@]} process(es): ${pids[*]}"
		lab__stop_pids 5 "${pids[@]}"
	fi
	# A daemon must stop cleanly on SIGTERM (status 0); say so when one did not.
	for f in "${daemons[@]}"; do
		pid=${f##*:}
		if [[ -n ${LAB__EXIT[$pid]:-} && ${LAB__EXIT[$pid]} != 0 ]]; then
			lab_err "${f%%:*} (pid $pid) exited with status ${LAB__EXIT[$pid]} on SIGTERM; its log ends:"
			tail -n 10 "$LAB_DIR/${f%%:*}.log" >&2
		fi
	done
	if [[ -n $LAB_DIR && -d $LAB_DIR/pids ]]; then
		rm -f "$LAB_DIR"/pids/*.pid
	fi
	for ns in "${present[@]}"; do
		ip netns del "$ns" 2>/dev/null || lab_err "could not delete namespace $ns"
	done
	((${#present[@]} > 0)) && lab_log "deleted namespaces: ${present[*]}"

	# State dirs of crashed runs of this prefix whose pointer is gone (never one kept on
	# purpose with DT_KEEP=1).
	for f in /tmp/dyetrace-lab."$LAB_P".*/"$LAB_MARK"; do
		[[ -e $f && ${f%/*} != "${LAB_DIR:-}" ]] || continue
		grep -qx 'created=1' "$f" && ! grep -qx 'kept=1' "$f" && rm -rf -- "${f%/*}"
	done
	# The state dir: whole when the lab created it, else only what the lab put there.
	if [[ -n $LAB_DIR && -e $LAB_DIR/$LAB_MARK ]]; then
		if [[ ${DT_KEEP:-0} == 1 ]]; then
			grep -qx 'kept=1' "$LAB_DIR/$LAB_MARK" || echo 'kept=1' >>"$LAB_DIR/$LAB_MARK"
			lab_log "kept state dir $LAB_DIR (DT_KEEP=1)"
		elif grep -qx 'created=1' "$LAB_DIR/$LAB_MARK" 2>/dev/null; then
			rm -rf -- "$LAB_DIR"
		else
			rm -rf -- "$LAB_DIR"/pids "$LAB_DIR"/collector-c1 "$LAB_DIR"/collector-c2 "$LAB_DIR"/spool-* "$LAB_DIR"/api.sock \
				"$LAB_DIR"/analyzer-store \
				"$LAB_DIR"/*.conf "$LAB_DIR"/*.log "$LAB_DIR"/*.pcap "$LAB_DIR"/inet-http.sh \
				"${LAB_DIR:?}/$LAB_MARK"
		fi
	fi
	if [[ -r $LAB_RUN_DIR/$LAB_P.dir && $(cat "$LAB_RUN_DIR/$LAB_P.dir") == "${LAB_DIR:-}" ]]; then
		rm -f "$LAB_RUN_DIR/$LAB_P.dir"
	fi
	rmdir "$LAB_RUN_DIR" 2>/dev/null || true
	return 0
}

# lab_down: idempotent; safe in a trap, safe when up failed half way.
lab_down() {
	# A second Ctrl-C must not cut the cleanup short.
	trap '' INT TERM
	lab__cleanup_prefix
	trap - INT TERM
	[[ ${LAB__TRAPPED:-0} == 1 ]] && lab__set_signal_traps
	return 0
}

lab__set_signal_traps() {
	trap 'lab_down; exit 130' INT
	trap 'lab_down; exit 143' TERM
}

# lab_trap: tear the lab down when the calling script exits or is interrupted.
lab_trap() {
	LAB__TRAPPED=1
	trap 'lab_down' EXIT
	lab__set_signal_traps
}

lab_status() {
	local ns any=0 pid f
	if [[ -z $LAB_DIR && -r $LAB_RUN_DIR/$LAB_P.dir ]]; then
		LAB_DIR=$(cat "$LAB_RUN_DIR/$LAB_P.dir")
	fi
	echo "prefix:    $LAB_P"
	echo "state dir: ${LAB_DIR:-(none)}"
	for ns in "${LAB_NAMESPACES_ALL[@]}"; do
		if lab__ns_exists "$ns"; then
			any=1
			echo "namespace $ns:"
			ip -n "$ns" -br addr | sed 's/^/    /'
		fi
	done
	((any)) || echo "no namespaces"
	if [[ -n $LAB_DIR && -d $LAB_DIR/pids ]]; then
		for f in "$LAB_DIR"/pids/*.pid; do
			[[ -r $f ]] || continue
			pid=$(cat "$f")
			if lab__alive "$pid"; then
				echo "${f##*/}: $pid running"
			else
				echo "${f##*/}: $pid gone"
			fi
		done
	fi
	((any))
}

lab__main() {
	set -uo pipefail
	case ${1:-} in
	up)
		lab_trap
		if lab_up "${@:2}"; then
			trap - EXIT INT TERM # leave it up
			LAB__TRAPPED=0
			lab_log "lab is up; state in $LAB_DIR; take it down with: DT_LAB=$LAB_P $0 down"
			lab_log "CLI: DYETRACE_TOKEN=$LAB_TOKEN $LAB_BIN/dyetrace -a ipc://$LAB_DIR/api.sock ..."
			((LAB_OPT_TENANTS > 0)) && lab_log "tenants t1..t$LAB_OPT_TENANTS: token dyetrace-lab-token-tK-0123456789abcdef"
			return 0
		fi
		lab_err "lab up failed; tearing down"
		return 1 # the EXIT trap tears down
		;;
	down) lab_down ;;
	status) lab_status ;;
	*)
		echo "usage: $0 up [--net-only] [--hosts N] [--fdb flood|learn|unicast] [--gw] [--regions 2] [--underlay bridge]" >&2
		echo "                 [--window-ms N] [--instances 4] [--tenants N] | down | status" >&2
		echo "       (env: DT_LAB, DT_LAB_DIR, DT_BIN, DT_KEEP, DT_LAB_HOSTS, DT_LAB_FDB, DT_LAB_GW, DT_LAB_REGIONS, DT_LAB_UNDERLAY, DT_LAB_WINDOW_MS," >&2
		echo "        DT_LAB_INSTANCES, DT_LAB_TENANTS, DT_LAB_TOKEN, DT_LAB_LIMITS, DT_LAB_ANALYZER_EXTRA, DT_LAB_METRICS)" >&2
		return 2
		;;
	esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	lab__main "$@"
	exit $?
fi
