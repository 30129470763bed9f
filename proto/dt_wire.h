/* SPDX-License-Identifier: MIT */
/*
 * dt_wire.h - what every message of the dyetrace wire format shares: the protocol version,
 * the sizes and limits of its fields and lists, the message types, the codec's error codes,
 * the status an API reply carries, and dt_msg_type() to read a message's header. Part of
 * dt_proto.h, which consumers include.
 */
#ifndef DT_WIRE_H
#define DT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>
#include <msgpack.h>

#include "dt_sample.h"

#define DT_PROTO_VERSION 6

#define DT_NAME_MAX 64		/* node, collector and region names, with the NUL */
#define DT_IFNAME_MAX 16	/* interface names, with the NUL (IFNAMSIZ) */
#define DT_MSG_MAX 256		/* error and status sentences, with the NUL */
#define DT_BATCH_MAX_IFACES 256 /* interface names one batch may carry */
#define DT_BATCH_MAX_SAMPLES 65536
#define DT_CONTROL_MAX_TASKS 65536
#define DT_REPORT_MAX_PACKETS 1048576
#define DT_REPORT_MAX_HOPS 64 /* hops of one packet */
#define DT_REPORT_MAX_STATS 4096
#define DT_REPORT_MAX_ROWS 4096	     /* rows of the per-hop loss table */
#define DT_REPORT_MAX_COPY_ROWS 4096 /* rows of the bystander-copies table */
#define DT_REPORT_MAX_BLIND 4096     /* windows without observation a report lists */
#define DT_HOP_ROOT 0xFFFF	     /* dt_hop.parent of a packet's first hop */
#define DT_STR_MAX 96		     /* drop reason names and kernel symbols, with the NUL */
#define DT_BATCH_MAX_STRINGS 1024    /* strings one batch may carry */
#define DT_STR_NONE 0xFFFF	     /* a string index that names no string */
#define DT_TOKEN_MAX 128	     /* tenant tokens, with the NUL */
#define DT_BATCH_MAX_NODES 4096	     /* node states one batch may carry */
#define DT_NODE_MAX_ENDPOINTS 4096   /* endpoints one node may host */
#define DT_NODE_MAX_ARM_FAILS 65536  /* keys one node reports it could not arm */
#define DT_NODE_MAX_GAPS 16	     /* windows without observation one node reports */
#define DT_NODE_MAX_COLORED 65536    /* keys whose colored count one node reports */
#define DT_LIST_MAX_TASKS 65536

enum dt_msg_type {
	DT_MSG_BATCH = 1,	 /* samples; agent -> collector -> analyzer */
	DT_MSG_ACK = 2,		 /* reply to a batch, may carry the control set */
	DT_MSG_CONTROL = 3,	 /* the armed task set; analyzer -> collector -> agents */
	DT_MSG_TASK_CREATE = 4,	 /* CLI -> analyzer */
	DT_MSG_TASK_GET = 5,	 /* CLI -> analyzer */
	DT_MSG_TASK = 6,	 /* analyzer -> CLI: one task */
	DT_MSG_REPORT_GET = 7,	 /* CLI -> analyzer */
	DT_MSG_REPORT = 8,	 /* analyzer -> CLI: a task's report */
	DT_MSG_ERROR = 9,	 /* any reply that failed */
	DT_MSG_TASK_LIST = 10,	 /* CLI -> analyzer */
	DT_MSG_TASKS = 11,	 /* analyzer -> CLI: a list of tasks */
	DT_MSG_TASK_CANCEL = 12, /* CLI -> analyzer; reply DT_MSG_TASK */
	DT_MSG_TYPE_MAX,
};

/* Codec errors: 0 or one of these negative values. */
enum dt_proto_err {
	DT_PROTO_OK = 0,
	DT_PROTO_ETRUNC = -1,	 /* buffer ends inside a message, or is not msgpack at all */
	DT_PROTO_ETYPE = -2,	 /* a field has the wrong msgpack type */
	DT_PROTO_ELENGTH = -3,	 /* an array has more or fewer elements than its layout */
	DT_PROTO_EVERSION = -4,	 /* a version other than DT_PROTO_VERSION */
	DT_PROTO_EMSGTYPE = -5,	 /* unknown message type, or not the type the decoder expects */
	DT_PROTO_ERANGE = -6,	 /* a value is out of range (too long string, unknown hook...) */
	DT_PROTO_ETRAILING = -7, /* bytes after the end of the message */
	DT_PROTO_ENOMEM = -8,
};

/* Short English text for a DT_PROTO_* code ("truncated message", ...). Never NULL. */
const char *dt_proto_strerror(int err);

/* Counters by code are indexed by -DT_PROTO_* (1 .. DT_PROTO_NCODES - 1). */
#define DT_PROTO_NCODES (1 - DT_PROTO_ENOMEM)

/* A short, stable label for a DT_PROTO_* code, for metrics ("truncated", "wrong-type",
 * ...). Never NULL. */
const char *dt_proto_errname(int err);

/*
 * Status of an API reply (DT_MSG_ERROR carries one). The CLI maps them to exit codes.
 * Append, never renumber.
 */
enum dt_status {
	DT_ST_OK = 0,
	DT_ST_INVALID = 1,   /* the request is malformed or names an impossible flow */
	DT_ST_NOT_FOUND = 2, /* no such task */
	DT_ST_REFUSED = 3,   /* well-formed but refused (overlap, limits, permissions) */
	DT_ST_FAILED = 4,    /* the service could not do it */
	DT_ST_FULL = 5,	     /* no room: a node's task map or the control set is full */
	DT_ST_MAX,
};

/* Peek at the header of a message: checks that buf starts with an array whose first two
 * elements are a supported version and a known type. Does not validate the rest. */
int dt_msg_type(const void *buf, size_t len, enum dt_msg_type *type);

#endif /* DT_WIRE_H */
