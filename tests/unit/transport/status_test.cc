// The absl::StatusCode <-> wire ErrorCode mapping is 1:1 and round-trips; retryability.
#include <set>

#include <capnp/message.h>
#include <gtest/gtest.h>

#include "common/status/wire_status.h"

namespace sy {
namespace {

TEST(WireStatus, EveryCodeRoundTripsOneToOne) {
  std::set<proto::ErrorCode> seen;
  for (int raw = 0; raw <= 16; ++raw) {
    const auto code = static_cast<absl::StatusCode>(raw);
    const proto::ErrorCode wire = ToWire(code);
    EXPECT_EQ(static_cast<int>(wire), raw) << absl::StatusCodeToString(code);
    EXPECT_EQ(FromWire(wire), code);
    EXPECT_TRUE(seen.insert(wire).second) << "two codes map to one wire value";
  }
}

TEST(WireStatus, UnknownWireValueFromNewerPeerIsUnknown) {
  EXPECT_EQ(FromWire(static_cast<proto::ErrorCode>(999)), absl::StatusCode::kUnknown);
}

TEST(WireStatus, StatusSurvivesTheEnvelope) {
  capnp::MallocMessageBuilder builder;
  auto status = builder.initRoot<proto::Status>();
  StatusToWire(absl::AbortedError("stale epoch 3"), status);
  const absl::Status back = StatusFromWire(status.getCode(), status.getMessage().cStr());
  EXPECT_EQ(back, absl::AbortedError("stale epoch 3"));
}

TEST(WireStatus, RetryableCodes) {
  EXPECT_TRUE(IsRetryable(absl::UnavailableError("")));
  EXPECT_TRUE(IsRetryable(absl::DeadlineExceededError("")));
  EXPECT_TRUE(IsRetryable(absl::ResourceExhaustedError("")));
  EXPECT_FALSE(IsRetryable(absl::AbortedError("")));
  EXPECT_FALSE(IsRetryable(absl::InvalidArgumentError("")));
  EXPECT_FALSE(IsRetryable(absl::FailedPreconditionError("")));
  EXPECT_FALSE(IsRetryable(absl::OkStatus()));
}

}  // namespace
}  // namespace sy
