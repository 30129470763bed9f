#!/usr/bin/env bash
# shellcheck disable=SC2154 # LAB_* come from lab.sh
# SPDX-License-Identifier: MIT
#
# router.sh - routers and load balancers inside the overlay (issue 20), added to a running
# lab. Sourced after lab.sh (before lab_up, so that lab_down knows the routers'
# namespaces), or run on its own:
#
#     test/lab/router.sh up [--dnat-only | --chain] [lab.sh up options]
#                                   a lab (default --hosts 3 --fdb unicast) with router rt
#                                   and the VIP 10.99.0.100 to i31 (full NAT), leave it up
#     test/lab/router.sh down | status
#
# A router is a VTEP on the underlay like the hosts, with no instance behind it:
#
#     $P-rt:  agent rt (ul0 as uplink; its vxlan0 gets the overlay program by itself)
#             ul0 172.31.0.4/24 on the underlay bridge; mg0 10.254.0.14
#             br0 = { vxlan0 (vni 100) } with 10.100.0.250/24 (MAC 02:00:00:00:04:fe)
#             ip_forward on, ICMP redirects off (it routes back out of br0, where the
#             packets came in: a redirect would teach the client to bypass it), and
#             br_netfilter off for br0 (bridge-nf-call-iptables 0, when the module is
#             there): with it, the DNAT happens as the frame enters the bridge, which then
#             bridges the frame to the backend untranslated back and unconfirmed in
#             conntrack (no SNAT, the first packets lost); a router routes.
#     $P-rt2: the same with 172.31.0.5, 10.254.0.15, 10.100.0.251 (MAC 02:00:00:00:05:fe)
#
# Its vxlan0 follows the lab's --fdb like every host's (use --fdb unicast so that no
# frame is copied to a bystander; the hosts get FDB entries for the router's br0 MAC
# and the router for every instance). It needs --underlay bridge (--hosts 3 implies it).
#
# What a router serves (nftables, table ip dtlab_lb on the router):
#   lab_router_lb NAME VIP BACKEND full   DNAT from VIP to BACKEND in prerouting, and SNAT
#                                         of those (ct status dnat) to the router's own
#                                         overlay address in postrouting: a load balancer
#                                         (replies come back to it by their destination)
#   lab_router_lb NAME VIP BACKEND dnat   DNAT only: the replies come back only if the
#                                         backend routes them through the router
#   lab_route_via INSTANCE-NS NET ROUTER-IP   a route in an instance (or router) towards NET
#   lab_router_addr NAME ADDR/LEN         one more address on the router's br0 (a second
#                                         subnet on the overlay segment)
#   lab_instance_readdress INSTANCE ADDR/LEN GATEWAY   the instance gets ADDR only, and a
#                                         default route via GATEWAY; its host's agent lists
#                                         ADDR behind the port (restarted)
#
# The addresses the tests use: the VIP 10.99.0.100 (10.99.0.0/24, routed to rt), rt2's VIP
# 10.98.0.100 (10.98.0.0/24, routed to rt2), the backend subnet 10.101.0.0/24 (rt
# 10.101.0.250, i31 10.101.0.31 when readdressed).

# shellcheck source=test/lab/lab.sh
[[ -n ${LAB_P:-} ]] || . "$(dirname "${BASH_SOURCE[0]}")/lab.sh"

LAB_RT=$LAB_P-rt
LAB_RT2=$LAB_P-rt2
LAB_NAMESPACES_ALL+=("$LAB_RT" "$LAB_RT2")
LAB_EXTRA_HOST_NUM[rt]=4
LAB_EXTRA_HOST_NUM[rt2]=5
LAB_EXTRA_HOST_MACS[rt]=02:00:00:00:04:fe
LAB_EXTRA_HOST_MACS[rt2]=02:00:00:00:05:fe
# shellcheck disable=SC2034 # for the tests
LAB_RT_IP=10.100.0.250
# shellcheck disable=SC2034
LAB_RT2_IP=10.100.0.251
# shellcheck disable=SC2034
LAB_VIP=10.99.0.100
# shellcheck disable=SC2034
LAB_VIP_NET=10.99.0.0/24
# shellcheck disable=SC2034
LAB_VIP2=10.98.0.100
# shellcheck disable=SC2034
LAB_VIP2_NET=10.98.0.0/24
# shellcheck disable=SC2034
LAB_BACKEND_NET=10.101.0.0/24
# shellcheck disable=SC2034
LAB_RT_BACKEND_IP=10.101.0.250
# shellcheck disable=SC2034
LAB_I31_BACKEND_IP=10.101.0.31

# lab_router_ip NAME: the router's overlay address.
lab_router_ip() {
	case $1 in
	rt) echo "$LAB_RT_IP" ;;
	rt2) echo "$LAB_RT2_IP" ;;
	*)
		lab_err "no router $1 (rt, rt2)"
		return 1
		;;
	esac
}

# The commands that build router NAME, one a line (for lab__run_lines).
lab__router_lines() {
	local name=$1 ns=$LAB_P-$1 ip peer
	ip=$(lab_router_ip "$name") || return 1
	cat <<-EOF
		ip netns add $ns
		ip netns exec $ns sysctl -e -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
		ip netns exec $ns sysctl -q -w net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0
		ip netns exec $ns sysctl -e -q -w net.bridge.bridge-nf-call-iptables=0
		ip -n $ns link set lo up
	EOF
	lab__host_ul_lines "$name"
	lab__host_mgmt_lines "$name"
	lab__vxlan_lines "$name"
	cat <<-EOF
		ip -n $ns link add br0 address ${LAB_EXTRA_HOST_MACS[$name]} type bridge
		ip -n $ns link set vxlan0 master br0
		ip -n $ns addr add $ip/24 dev br0
		ip -n $ns link set vxlan0 up
		ip -n $ns link set br0 up
	EOF
	# every other VTEP learns where the router's br0 is
	for peer in "${LAB_HOSTS[@]}"; do
		[[ $peer == "$name" ]] && continue
		lab__vxlan_peer_lines "$peer" "$name"
	done
}

# lab_router_up NAME: router NAME (rt or rt2) on the running lab, with its agent.
lab_router_up() {
	local name=$1 ns=$LAB_P-$1 ip
	ip=$(lab_router_ip "$name") || return 1
	if [[ $LAB_OPT_UNDERLAY != bridge ]]; then
		lab_err "a router needs the underlay bridge (lab_up --hosts 3, or --underlay bridge)"
		return 1
	fi
	if [[ " ${LAB_HOSTS[*]} " == *" $name "* ]]; then
		lab_err "router $name is up already"
		return 1
	fi
	LAB_HOSTS+=("$name")
	LAB_NAMESPACES+=("$ns")
	lab__router_lines "$name" | lab__run_lines || return 1
	lab__ping "$LAB_I1" "$ip" "overlay to router $name" || return 1
	lab__write_agent_conf "$name" || return 1
	lab_agent_start "$name" || return 1
	lab_log "router $name up: $ns, $ip on the overlay (VXLAN $LAB_VNI, fdb $LAB_OPT_FDB), agent $name"
}

# lab_router_lb NAME VIP BACKEND full|dnat: router NAME translates VIP to BACKEND (DNAT),
# and with "full" also the source to its own overlay address (SNAT). One table per router,
# dtlab_lb; a second call adds its rules to it.
lab_router_lb() {
	local name=$1 vip=$2 backend=$3 mode=$4 ns=$LAB_P-$1 ip
	ip=$(lab_router_ip "$name") || return 1
	case $mode in full | dnat) ;; *)
		lab_err "lab_router_lb: mode must be full or dnat, not '$mode'"
		return 1
		;;
	esac
	lab_in "$ns" nft -f - <<-EOF || {
		table ip dtlab_lb {
			chain prerouting {
				type nat hook prerouting priority dstnat; policy accept;
			}
			chain postrouting {
				type nat hook postrouting priority srcnat; policy accept;
			}
		}
		add rule ip dtlab_lb prerouting ip daddr $vip counter dnat to $backend
	EOF
		lab_err "cannot load the DNAT of $vip to $backend on $ns"
		return 1
	}
	if [[ $mode == full ]]; then
		lab_in "$ns" nft add rule ip dtlab_lb postrouting ct status dnat ip daddr "$backend" \
			counter snat to "$ip" || {
			lab_err "cannot load the SNAT to $ip on $ns"
			return 1
		}
	fi
	lab_log "router $name: $vip -> $backend ($mode NAT)"
}

# nat_lab_up: checks_trap and the NAT tests' lab (3 hosts, unicast FDB, window_ms
# $WINDOW_MS), a check; the test ends when it does not come up.
nat_lab_up() {
	checks_lab_up "lab up (3 hosts, unicast FDB, daemons, window_ms $WINDOW_MS)" \
		"lab up: 3 hosts, unicast FDB, agents h1 h2 h3" \
		--hosts 3 --fdb unicast --window-ms "$WINDOW_MS"
}

# nat_router_up: router rt on the lab (lab_router_up rt), a check; the test ends when it
# does not come up.
nat_router_up() {
	check_up "router rt up (overlay $LAB_RT_IP, agent rt)" "router rt up: $LAB_RT_IP on the overlay, agent rt" \
		lab_router_up rt
}

# nat_vip_full: i1 routes the VIP's subnet via rt, rt balances the VIP to i31 with full NAT
# (DNAT and SNAT), and an untraced ping i1 -> VIP is answered; a check each.
nat_vip_full() {
	check "i1 routes $LAB_VIP_NET via rt" lab_route_via "$LAB_I1" "$LAB_VIP_NET" "$LAB_RT_IP"
	check "rt: VIP $LAB_VIP -> i31 $LAB_I31_IP, full NAT" lab_router_lb rt "$LAB_VIP" "$LAB_I31_IP" full
	check "an untraced ping i1 -> VIP is answered" lab_in "$LAB_I1" ping -c 1 -W 2 -q "$LAB_VIP"
}

# nat_vip_task: checks_task for the NAT tests' task, icmp i1 -> VIP in both directions;
# sets task.
nat_vip_task() {
	checks_task task "create the task (icmp i1 -> VIP $LAB_VIP, both directions)" "task armed" \
		--src "$LAB_I1_IP" --dst "$LAB_VIP" --proto icmp --vni "$LAB_VNI" --direction both
	# shellcheck disable=SC2034 # for the tests
	task=$CHECKS_TASK
}

# nat_backend_subnet: rt gets the backend subnet on its br0 and i31 moves into it
# (readdressed, default via rt; h3's agent lists the new address); a check each.
nat_backend_subnet() {
	check "rt: a second subnet on br0, $LAB_RT_BACKEND_IP/24" lab_router_addr rt "$LAB_RT_BACKEND_IP/24"
	check "i31 readdressed to $LAB_I31_BACKEND_IP/24, default via $LAB_RT_BACKEND_IP; h3's agent lists it" \
		lab_instance_readdress i31 "$LAB_I31_BACKEND_IP/24" "$LAB_RT_BACKEND_IP"
}

# lab_route_via NS NET GATEWAY: in namespace NS, NET is routed via GATEWAY.
lab_route_via() {
	ip -n "$1" route replace "$2" via "$3"
}

# lab_router_addr NAME ADDR/LEN: one more address on router NAME's br0.
lab_router_addr() {
	ip -n "$LAB_P-$1" addr add "$2" dev br0
}

# lab_instance_readdress INSTANCE ADDR/LEN GATEWAY: the instance has ADDR as its only
# address and a default route via GATEWAY. Its host's agent is restarted with ADDR listed
# behind the instance's port, so that the analyzer knows where ADDR is.
lab_instance_readdress() {
	local inst=$1 addr=$2 gw=$3 ns host
	ns=$(lab_instance_ns "$inst")
	host=$(lab_instance_host "$inst")
	{
		ip -n "$ns" addr flush dev eth0 &&
			ip -n "$ns" addr add "$addr" dev eth0 &&
			ip -n "$ns" route add default via "$gw"
	} || {
		lab_err "cannot readdress $inst to $addr (default via $gw)"
		return 1
	}
	LAB_INSTANCE_IP[$inst]=${addr%/*}
	lab_bg_stop "agent-$host" || return 1
	lab__write_agent_conf "$host" || return 1
	lab_agent_start "$host" || return 1
	lab_log "instance $inst readdressed to $addr (default via $gw); agent $host lists it"
}

# lab_agent_keys HOST: how many keys HOST's agent has armed in its data plane (its
# metrics: dyetrace_agent_bpf_map_entries{map="dt_tasks"}).
lab_agent_keys() {
	lab_metrics_scrape "agent-$1" 2>/dev/null |
		sed -nE 's/^dyetrace_agent_bpf_map_entries\{map="dt_tasks"\} ([0-9]+)$/\1/p'
}

# lab_agent_wait_keys HOST N [TIMEOUT]: waits until HOST's agent has exactly N keys armed
# (default 10 s). Returns 1 on timeout, printing what it has.
lab_agent_wait_keys() {
	local host=$1 want=$2 limit=${3:-10} start got=
	start=$(lab__now)
	while :; do
		got=$(lab_agent_keys "$host")
		[[ $got == "$want" ]] && return 0
		if ! lab__elapsed_lt "$start" "$limit"; then
			echo "agent $host has '${got:-?}' keys armed after ${limit}s, not $want"
			return 1
		fi
		sleep 0.1
	done
}

# text_hops FILE HOP-ERE TEXT: how many hop lines of text report FILE (report -n 0) match
# HOP-ERE (e.g. 'rt/ul0 +uplink-out') and contain TEXT (fixed, e.g. what a translation
# changed: "(dst 10.99.0.100 becomes 10.100.0.31, src ...)").
text_hops() {
	grep -E "^ *(-> )?$2 " "$1" | grep -cF -- "$3"
}

# lab_router_main up|down|status ...: see the header.
lab_router_main() {
	set -uo pipefail
	local what=${1:-} mode=full args=()
	shift || true
	while (($# > 0)); do
		case $1 in
		--dnat-only) mode=dnat ;;
		--chain) mode=chain ;;
		*) args+=("$1") ;;
		esac
		shift
	done
	case $what in
	up)
		lab_trap
		if lab_up --hosts 3 --fdb unicast "${args[@]}" && lab_router_up rt && lab_router_scenario "$mode"; then
			trap - EXIT INT TERM
			LAB__TRAPPED=0
			lab_log "lab with router rt is up ($mode); take it down with: DT_LAB=$LAB_P $0 down"
			lab_log "CLI: DYETRACE_TOKEN=$LAB_TOKEN $LAB_BIN/dyetrace -a ipc://$LAB_DIR/api.sock ..."
			return 0
		fi
		lab_err "router lab up failed; tearing down"
		return 1
		;;
	down) lab_down ;;
	status) lab_status ;;
	*)
		echo "usage: $0 up [--dnat-only | --chain] [lab.sh up options] | down | status" >&2
		return 2
		;;
	esac
}

# lab_router_scenario full|dnat|chain: the load balancing of the standalone lab (router rt
# up): i1 and i2 route the VIP to rt;
#   full   rt: VIP -> i31, full NAT
#   dnat   rt: VIP -> i31 readdressed into the backend subnet (default via rt), DNAT only
#   chain  rt2 up too; rt: VIP -> VIP2 (full NAT, VIP2 routed to rt2); rt2: VIP2 -> i31
#          (full NAT)
lab_router_scenario() {
	local inst
	for inst in i1 i2; do
		lab_route_via "$(lab_instance_ns "$inst")" "$LAB_VIP_NET" "$LAB_RT_IP" || return 1
	done
	case $1 in
	full) lab_router_lb rt "$LAB_VIP" "$(lab_instance_ip i31)" full ;;
	dnat)
		lab_router_addr rt "$LAB_RT_BACKEND_IP/24" &&
			lab_instance_readdress i31 "$LAB_I31_BACKEND_IP/24" "$LAB_RT_BACKEND_IP" &&
			lab_router_lb rt "$LAB_VIP" "$LAB_I31_BACKEND_IP" dnat
		;;
	chain)
		lab_router_up rt2 &&
			lab_route_via "$LAB_RT" "$LAB_VIP2_NET" "$LAB_RT2_IP" &&
			lab_router_lb rt "$LAB_VIP" "$LAB_VIP2" full &&
			lab_router_lb rt2 "$LAB_VIP2" "$(lab_instance_ip i31)" full
		;;
	esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	lab_router_main "$@"
	exit $?
fi
