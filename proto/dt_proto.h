/* SPDX-License-Identifier: MIT */
/*
 * dt_proto.h - the dyetrace wire format (msgpack) and its codec.
 *
 * Every message is one msgpack array whose first two elements are the protocol version
 * and the message type:
 *
 *     [version, type, field, field, ...]
 *
 * Fields are positional (arrays, not maps): a sample record costs ~45 bytes this way.
 * The layout of every message is documented next to its struct in the parts below and in
 * proto/README.md. Decoders are strict: the whole buffer must be exactly one message,
 * every field must have the documented msgpack type and range, and arrays must have
 * exactly the documented length. A message of any other version than
 * DT_PROTO_VERSION is refused with DT_PROTO_EVERSION (components of different versions
 * cannot talk; the error says so instead of a confusing layout error).
 *
 * Decoders never leave a partially filled struct: on error the output struct is all
 * zero and owns nothing. On success, the caller owns what the struct points to and
 * releases it with the matching *_free() function (which also zeroes the struct and is
 * safe to call on a zeroed struct).
 *
 * Encoders append one message to a msgpack_sbuffer the caller initialised; they return
 * 0 or a negative DT_PROTO_* code (only for values that cannot be represented).
 *
 * Bump DT_PROTO_VERSION whenever a message changes its layout or the meaning of a field.
 *
 * This header includes the parts, each with its messages' structs and functions:
 *
 *     dt_wire.h      version, limits, message types, error codes, dt_msg_type()
 *     dt_link_msg.h  DT_MSG_BATCH, DT_MSG_ACK, DT_MSG_CONTROL (agents, collectors, analyzer)
 *     dt_api_msg.h   tasks, their requests, DT_MSG_TASK(S), DT_MSG_ERROR (CLI, analyzer)
 *     dt_report.h    the report model and DT_MSG_REPORT
 *     dt_names.h     names of the enums for text and JSON output
 *
 * The codec's files share dt_codec_int.h, which is theirs alone.
 */
#ifndef DT_PROTO_H
#define DT_PROTO_H

#include "dt_wire.h"
#include "dt_link_msg.h"
#include "dt_api_msg.h"
#include "dt_report.h"
#include "dt_names.h"

#endif /* DT_PROTO_H */
