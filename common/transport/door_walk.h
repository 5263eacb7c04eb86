// The door check's walk over a received struct (the envelope, a body, a message
// frame): it reads every pointer field the schema declares, as the type the schema
// gives it, so a later typed read of any field cannot throw. Texts with a NUL byte
// inside are refused: names are read with cStr(), where "host-1\0x" would pass for
// "host-1" and "\0" for "". Structure errors (out-of-bounds pointers, a list whose
// element size does not fit its declared type, the traversal limit) are refused too.
// Refusals are kj exceptions, as capnp's own.
//
// A plan per struct schema (its pointer fields, their kinds and nested plans, its
// union's pointer members) is built once and kept for the process, so a walk reads
// pointers by index through capnp's AnyStruct API instead of the dynamic API's
// per-field schema lookups (those were ~4 us of a 4 KiB request's round trip).
// Scalars need no check; AnyPointer and capability fields are not read (a body is
// checked on its own, by its own schema). Thread-safe.
#pragma once

#include <capnp/any.h>
#include <capnp/schema.h>

namespace sy::transport {

// Reads every field of `body` as struct `schema` (see above); throws on a refusal.
void ReadEveryField(capnp::AnyPointer::Reader body, capnp::StructSchema schema);

}  // namespace sy::transport
