/* SPDX-License-Identifier: MIT */
/*
 * dt_names.h - the names of the wire's enums, for text and JSON output. Part of dt_proto.h,
 * which consumers include.
 */
#ifndef DT_NAMES_H
#define DT_NAMES_H

/* Names used in text and JSON output. Never NULL ("?" for out-of-range values). */
const char *dt_hook_name(unsigned int hook);	    /* "port-in", "uplink-out", "gw-out",
						     * "gw-in", "drop" */
const char *dt_direction_name(unsigned int dir);    /* "request", "reply" */
const char *dt_fate_name(unsigned int fate);	    /* "delivered", "dropped", "vanished",
						     * "in-flight", ..., "unobserved" */
const char *dt_branch_name(unsigned int branch);    /* "destination", "copy" */
const char *dt_copy_end_name(unsigned int end);	    /* "filtered", "dropped", "vanished",
						     * "in-flight", "delivered" ("" for none) */
const char *dt_task_state_name(unsigned int state); /* "running", ... */
const char *dt_status_name(unsigned int status);    /* "not-found", ... */
const char *dt_task_status_name(unsigned int ts);   /* "ok", "no-host", "arm-timeout",
						     * "budget-spent", "duration",
						     * "cancelled", "restarted", "arm-failed",
						     * "tenant-removed" */
const char *dt_loss_name(unsigned int loss);	    /* "ring-full", ... */
const char *dt_gap_cause_name(unsigned int cause);  /* "stopped", "crashed", "detached", "silent" */
const char *dt_gap_cause_words(unsigned int cause); /* "agent stopped", "agent crashed",
						     * "programs detached": for sentences */

#endif /* DT_NAMES_H */
