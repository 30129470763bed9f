/* SPDX-License-Identifier: MIT */
/*
 * dt_api_msg.h - the messages between the CLI and the analyzer: tasks (their states,
 * statuses and specs), the requests that create, get, list and cancel them, the replies
 * DT_MSG_TASK and DT_MSG_TASKS, and DT_MSG_ERROR. Part of dt_proto.h, which consumers
 * include.
 */
#ifndef DT_API_MSG_H
#define DT_API_MSG_H

#include "dt_wire.h"

/* Task lifecycle. Append, never renumber. */
enum dt_task_state {
	DT_TASK_NEW = 0,
	DT_TASK_READY = 1,
	DT_TASK_ARMED = 2,
	DT_TASK_RUNNING = 3,
	DT_TASK_DONE = 4,
	DT_TASK_EXPIRED = 5,
	DT_TASK_CANCELLED = 6,
	DT_TASK_FAILED = 7,
	DT_TASK_STATE_MAX,
};

/*
 * Why a task is in its state: with DT_TASK_FAILED/EXPIRED/CANCELLED/DONE, and while
 * waiting. The task also carries a sentence an operator understands. Append, never
 * renumber.
 */
enum dt_task_status {
	DT_TS_OK = 0,		  /* nothing to say */
	DT_TS_NO_HOST = 1,	  /* no node hosts the source instance: nothing to arm */
	DT_TS_ARM_TIMEOUT = 2,	  /* the node that hosts it did not acknowledge in time */
	DT_TS_BUDGET_SPENT = 3,	  /* done: the packet budget was colored and judged */
	DT_TS_DURATION = 4,	  /* expired: its duration ran out */
	DT_TS_CANCELLED = 5,	  /* cancelled by its tenant */
	DT_TS_RESTARTED = 6,	  /* the analyzer restarted; see the sentence for what followed */
	DT_TS_ARM_FAILED = 7,	  /* a node hosting its first hop could not arm it (map full...) */
	DT_TS_TENANT_REMOVED = 8, /* cancelled: its tenant is no longer in the configuration */
	DT_TS_MAX,
};

/*
 * DT_MSG_TASK_CREATE: [4, 4, token, flags, saddr, daddr, sport, dport, proto, vni,
 *                      budget, duration_s, rate_pps]
 * token: the tenant's secret (every API request starts with it; < DT_TOKEN_MAX)
 * tuple names the request direction as its source instance sees it (before any NAT).
 * budget (packets to color, per direction), duration_s and rate_pps (colored packets per
 * second at most): 0 asks for the analyzer's defaults; above its maxima is refused.
 */
struct dt_task_spec {
	uint32_t flags; /* DT_TASK_F_ANYPORT | DT_TASK_DIR_* */
	struct dt_tuple tuple;
	uint32_t budget;
	uint32_t duration_s;
	uint32_t rate_pps;
};

/* Which directions a task traces (in dt_task_spec.flags; none given means request). */
#define DT_TASK_DIR_REQUEST 0x10
#define DT_TASK_DIR_REPLY 0x20
#define DT_TASK_DIR_BOTH (DT_TASK_DIR_REQUEST | DT_TASK_DIR_REPLY)

int dt_task_create_encode(msgpack_sbuffer *out, const char *token, const struct dt_task_spec *s);
int dt_task_create_decode(const void *buf, size_t len, char token[DT_TOKEN_MAX],
			  struct dt_task_spec *s);

/*
 * DT_MSG_TASK_GET: [4, 5, token, task_id], DT_MSG_REPORT_GET: [4, 7, token, task_id],
 * DT_MSG_TASK_CANCEL: [4, 12, token, task_id], DT_MSG_TASK_LIST: [4, 10, token]
 */
int dt_task_get_encode(msgpack_sbuffer *out, const char *token, uint32_t task_id);
int dt_task_get_decode(const void *buf, size_t len, char token[DT_TOKEN_MAX], uint32_t *task_id);
int dt_report_get_encode(msgpack_sbuffer *out, const char *token, uint32_t task_id);
int dt_report_get_decode(const void *buf, size_t len, char token[DT_TOKEN_MAX], uint32_t *task_id);
int dt_task_cancel_encode(msgpack_sbuffer *out, const char *token, uint32_t task_id);
int dt_task_cancel_decode(const void *buf, size_t len, char token[DT_TOKEN_MAX], uint32_t *task_id);
int dt_task_list_encode(msgpack_sbuffer *out, const char *token);
int dt_task_list_decode(const void *buf, size_t len, char token[DT_TOKEN_MAX]);

/*
 * DT_MSG_TASK: [4, 6, id, state, flags, saddr, daddr, sport, dport, proto, vni, budget,
 *               duration_s, rate_pps, created_ns, colored, delivered, tenant, status,
 *               status_text, armed_ns, ended_ns]
 * spec:      as created, with the analyzer's defaults filled in
 * colored:   packets colored at a first hop (port-in or gw-in)
 * delivered: packets whose fate is delivered
 * tenant:    the tenant's name (never another tenant's)
 * status:    enum dt_task_status, and status_text a sentence (< DT_MSG_MAX)
 * armed_ns, ended_ns: wall-clock times, 0 when not (yet)
 */
struct dt_task_info {
	uint32_t id;
	uint32_t state; /* enum dt_task_state */
	struct dt_task_spec spec;
	uint64_t created_ns;
	uint64_t colored;
	uint64_t delivered;
	char tenant[DT_NAME_MAX];
	uint32_t status; /* enum dt_task_status */
	char status_text[DT_MSG_MAX];
	uint64_t armed_ns;
	uint64_t ended_ns;
};

int dt_task_encode(msgpack_sbuffer *out, const struct dt_task_info *t);
int dt_task_decode(const void *buf, size_t len, struct dt_task_info *t);

/* DT_MSG_TASKS: [4, 11, [[task fields as in DT_MSG_TASK after the type]...]] */
struct dt_task_list {
	uint32_t n_tasks;
	struct dt_task_info *tasks; /* n_tasks, malloc'd */
};

int dt_tasks_encode(msgpack_sbuffer *out, const struct dt_task_list *l);
int dt_tasks_decode(const void *buf, size_t len, struct dt_task_list *l);
void dt_task_list_free(struct dt_task_list *l);

/* DT_MSG_ERROR: [4, 9, status, message] */
struct dt_error {
	uint32_t status; /* enum dt_status, never DT_ST_OK */
	char message[DT_MSG_MAX];
};

int dt_error_encode(msgpack_sbuffer *out, const struct dt_error *e);
int dt_error_decode(const void *buf, size_t len, struct dt_error *e);

#endif /* DT_API_MSG_H */
