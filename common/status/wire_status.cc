// Implementation of the absl::StatusCode <-> proto::ErrorCode mapping.
#include "common/status/wire_status.h"

#include <string>

namespace sy {
namespace {

// The two enums share numbers by construction (envelope.capnp lists the codes in
// absl's order); this table states the mapping explicitly and a test checks it.
constexpr struct {
  absl::StatusCode absl_code;
  proto::ErrorCode wire_code;
} kPairs[] = {
    {absl::StatusCode::kOk, proto::ErrorCode::OK},
    {absl::StatusCode::kCancelled, proto::ErrorCode::CANCELLED},
    {absl::StatusCode::kUnknown, proto::ErrorCode::UNKNOWN},
    {absl::StatusCode::kInvalidArgument, proto::ErrorCode::INVALID_ARGUMENT},
    {absl::StatusCode::kDeadlineExceeded, proto::ErrorCode::DEADLINE_EXCEEDED},
    {absl::StatusCode::kNotFound, proto::ErrorCode::NOT_FOUND},
    {absl::StatusCode::kAlreadyExists, proto::ErrorCode::ALREADY_EXISTS},
    {absl::StatusCode::kPermissionDenied, proto::ErrorCode::PERMISSION_DENIED},
    {absl::StatusCode::kResourceExhausted, proto::ErrorCode::RESOURCE_EXHAUSTED},
    {absl::StatusCode::kFailedPrecondition, proto::ErrorCode::FAILED_PRECONDITION},
    {absl::StatusCode::kAborted, proto::ErrorCode::ABORTED},
    {absl::StatusCode::kOutOfRange, proto::ErrorCode::OUT_OF_RANGE},
    {absl::StatusCode::kUnimplemented, proto::ErrorCode::UNIMPLEMENTED},
    {absl::StatusCode::kInternal, proto::ErrorCode::INTERNAL},
    {absl::StatusCode::kUnavailable, proto::ErrorCode::UNAVAILABLE},
    {absl::StatusCode::kDataLoss, proto::ErrorCode::DATA_LOSS},
    {absl::StatusCode::kUnauthenticated, proto::ErrorCode::UNAUTHENTICATED},
};

}  // namespace

proto::ErrorCode ToWire(absl::StatusCode code) {
  for (const auto& pair : kPairs) {
    if (pair.absl_code == code) return pair.wire_code;
  }
  return proto::ErrorCode::UNKNOWN;  // absl never produces other values
}

absl::StatusCode FromWire(proto::ErrorCode code) {
  for (const auto& pair : kPairs) {
    if (pair.wire_code == code) return pair.absl_code;
  }
  return absl::StatusCode::kUnknown;
}

absl::Status StatusFromWire(proto::ErrorCode code, absl::string_view message) {
  return absl::Status(FromWire(code), message);
}

void StatusToWire(const absl::Status& status, proto::Status::Builder out) {
  out.setCode(ToWire(status.code()));
  const std::string message(status.message());
  out.setMessage(message.c_str());
}

bool IsRetryable(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded ||
         code == absl::StatusCode::kResourceExhausted;
}

bool IsRetryable(const absl::Status& status) { return IsRetryable(status.code()); }

}  // namespace sy
