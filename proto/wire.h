/*
 * wire.h - the one framing and decoding module both sides link.
 *
 * A frame is a 4-byte big-endian length followed by that many bytes of one
 * protobuf message (Request from a client, Response from the daemon). The
 * length is checked against the maximum before anything is allocated, and a
 * decoded request is checked for what protobuf-c does not check (op and kind
 * ranges, string sizes) before anyone looks at it.
 */
#ifndef PT_WIRE_H
#define PT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "pythread.pb-c.h"

#define PT_PROTOCOL_VERSION 2u
#define PT_WIRE_HEADER      4u
#define PT_WIRE_MAX_FRAME   65536u /* default maximum message size */
#define PT_WIRE_NAME_MAX    255u   /* name and client_name */
#define PT_WIRE_GLOB_MAX    1024u  /* OP_LIST pattern */
/* The top bit of a handle marks a cluster object's (pythreadd --etcd). */
#define PT_WIRE_CLUSTER_HANDLE 0x80000000u
#define PT_WIRE_RESUME_KEY_MAX 32u /* HelloArgs.resume_key */

/* Big-endian length prefix. */
uint32_t pt_wire_len_get(const uint8_t hdr[PT_WIRE_HEADER]);
void pt_wire_len_put(uint8_t hdr[PT_WIRE_HEADER], uint32_t len);

/*
 * A bump allocator for decoding: protobuf-c's mallocs come from one buffer
 * that is reset after each message, so decoding allocates nothing and an
 * input that would unpack larger than the buffer fails cleanly.
 */
typedef struct pt_wire_arena {
    ProtobufCAllocator allocator;
    uint8_t *buf;
    size_t cap;
    size_t used;
} pt_wire_arena;

/* Arena over buf (which must stay valid); cap of 4x the maximum frame is
 * ample for any message that fits a frame. */
void pt_wire_arena_init(pt_wire_arena *a, void *buf, size_t cap);
void pt_wire_arena_reset(pt_wire_arena *a);

/* Size of the whole frame (header + message). */
size_t pt_wire_request_frame_size(const Pythread__Request *req);
size_t pt_wire_response_frame_size(const Pythread__Response *resp);
/* Clear the presence of fields that hold their schema default (blocking
 * true, timeout -1, count 1, the open's value 1): the decoder fills the default in, so
 * they need not be packed, sent and parsed. */
void pt_wire_request_omit_defaults(Pythread__Request *req);

/*
 * At least the size of the whole frame, found without protobuf-c's sizing
 * walk over every field (a third of what packing costs) when the message
 * carries no submessage but OpenArgs, HelloArgs or State (every call but
 * inspection): each field at its widest plus the strings' lengths.
 * Otherwise the exact size.
 */
size_t pt_wire_request_frame_bound(const Pythread__Request *req);
size_t pt_wire_response_frame_bound(const Pythread__Response *resp);
/* Write header + message into out, which holds pt_wire_*_frame_bound (or
 * _size) bytes; returns the size of the frame written. */
size_t pt_wire_request_frame_pack(const Pythread__Request *req, uint8_t *out);
size_t pt_wire_response_frame_pack(const Pythread__Response *resp, uint8_t *out);

/* A request's submessages, or their defaults when absent (never NULL). */
const Pythread__OpenArgs *pt_wire_open_args(const Pythread__Request *r);
const Pythread__HelloArgs *pt_wire_hello_args(const Pythread__Request *r);
const Pythread__PageArgs *pt_wire_page_args(const Pythread__Request *r);

/*
 * Decode one message body (without its header) from the arena. Returns NULL
 * and a reason in err when the bytes are not a valid message or the message
 * breaks a rule protobuf-c does not check (unknown op, kind or flag bits,
 * id 0, oversized strings).
 */
Pythread__Request *pt_wire_request_decode(pt_wire_arena *a, const uint8_t *body, size_t len,
                                          char *err, size_t errlen);
/* The rules of pt_wire_request_decode beyond protobuf-c's, for a Request
 * decoded some other way (a journal record): NULL, or what it breaks. */
const char *pt_wire_request_check(const Pythread__Request *r);
/* Is op an inspection (status, list, show, sessions, metrics, deadlocks)?
 * The daemon answers those itself, never journals them, and answers them in
 * a restart's grace too. */
int pt_wire_op_inspects(int op);
Pythread__Response *pt_wire_response_decode(pt_wire_arena *a, const uint8_t *body, size_t len,
                                            char *err, size_t errlen);

#endif /* PT_WIRE_H */
