#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# verdict.sh - benchmark 6: time to verdict under persistent loss, against the analyzer's
# analysis window.
#
# The lab with its daemons over a bridged underlay (lab_up --underlay bridge, prefix
# $DT_LAB, default "dtb"; the analyzer's window as the lab configures it: the default
# unless DT_LAB_WINDOW_MS is set). Static neighbours between i1 and i2, so that the
# instances need no ARP across the loss. Two kinds of persistent loss, one after the other,
# as test/lab/test_loss_firewall.sh and test_loss_underlay.sh make them:
#   dropped:  an nftables rule in h2's bridge drops every echo request from i1 to i2; the
#             kernel frees them in h2 with a reason, h2's drop tracer samples each, and the
#             analyzer judges such a packet at once (a drop ends its path);
#   vanished: the underlay bridge (namespace $P-ul, no agent) drops every VXLAN packet
#             from h1 to h2; nobody sees a drop, so a packet is judged lost only once the
#             analysis window has passed since it was last seen.
# Per trial, a ping from i1 to i2 with its own echo identifier runs (10 per second,
# bounded in count); then the clock starts, `dyetrace task create` names that identifier,
# and `dyetrace report ID --json` is polled until its verdict counts such a packet
# (.verdict.dropped or .verdict.vanished > 0). The time of the first sample (.task.colored
# > 0) is noted too. Each figure is the median of TRIALS trials (default 3); the baseline
# is the window itself (the report's .window_ms). Prints rows (bench/common.h).
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lab_common.sh
. "$BENCH_DIR/lab_common.sh"

TRIALS=${TRIALS:-3}
LIMIT_S=30 # a trial that sees no verdict by then is reported as such

lab_trap
if ! lab_up --underlay bridge >"${TMPDIR:-/tmp}/dtb-verdict-up.$$.log" 2>&1; then
	cat "${TMPDIR:-/tmp}/dtb-verdict-up.$$.log" >&2
	rm -f "${TMPDIR:-/tmp}/dtb-verdict-up.$$.log"
	bench_note "the lab did not come up"
	exit 1
fi
rm -f "${TMPDIR:-/tmp}/dtb-verdict-up.$$.log"
ip -n "$LAB_I1" neigh replace "$LAB_I2_IP" lladdr "$LAB_I2_MAC" dev eth0 nud permanent &&
	ip -n "$LAB_I2" neigh replace "$LAB_I1_IP" lladdr "$LAB_I1_MAC" dev eth0 nud permanent || exit 1

# loss_up dropped|vanished / loss_down dropped|vanished
loss_up() {
	if [[ $1 == dropped ]]; then
		lab_in "$LAB_H2" nft -f - <<-EOF
			table bridge dtbench_fw {
				chain forward {
					type filter hook forward priority -200; policy accept;
					ip saddr $LAB_I1_IP ip daddr $LAB_I2_IP icmp type echo-request drop
				}
			}
		EOF
	else
		lab_in "$LAB_UL" nft -f - <<-EOF
			table bridge dtbench_wire {
				chain forward {
					type filter hook forward priority -200; policy accept;
					ip saddr $LAB_H1_UL_IP ip daddr $LAB_H2_UL_IP udp dport 4789 drop
				}
			}
		EOF
	fi
}
loss_down() {
	if [[ $1 == dropped ]]; then
		lab_in "$LAB_H2" nft delete table bridge dtbench_fw
	else
		lab_in "$LAB_UL" nft delete table bridge dtbench_wire
	fi
}

# trial KIND IDENT: prints "FIRST_SAMPLE_S VERDICT_S TASK" (VERDICT_S is LIMIT_S when none came).
trial() {
	local kind=$1 ident=$2 t0 t task first='' verdict='' colored n r
	lab_bg "ping-$ident" "$LAB_I1" ping -e "$ident" -i 0.1 -c $((LIMIT_S * 10 + 20)) -W 1 -q \
		"$LAB_I2_IP" || return 1
	sleep 0.3
	t0=$EPOCHREALTIME
	task=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport "$ident" --proto icmp \
		--vni "$LAB_VNI") || return 1
	while :; do
		r=$(lab_cli --json report "$task" 2>/dev/null) || r='{}'
		t=$EPOCHREALTIME
		read -r colored n < <(jq -r --arg k "$kind" '"\(.task.colored // 0) \(.verdict[$k] // 0)"' <<<"$r" 2>/dev/null) || true
		[[ -z $first && ${colored:-0} -gt 0 ]] && first=$t
		if [[ ${n:-0} -gt 0 ]]; then
			verdict=$t
			break
		fi
		awk -v a="$t0" -v b="$t" -v l=$LIMIT_S 'BEGIN { exit !(b - a > l) }' && break
		sleep 0.02
	done
	lab_bg_stop "ping-$ident" 2
	awk -v a="$t0" -v f="${first:-}" -v v="${verdict:-}" -v l=$LIMIT_S -v id="$task" \
		'BEGIN { printf "%.3f %.3f %s\n", (f == "" ? l : f - a), (v == "" ? l : v - a), id }'
}

now_window_ms=
declare -A MED_FIRST=() MED_VERDICT=()
ident=4200
for kind in dropped vanished; do
	loss_up "$kind" || exit 1
	firsts=() verdicts=()
	for ((k = 1; k <= TRIALS; k++)); do
		ident=$((ident + 1))
		read -r f v task < <(trial "$kind" "$ident") || exit 1
		[[ -n ${v:-} ]] || exit 1
		firsts+=("$f")
		verdicts+=("$v")
		bench_note "$kind, trial $k (icmp id $ident, task $task): first sample after $f s, verdict after $v s"
	done
	loss_down "$kind" || exit 1
	MED_FIRST[$kind]=$(bench_median "${firsts[@]}")
	MED_VERDICT[$kind]=$(bench_median "${verdicts[@]}")
	[[ -n $now_window_ms ]] || now_window_ms=$(lab_cli --json report "$task" | jq -r '.window_ms // empty')
done

w=$(bench_calc "${now_window_ms:-1000} / 1000")
for kind in dropped vanished; do
	v=${MED_VERDICT[$kind]}
	if [[ $kind == dropped ]]; then
		what="dropped (h2's firewall: the drop is seen)"
	else
		what="vanished (lost on the underlay wire: no drop seen)"
	fi
	bench_row "time to verdict: task create -> report counts a packet $what; first sample after ${MED_FIRST[$kind]} s; median of $TRIALS" \
		"$(awk -v v="$v" 'BEGIN { printf "%.2f s", v }')" \
		"$(awk -v w="$w" 'BEGIN { printf "window %.2f s", w }')" \
		"$(awk -v v="$v" -v w="$w" 'BEGIN { printf "%+.2f s", v - w }')" \
		"<= window + 1 s" \
		"$(awk -v v="$v" -v w="$w" 'BEGIN { if (v <= w + 1) print "meets"; else printf "misses by %.2f s", v - w - 1 }')"
done
