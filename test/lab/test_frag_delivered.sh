#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_frag_delivered.sh - fragments, scenario 1 (issue 19): inner IPv4 fragments, all
# delivered. Three hosts, unicast FDB; instance MTU 1450 (the lab's default, room for
# VXLAN). i1 sends 20 UDP datagrams of 4000 bytes to i31; i1's kernel cuts each into 3
# fragments (1444 + 1444 + 1180 bytes; offsets 0, 1424, 2848), and nothing on the way
# touches them.
#
# The first hop colors every fragment of a traced datagram (the later ones through the
# datagram's first, dt_frags), every hop samples each, and the report treats each fragment
# as a packet and judges the datagram: the verdict counts 20 datagrams delivered, the
# report lists 60 fragments, each with its offset and the datagram's fate, the task counts
# 20 datagrams colored, and the sink in i31 got 20 whole datagrams.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtfa" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtfa}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
# shellcheck source=test/lab/frag.sh
. "$(dirname "${BASH_SOURCE[0]}")/frag.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
N=20
PATH4='["h1/pt1/port-in","h1/ul0/uplink-out","h3/ul0/uplink-in","h3/pt1/port-out"]'

frag_lab_up
check "static neighbours i1 <-> i31 (no ARP in the traced window)" lab_static_neighbours i1 i31
check_eq "instance MTU: i1 eth0 and i31 eth0 $LAB_MTU" \
	"$(ip -n "$LAB_I1" -o link show eth0 | grep -o 'mtu [0-9]*') $(ip -n "$LAB_I31" -o link show eth0 | grep -o 'mtu [0-9]*')" \
	"mtu $LAB_MTU mtu $LAB_MTU"
check "UDP sink in i31 (:$FRAG_DPORT)" frag_sink_start sink "$LAB_I31" "$FRAG_DPORT"

frag_task

frag_ok=$(frag_snmp "$LAB_I1" Ip FragOKs)
frag_cr=$(frag_snmp "$LAB_I1" Ip FragCreates)
reasm_ok=$(frag_snmp "$LAB_I31" Ip ReasmOKs)
check_eq "i1 sent $N datagrams of $FRAG_SIZE bytes" \
	"$(frag_send "$LAB_I1" "$LAB_I31_IP" "$FRAG_DPORT" "$N" "$FRAG_SIZE")" "$N"
frag_sink_wait sink "$N" "$FRAG_SIZE"
check_eq "the sink in i31 received $N whole datagrams ($FRAG_SIZE bytes), nothing else" \
	"$(frag_sink_count sink "$FRAG_SIZE") $(frag_sink_count sink)" "$N $N"
check_eq "kernel: i1 fragmented $N datagrams into $((3 * N)) fragments (IpFragOKs, IpFragCreates)" \
	"$(frag_snmp_delta "$LAB_I1" Ip FragOKs "$frag_ok") $(frag_snmp_delta "$LAB_I1" Ip FragCreates "$frag_cr")" \
	"$N $((3 * N))"
check_eq "kernel: i31 reassembled $N datagrams (IpReasmOKs)" \
	"$(frag_snmp_delta "$LAB_I31" Ip ReasmOKs "$reasm_ok")" "$N"
check "every datagram judged (window passed)" lab_task_wait_judged "$task" "$N"

r=$(report_fetch_text "$task" delivered)
check_verdict "$r" delivered "$N" "$N" 0 0
jq_true "$r" "verdict sentence: no loss, $N of $N" \
	'.verdict.sentence | test("no loss") and test("\($n) of \($n)")' --argjson n "$N"
frag_check_layout "$r" delivered "$N"
jq_true "$r" "every fragment delivered, datagram_fate delivered" \
	'all(.packets[]; .fate == "delivered" and .datagram_fate == "delivered")'
jq_true "$r" "every fragment's path: h1 port-in -> h1 uplink-out -> h3 uplink-in -> h3 port-out" \
	'all(.packets[]; path == $p)' --argjson p "$PATH4"
jq_true "$r" "every fragment carries the datagram's flow (the ports of its first fragment)" \
	'all(.packets[]; .flow.sport == $s and .flow.dport == $d)' \
	--argjson s "$FRAG_SPORT" --argjson d "$FRAG_DPORT"
jq_true "$r" "per-hop table: nothing dropped or vanished anywhere" \
	'all(.hops[]; .dropped == 0 and .vanished == 0)'
jq_true "$r" "no sample left unmatched" '.unmatched == 0'
jq_true "$r" "task: colored $N, delivered $N (datagrams)" \
	'.task.colored == $n and .task.delivered == $n' --argjson n "$N"

# The pcapng holds every fragment at every hop; at the first hop each is the raw frame.
run lab_cli report --format pcapng -o "$LAB_DIR/delivered.pcapng" "$task"
check_rc "pcapng written" 0
check_eq "pcapng: $((3 * N * 4)) packets (every fragment at each of its 4 hops)" \
	"$(tshark -r "$LAB_DIR/delivered.pcapng" 2>/dev/null | wc -l)" $((3 * N * 4))
# tshark gives ip.frag_offset in 8-byte units (Wireshark 3.6 on): 178 is byte 1424.
offsets=$(tshark -r "$LAB_DIR/delivered.pcapng" -Y 'frame.comment contains "port-in"' -T fields \
	-e ip.frag_offset 2>/dev/null | sort -n | uniq -c | awk '{ printf "%s:%s ", $2, $1 }')
[[ $offsets == "0:$N 178:$N 356:$N " ]] && offsets="0:$N 1424:$N 2848:$N "
check_eq "pcapng: at h1 port-in, $N fragments at each offset 0, 1424, 2848" "$offsets" "0:$N 1424:$N 2848:$N "

# A task that ends keeps counting datagrams.
check "cancel the task" lab_cli task cancel "$task"
check_eq "task ended (cancelled): colored still $N (datagrams, not fragments)" \
	"$(lab_task_field "$task" '"\(.state) \(.colored)"')" "cancelled $N"
r=$(report_fetch "$task" delivered-ended)
check_verdict "$r" "after the end" "$N" "$N" 0 0

check_samples_accounted "delivered" "$r"
check_eq "h1's agent: colored $N datagrams, $((2 * N)) later fragments through their first, 0 orphans" \
	"$(agent_exit h1 colored) $(agent_exit h1 frag_colored) $(agent_exit h1 frag_orphan)" "$N $((2 * N)) 0"
check_eq "h1's agent: nothing recolored (no refragmentation)" "$(agent_exit h1 recolored)" 0
check_eq "no agent reported a drop (h1 h2 h3)" \
	"$(agent_exit h1 drops) $(agent_exit h2 drops) $(agent_exit h3 drops)" "0 0 0"
echo "# verdict: $(jq_val "$r" '.verdict.sentence')"

checks_teardown_clean
