#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# demo.sh - dyetrace end to end on a real overlay: builds the lab (test/lab/lab.sh), traces
# a ping and a TCP exchange from instance i1 to instance i2, prints both reports and tears
# the lab down (also when interrupted).
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

step "Tearing the lab down"
lab_down
echo "done"
