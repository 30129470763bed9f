/* SPDX-License-Identifier: MIT */
/*
 * dt_names.c - the names of the wire's enums (hooks, directions, fates, branches, copy ends,
 * task states and statuses, API statuses, loss reasons) used in text and JSON output.
 */
#include <stddef.h>

#include "dt_proto.h"

static const char *name_of(const char *const *names, size_t n, unsigned int v)
{
	return v < n && names[v] != NULL ? names[v] : "?";
}

#define NAME_OF(names, v) name_of(names, sizeof(names) / sizeof(names[0]), v)

const char *dt_hook_name(unsigned int hook)
{
	/* clang-format off */
	static const char *const names[DT_HOOK_MAX] = {
		[DT_HOOK_PORT_IN] = "port-in",
		[DT_HOOK_PORT_OUT] = "port-out",
		[DT_HOOK_UPLINK_IN] = "uplink-in",
		[DT_HOOK_UPLINK_OUT] = "uplink-out",
		[DT_HOOK_GW_OUT] = "gw-out",
		[DT_HOOK_GW_IN] = "gw-in",
		[DT_HOOK_DROP] = "drop",
	};
	/* clang-format on */

	return NAME_OF(names, hook);
}

const char *dt_direction_name(unsigned int dir)
{
	static const char *const names[DT_DIR_MAX] = {
		[DT_DIR_REQUEST] = "request",
		[DT_DIR_REPLY] = "reply",
	};

	return NAME_OF(names, dir);
}

const char *dt_fate_name(unsigned int fate)
{
	/* clang-format off */
	static const char *const names[DT_FATE_MAX] = {
		[DT_FATE_DELIVERED] = "delivered",
		[DT_FATE_DROPPED] = "dropped",
		[DT_FATE_VANISHED] = "vanished",
		[DT_FATE_IN_FLIGHT] = "in-flight",
		[DT_FATE_REASSEMBLED] = "reassembled",
		[DT_FATE_SEGMENTED] = "segmented",
		[DT_FATE_UNOBSERVED] = "unobserved",
	};
	/* clang-format on */

	return NAME_OF(names, fate);
}

const char *dt_branch_name(unsigned int branch)
{
	static const char *const names[DT_BRANCH_MAX] = {
		[DT_BRANCH_DEST] = "destination",
		[DT_BRANCH_COPY] = "copy",
	};

	return NAME_OF(names, branch);
}

const char *dt_copy_end_name(unsigned int end)
{
	static const char *const names[DT_COPY_MAX] = {
		[DT_COPY_NONE] = "",
		[DT_COPY_FILTERED] = "filtered",
		[DT_COPY_DROPPED] = "dropped",
		[DT_COPY_VANISHED] = "vanished",
		[DT_COPY_IN_FLIGHT] = "in-flight",
		[DT_COPY_DELIVERED] = "delivered",
	};

	return NAME_OF(names, end);
}

const char *dt_task_state_name(unsigned int state)
{
	static const char *const names[DT_TASK_STATE_MAX] = {
		[DT_TASK_NEW] = "new",
		[DT_TASK_READY] = "ready",
		[DT_TASK_ARMED] = "armed",
		[DT_TASK_RUNNING] = "running",
		[DT_TASK_DONE] = "done",
		[DT_TASK_EXPIRED] = "expired",
		[DT_TASK_CANCELLED] = "cancelled",
		[DT_TASK_FAILED] = "failed",
	};

	return NAME_OF(names, state);
}

const char *dt_status_name(unsigned int status)
{
	static const char *const names[DT_ST_MAX] = {
		[DT_ST_OK] = "ok",
		[DT_ST_INVALID] = "invalid",
		[DT_ST_NOT_FOUND] = "not-found",
		[DT_ST_REFUSED] = "refused",
		[DT_ST_FAILED] = "failed",
		[DT_ST_FULL] = "full",
	};

	return NAME_OF(names, status);
}

const char *dt_task_status_name(unsigned int ts)
{
	static const char *const names[DT_TS_MAX] = {
		[DT_TS_OK] = "ok",
		[DT_TS_NO_HOST] = "no-host",
		[DT_TS_ARM_TIMEOUT] = "arm-timeout",
		[DT_TS_BUDGET_SPENT] = "budget-spent",
		[DT_TS_DURATION] = "duration",
		[DT_TS_CANCELLED] = "cancelled",
		[DT_TS_RESTARTED] = "restarted",
		[DT_TS_ARM_FAILED] = "arm-failed",
		[DT_TS_TENANT_REMOVED] = "tenant-removed",
	};

	return NAME_OF(names, ts);
}

const char *dt_loss_name(unsigned int loss)
{
	static const char *const names[DT_LOSS_MAX] = {
		[DT_LOSS_RING_FULL] = "ring-full",     [DT_LOSS_QUEUE_FULL] = "queue-full",
		[DT_LOSS_BAD_VERSION] = "bad-version", [DT_LOSS_REJECTED] = "rejected",
		[DT_LOSS_SPOOL_FULL] = "spool-full",   [DT_LOSS_AGENT_CRASH] = "agent-crash",
	};

	return NAME_OF(names, loss);
}

const char *dt_gap_cause_name(unsigned int cause)
{
	static const char *const names[DT_GAP_CAUSE_MAX] = {
		[DT_GAP_STOPPED] = "stopped",
		[DT_GAP_CRASHED] = "crashed",
		[DT_GAP_DETACHED] = "detached",
		[DT_GAP_SILENT] = "silent",
	};

	return NAME_OF(names, cause);
}

const char *dt_gap_cause_words(unsigned int cause)
{
	static const char *const words[DT_GAP_CAUSE_MAX] = {
		[DT_GAP_STOPPED] = "agent stopped",
		[DT_GAP_CRASHED] = "agent crashed",
		[DT_GAP_DETACHED] = "programs detached",
		[DT_GAP_SILENT] = "node not heard",
	};

	return NAME_OF(words, cause);
}
