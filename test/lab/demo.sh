#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# demo.sh - dyetrace end to end on a real overlay: builds the lab (test/lab/lab.sh), traces
# a ping and a TCP exchange from instance i1 to instance i2 and prints both reports; then a
# firewall rule on h2 drops a UDP flow and the third report gives the loss verdict (where,
# and the kernel's reason); then the task service: the tenant's task list, cancelling, and
# a task with a budget of 5 packets watched through its lifecycle to "done"; tears the lab
# down (also when interrupted). The CLI runs as the lab's default tenant (its token in
# DYETRACE_TOKEN, see lab.sh).
#
#     sudo test/lab/demo.sh          (or: sudo packaging/setup.sh demo)
#
# Environment: as lab.sh (DT_BIN, DT_LAB, DT_LAB_DIR, DT_KEEP=1 keeps configs and logs).
set -euo pipefail

# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"

PINGS=5
TCP_SPORT=40001
TCP_DPORT=5001
UDP_SPORT=40002
UDP_DPORT=5002
DGRAMS=10

step() { printf '\n==> %s\n' "$*"; }

lab_trap
step "Building the lab: 2 hosts, VXLAN $LAB_VNI over an underlay veth, 2 instances, the daemons"
lab_up

step "Creating trace tasks"
ping_task=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --proto icmp --vni "$LAB_VNI")
tcp_task=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport "$TCP_SPORT" \
	--dport "$TCP_DPORT" --proto tcp --vni "$LAB_VNI")
echo "task $ping_task: icmp $LAB_I1_IP -> $LAB_I2_IP vni $LAB_VNI"
echo "task $tcp_task: tcp $LAB_I1_IP:$TCP_SPORT -> $LAB_I2_IP:$TCP_DPORT vni $LAB_VNI"
lab_task_wait_armed "$ping_task"
lab_task_wait_armed "$tcp_task"
echo "both tasks armed"

step "Traffic: $PINGS pings and a small TCP exchange from i1 to i2"
lab_in "$LAB_I1" ping -c "$PINGS" -i 0.2 -W 1 "$LAB_I2_IP"
# An echo server in i2 (socat PIPE sends back what it reads).
lab_bg tcp-server "$LAB_I2" socat -T 5 "TCP-LISTEN:$TCP_DPORT,reuseaddr" PIPE
lab_wait_listen "$LAB_I2" "$TCP_DPORT"
printf 'hello from i1, traced by dyetrace\n' |
	lab_in "$LAB_I1" socat -t 1 - "TCP:$LAB_I2_IP:$TCP_DPORT,sourceport=$TCP_SPORT,reuseaddr"

step "Waiting for the samples to reach the analyzer"
lab_task_wait_settled "$ping_task" "$PINGS" 10 || true
lab_task_wait_settled "$tcp_task" 1 10 || true

step "Report of task $ping_task (ping)"
lab_cli report "$ping_task"
step "Report of task $tcp_task (TCP)"
lab_cli report "$tcp_task"

step "Loss: a firewall rule on h2 drops UDP from i1 to i2 port $UDP_DPORT"
udp_task=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport "$UDP_SPORT" \
	--dport "$UDP_DPORT" --proto udp --vni "$LAB_VNI")
echo "task $udp_task: udp $LAB_I1_IP:$UDP_SPORT -> $LAB_I2_IP:$UDP_DPORT vni $LAB_VNI"
lab_task_wait_armed "$udp_task"
lab_in "$LAB_H2" nft -f - <<EOF
table bridge demo_fw {
	chain forward {
		type filter hook forward priority -200; policy accept;
		ip saddr $LAB_I1_IP ip daddr $LAB_I2_IP udp dport $UDP_DPORT drop
	}
}
EOF
echo "h2: nft add rule bridge demo_fw forward ip saddr $LAB_I1_IP ip daddr $LAB_I2_IP udp dport $UDP_DPORT drop"
echo "sending $DGRAMS datagrams from i1"
for ((k = 1; k <= DGRAMS; k++)); do
	printf '%04d lost on the way\n' "$k" |
		lab_in "$LAB_I1" socat -u - "UDP:$LAB_I2_IP:$UDP_DPORT,sourceport=$UDP_SPORT,reuseaddr"
	sleep 0.05
done
lab_task_wait_judged "$udp_task" "$DGRAMS" 15 || true

step "Report of task $udp_task (UDP, dropped by the firewall on h2)"
lab_cli report -n 3 "$udp_task"

step "The same report as files: a picture, a web page, the packets for Wireshark"
out=${DT_DEMO_OUT:-$LAB_REPO/build/demo}
mkdir -p "$out"
for fmt in json svg html pcapng; do
	if lab_cli report --format "$fmt" -o "$out/task-$udp_task.$fmt" "$udp_task"; then
		echo "  $out/task-$udp_task.$fmt"
	fi
done

step "The task service: the tenant's tasks, then cancel them"
lab_cli task list
for id in "$ping_task" "$tcp_task" "$udp_task"; do
	lab_cli task cancel "$id" >/dev/null
done
lab_cli task list

step "A task with a budget of 5 packets, watched until it ends: 10 pings, 5 colored"
budget_task=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --proto icmp --vni "$LAB_VNI" --budget 5)
echo "task $budget_task: icmp $LAB_I1_IP -> $LAB_I2_IP vni $LAB_VNI, budget 5"
lab_cli task watch "$budget_task" &
watch_pid=$!
lab_task_wait_armed "$budget_task"
lab_in "$LAB_I1" ping -c 10 -i 0.1 -q "$LAB_I2_IP" >/dev/null
wait "$watch_pid" || true
lab_cli task show "$budget_task"

step "Tearing the lab down"
lab_down
echo "done"
