// Admin replies of any size. A header holds metadata and is capped
// (EnvelopeLimits::max_header_bytes, 64 KiB), but some admin replies grow with the run
// or the cluster: the host load series (one entry per step), experts, hosts, the
// checkpoint list, rebalance moves. Past about 750 steps of 2 hosts the series alone no
// longer fit a header and the client dropped the reply as malformed. ReplyAdmin sends a reply
// as it is while its body is small, and otherwise as an `inFrame` body with the whole
// AdminReply in the data frame "admin_reply"; AdminReplyMessage gives the caller the
// AdminReply wherever it travelled, so callers (syctl, sy-local) never see the difference.
//
// Thread-compatible.
//
//   ReplyAdmin(builder, responder);                                  // coordinator
//   auto reply = AdminReplyMessage::Read(*std::move(decoded));       // client
//   for (auto step : reply->reply().getHostLoadSeries()) ...
#pragma once

#include <cstddef>
#include <optional>

#include <capnp/message.h>

#include "absl/status/statusor.h"
#include "common/transport/envelope_codec.h"
#include "common/transport/frame_message.h"
#include "common/transport/rpc.h"
#include "proto/admin.capnp.h"

namespace sy::cluster {

// Name of the data frame holding an inFrame reply's AdminReply.
inline constexpr char kAdminReplyFrame[] = "admin_reply";
// Bodies up to this size stay in the header: half the default header limit, so the
// envelope's own fields always fit in the rest.
inline constexpr size_t kInlineAdminReplyBytes = transport::EnvelopeLimits{}.max_header_bytes / 2;

// Replies through `responder` with `header`, an envelope whose body is an AdminReply:
// as it is when the body takes at most kInlineAdminReplyBytes, else as an inFrame body
// (same kind and placement epoch) with the AdminReply in the data frame "admin_reply".
void ReplyAdmin(capnp::MallocMessageBuilder& header, transport::Responder& responder);

// The AdminReply of one reply to an admin request, read from its body or its frame.
class AdminReplyMessage {
 public:
  // InvalidArgument when the body is unreadable, or an inFrame body comes without its
  // one "admin_reply" frame, or with a frame that fails the door checks
  // (FrameMessage under `limits`) or itself says inFrame.
  static absl::StatusOr<AdminReplyMessage> Read(transport::DecodedMessage message,
                                                const transport::EnvelopeLimits& limits = {});

  proto::admin::AdminReply::Reader reply() const { return reply_; }

 private:
  explicit AdminReplyMessage(transport::DecodedMessage message) : message_(std::move(message)) {}
  transport::DecodedMessage message_;
  std::optional<transport::FrameMessage<proto::admin::AdminReply>> frame_;  // for an inFrame reply
  proto::admin::AdminReply::Reader reply_;  // into message_ or frame_
};

}  // namespace sy::cluster
