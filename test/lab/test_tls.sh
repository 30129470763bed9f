#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_tls.sh - mutual TLS proven at the running daemons (issue 22). Three hosts; every link
# (agents -> collector -> analyzer) is tls+tcp:// with certificates the lab makes with
# openssl (lab_up --tls). A traced ping through it loses nothing. Then, against the running
# daemons:
#   - a client without a certificate (openssl s_client) is refused by the collector;
#   - h2's agent restarted with a certificate from another CA is refused: its samples stay
#     in its spool, and once it runs with its own certificate again they arrive and the
#     ping traced meanwhile is complete;
#   - h3's agent with an expired certificate is refused;
#   - a collector presenting a certificate from another CA is refused by the agents.
# Each refusal is counted in the refusing daemon's metrics (*_tls_refused_total) and logged
# as DT-TLS-REFUSED.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtls" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtls}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=500
PINGS=20
TLS=
COLL_REFUSED=dyetrace_collector_tls_refused_total
AGENT_REFUSED=dyetrace_agent_link_tls_refused_total

# metric_above DAEMON NAME MIN: waits up to 10 s until NAME on DAEMON's page exceeds MIN.
metric_above() {
	local start v
	start=$(lab__now)
	while :; do
		v=$(lab_metric "$1" "$2")
		[[ $v =~ ^[0-9]+$ ]] && ((v > $3)) && return 0
		lab__elapsed_lt "$start" 10 || return 1
		sleep 0.25
	done
}

# logged FILE ID: waits up to 10 s until FILE has a line with message id ID.
logged() {
	local start
	start=$(lab__now)
	until grep -q "$2" "$1" 2>/dev/null; do
		lab__elapsed_lt "$start" 10 || return 1
		sleep 0.25
	done
}

# with_cert FILE NAME CERT: FILE's tls group uses CERT.pem/.key instead of NAME's own.
with_cert() {
	sed -i -e "s|$TLS/$2\.pem|$TLS/$3.pem|" -e "s|$TLS/$2\.key|$TLS/$3.key|" "$1"
}

# agent_restart HOST: HOST's agent stopped (SIGTERM) and started again on its configuration.
agent_restart() {
	lab_bg_stop "agent-$1" && lab_agent_start "$1"
}

# collector_restart: the collector stopped and started again on its configuration.
collector_restart() {
	lab_bg_stop collector &&
		lab_bg collector "$LAB_MGMT" "$LAB_BIN/dyetrace-collector" -c "$LAB_DIR/collector.conf" &&
		lab_wait_listen "$LAB_MGMT" 7400
}

checks_lab_up "lab up with --tls (3 hosts)" "lab up: 3 hosts, mutual TLS on every link" \
	--hosts 3 --tls --window-ms "$WINDOW_MS"
TLS=$LAB_DIR/tls
check "every link is tls+tcp:// (agents, collector, analyzer)" bash -c \
	"grep -q 'tls+tcp://' '$LAB_DIR/h1.conf' && grep -q 'tls+tcp://' '$LAB_DIR/collector.conf' &&
	 grep -q 'listen = \"tls+tcp://' '$LAB_DIR/analyzer.conf'"
check "the collector and the analyzer listen with mutual TLS" bash -c \
	"grep -q 'DT-INGEST-LISTEN.*mutual TLS' '$LAB_DIR/collector.log' &&
	 grep -q 'DT-INGEST-LISTEN.*mutual TLS' '$LAB_DIR/analyzer.log'"

# --- A traced flow through TLS ------------------------------------------------------------
checks_ping_task i31
check_eq "$PINGS pings i1 -> i31 answered" "$(ping_received "$LAB_I1" "$(lab_instance_ip i31)" "$PINGS")" "$PINGS"
check "every ping judged (window passed)" lab_task_wait_judged "$task" "$PINGS"
r=$(report_fetch "$task" tls-ping)
check_verdict "$r" "the trace over TLS" "$PINGS" "$PINGS" 0 0
check_eq "no handshake refused while every daemon has its own certificate" \
	"$(lab_metric collector "$COLL_REFUSED")" 0

# --- A client without a certificate -------------------------------------------------------
before=$(lab_metric collector "$COLL_REFUSED")
lab_in "$LAB_MGMT" timeout 5 openssl s_client -connect "$LAB_MGMT_IP:7400" -CAfile "$TLS/ca.pem" \
	-servername c1 </dev/null >"$LAB_DIR/s_client.log" 2>&1
check "no certificate: the collector refuses the client (metric)" metric_above collector "$COLL_REFUSED" "${before:-0}"
check "no certificate: the collector logs DT-TLS-REFUSED" logged "$LAB_DIR/collector.log" DT-TLS-REFUSED

# --- An agent with a certificate from another CA -----------------------------------------
check "a certificate for h2 from another CA" lab_tls_cert h2 --ca rogue-ca --as h2-rogue
with_cert "$LAB_DIR/h2.conf" h2 h2-rogue
before=$(lab_metric collector "$COLL_REFUSED")
check "h2's agent restarted with it" agent_restart h2
check "another CA: the collector refuses h2's agent (metric)" metric_above collector "$COLL_REFUSED" "$before"
checks_ping_task i2
rogue_task=$task
check_eq "$PINGS pings i1 -> i2 while h2's agent is refused" "$(ping_received "$LAB_I1" "$LAB_I2_IP" "$PINGS")" "$PINGS"
sleep 1
check "h2's batches wait in its spool, none acknowledged (link down)" bash -c \
	"[[ \$(ip netns exec '$LAB_P-h2' curl -sf http://127.0.0.1:9101/metrics |
	       awk '\$1 == \"dyetrace_agent_link_connected\" { print \$2 }') == 0 ]]"
with_cert "$LAB_DIR/h2.conf" h2-rogue h2
check "h2's agent restarted with its own certificate" agent_restart h2
check "the ping traced while h2 was refused: every packet judged" lab_task_wait_judged "$rogue_task" "$PINGS" 30
r=$(report_fetch "$rogue_task" tls-rogue)
check_verdict "$r" "its samples arrived from h2's spool, nothing lost" "$PINGS" "$PINGS" 0 0

# --- An expired certificate ---------------------------------------------------------------
check "an expired certificate for h3 (from the right CA)" lab_tls_cert h3 --expired --as h3-expired
with_cert "$LAB_DIR/h3.conf" h3 h3-expired
before=$(lab_metric collector "$COLL_REFUSED")
check "h3's agent restarted with it" agent_restart h3
check "expired: the collector refuses h3's agent (metric)" metric_above collector "$COLL_REFUSED" "$before"
with_cert "$LAB_DIR/h3.conf" h3-expired h3
check "h3's agent back on its own certificate" agent_restart h3

# --- A collector the agents cannot trust --------------------------------------------------
check "a certificate for c1 from another CA" lab_tls_cert c1 --ca rogue-ca --as c1-rogue
with_cert "$LAB_DIR/collector.conf" c1 c1-rogue
a_before=$(lab_metric agent-h1 "$AGENT_REFUSED")
check "the collector restarted with it" collector_restart
check "untrusted collector: h1's agent refuses it (metric)" metric_above agent-h1 "$AGENT_REFUSED" "${a_before:-0}"
check "untrusted collector: h1's agent logs DT-TLS-REFUSED" logged "$LAB_DIR/agent-h1.log" DT-TLS-REFUSED

checks_teardown_clean
checks_finish
