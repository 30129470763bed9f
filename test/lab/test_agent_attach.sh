#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_agent_attach.sh - how the agent attaches its tc programs (issue 16). With no
# "attach" setting (auto) on a kernel with tcx (6.6 and later) the agents hold tcx links,
# one per interface and direction, and leave no clsact qdisc or tc filter; on an older
# kernel they fall back to clsact. attach = "clsact" forces cls_bpf filters on a clsact
# qdisc. Either way the ready line and the metrics say which mode is in use, a traced ping
# takes its four-hop path, and SIGTERM leaves nothing attached (no link, no filter, no
# qdisc the agent created).
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtat" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtat}"
export DT_LAB
export DT_LAB_METRICS=1
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

PINGS=5
HOSTS=(h1 h2)

checks_trap
trap '((CHECKS_FAILED == 0)) || lab_logs_tail 20; checks_finish; exit $?' EXIT
check_up "lab up with metrics" "lab up: agents h1 and h2 with the default attach mode" \
	lab_up --window-ms 500

# The mode auto picks here: tcx from kernel 6.6 on.
IFS=. read -r kmaj kmin _ <<<"$(uname -r)"
auto=clsact
((kmaj > 6 || (kmaj == 6 && kmin >= 6))) && auto=tcx

# tcx_links HOST IFACE: the agent's tcx links on IFACE, as "attach_type" numbers of its
# fds (the kernel's fdinfo of a link: link_type tcx, ifindex, attach_type 46 or 47).
tcx_links() {
	local pid ifindex
	pid=$(lab_pid "agent-$1") || return 1
	ifindex=$(lab_in "$LAB_P-$1" cat "/sys/class/net/$2/ifindex") || return 1
	grep -l '^link_type:[[:space:]]*tcx' /proc/"$pid"/fdinfo/* 2>/dev/null |
		xargs -r grep -h -A1 "^ifindex:[[:space:]]*$ifindex\$" |
		sed -nE 's/^attach_type:[[:space:]]*([0-9]+).*/\1/p' | sort -n | tr '\n' ' '
}

# tcx_prog_ids HOST: the ids of the programs HOST's agent's tcx links run, one a line.
tcx_prog_ids() {
	local pid
	pid=$(lab_pid "agent-$1") || return 1
	grep -l '^link_type:[[:space:]]*tcx' /proc/"$pid"/fdinfo/* 2>/dev/null |
		xargs -r sed -nE 's/^prog_id:[[:space:]]*([0-9]+)$/\1/p' | sort -u
}

# progs_loaded ID...: the ids among ID... of programs still loaded, space-separated.
progs_loaded() {
	local id
	for id in "$@"; do
		bpftool prog show id "$id" >/dev/null 2>&1 && printf '%s ' "$id"
	done
}

# tc_state HOST IFACE: our clsact filters and the clsact qdisc on IFACE, one word each.
tc_state() {
	local ns=$LAB_P-$1 dir
	for dir in ingress egress; do
		lab_in "$ns" tc filter show dev "$2" "$dir" | grep -q 'handle 0xd7e .*direct-action' &&
			printf '%s-filter ' "$dir"
	done
	lab_in "$ns" tc qdisc show dev "$2" | grep -q clsact && printf 'clsact-qdisc '
}

# mode_gauge HOST MODE: the value of dyetrace_agent_attach_mode{mode="MODE"} on HOST's agent.
mode_gauge() {
	lab_metrics_scrape "agent-$1" | sed -nE "s/^dyetrace_agent_attach_mode\\{mode=\"$2\"\\} ([0-9]+)\$/\\1/p"
}

# traced_ping NAME: a task for pings i1 -> i2; PINGS pings all take the four-hop path.
traced_ping() {
	local id rep
	id=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --proto icmp --vni "$LAB_VNI" \
		--budget "$PINGS")
	check "$1: task created" test -n "$id"
	check "$1: task armed" lab_task_wait_armed "$id"
	check_eq "$1: $PINGS pings answered" "$(ping_received "$LAB_I1" "$LAB_I2_IP" "$PINGS")" "$PINGS"
	lab_task_wait_judged "$id" "$PINGS" 15 || true
	rep=$(report_fetch "$id" "$1")
	jq_true "$rep" "$1: $PINGS packets delivered along the four hops" \
		'[.packets[] | select(.direction == "request" and .fate == "delivered" and (.hops | length) == 4)] | length == $n' \
		--argjson n "$PINGS"
	lab_cli task cancel "$id" >/dev/null 2>&1
}

# expect_mode MODE WHAT: the agents' ready lines, metrics and attachments say MODE.
expect_mode() {
	local mode=$1 what=$2 other h want_links=''
	other=tcx
	[[ $mode == tcx ]] && other=clsact && want_links='46 47 '
	for h in "${HOSTS[@]}"; do
		check "$what: $h's ready line says it attached with $mode" \
			grep -q "DT-AGENT-READY: .* attached with $mode, " "$LAB_DIR/agent-$h.log"
		check_eq "$what: $h's metrics: attach mode $mode" "$(mode_gauge "$h" "$mode")" 1
		check_eq "$what: $h's metrics: not $other" "$(mode_gauge "$h" "$other")" 0
	done
	check_eq "$what: h1's tcx links on pt1 (attach types)" "$(tcx_links h1 pt1)" "$want_links"
	if [[ $mode == tcx ]]; then
		check_eq "$what: no clsact qdisc or filter on h1 pt1" "$(tc_state h1 pt1)" ""
	else
		check_eq "$what: clsact filters at both directions of h1 pt1" "$(tc_state h1 pt1)" \
			"ingress-filter egress-filter clsact-qdisc "
	fi
}

# restart_agents [SETTING]: the agents again, with SETTING (e.g. attach = "clsact";) added
# to their configuration, or with none.
restart_agents() {
	local h
	for h in "${HOSTS[@]}"; do
		lab_bg_stop "agent-$h"
		sed -i '/^attach = /d' "$LAB_DIR/$h.conf"
		[[ -n ${1:-} ]] && echo "$1" >>"$LAB_DIR/$h.conf"
		check "agent $h restarted ${1:-without an attach setting}" lab_agent_start "$h"
	done
}

expect_mode "$auto" "auto"
traced_ping "auto"

restart_agents 'attach = "clsact";'
expect_mode clsact "forced clsact"
traced_ping "clsact"

lab_bg_stop agent-h1
check_eq "SIGTERM after clsact: no filter and no qdisc left on h1 pt1" "$(tc_state h1 pt1)" ""

if [[ $auto == tcx ]]; then
	restart_agents 'attach = "tcx";'
	expect_mode tcx "forced tcx"
	mapfile -t progs < <(tcx_prog_ids h1)
	check "forced tcx: h1's links run its 5 programs (port, uplink, overlay)" test "${#progs[@]}" -eq 5
	lab_bg_stop agent-h1
	check_eq "SIGTERM after tcx: the links are gone, and the programs with them" \
		"$(progs_loaded "${progs[@]}")" ""
	check_eq "and no clsact qdisc or filter on h1 pt1" "$(tc_state h1 pt1)" ""
fi

checks_teardown_clean
