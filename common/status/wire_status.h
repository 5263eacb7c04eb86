// Status on the wire: the 1:1 mapping between absl::StatusCode and the wire's
// proto::ErrorCode (proto/envelope.capnp), and what a caller should do with a code.
// Codes are picked by what the caller should do: kUnavailable / kDeadlineExceeded /
// kResourceExhausted retry the call, kAborted retries higher up (refresh state,
// e.g. the placement table), kInvalidArgument / kFailedPrecondition never retry.
// Thread-safe: pure functions.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proto/envelope.capnp.h"

namespace sy {

// Every absl::StatusCode has exactly one wire code with the same number.
proto::ErrorCode ToWire(absl::StatusCode code);
// Inverse of ToWire. A number no known code has (a newer peer) maps to kUnknown.
absl::StatusCode FromWire(proto::ErrorCode code);

// The status a reply carries, rebuilt on the receiving side.
absl::Status StatusFromWire(proto::ErrorCode code, absl::string_view message);
// Fills a wire Status from an absl::Status (code and message).
void StatusToWire(const absl::Status& status, proto::Status::Builder out);

// True for codes where retrying the same call later may succeed:
// Unavailable, DeadlineExceeded, ResourceExhausted.
bool IsRetryable(const absl::Status& status);
bool IsRetryable(absl::StatusCode code);

}  // namespace sy
