// Admin replies inline or in a data frame (see admin_reply.h).
#include "services/cluster/admin_reply.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace sy::cluster {

void ReplyAdmin(capnp::MallocMessageBuilder& header, transport::Responder& responder) {
  auto envelope = header.getRoot<proto::Envelope>();
  auto body = envelope.getBody().getAs<proto::admin::AdminReply>().asReader();
  if (body.totalSize().wordCount * sizeof(capnp::word) <= kInlineAdminReplyBytes) return responder.Reply(header);
  capnp::MallocMessageBuilder bulk;
  bulk.setRoot(body);
  transport::Frame frame = transport::EncodeHeader(bulk);  // a whole message, 8-byte words like a header
  capnp::MallocMessageBuilder small;
  auto out = small.initRoot<proto::Envelope>();
  out.setKind(envelope.getKind());
  out.setPlacementEpoch(envelope.getPlacementEpoch());
  out.getBody().initAs<proto::admin::AdminReply>().setInFrame();
  transport::SetTensor(out.initTensors(1)[0], kAdminReplyFrame, proto::TensorRole::OTHER, proto::DType::F32,
                       {static_cast<uint64_t>(frame.size() / 4)});
  responder.Reply(small, {std::move(frame)});
}

absl::StatusOr<AdminReplyMessage> AdminReplyMessage::Read(transport::DecodedMessage message,
                                                          const transport::EnvelopeLimits& limits) {
  AdminReplyMessage out(std::move(message));
  absl::StatusOr<proto::admin::AdminReply::Reader> body = out.message_.Body<proto::admin::AdminReply>();
  if (!body.ok()) return body.status();
  if (body->which() != proto::admin::AdminReply::IN_FRAME) {
    out.reply_ = *body;
    return out;
  }
  auto tensors = out.message_.envelope().getTensors();
  if (tensors.size() != 1 || tensors[0].getName() != kAdminReplyFrame) {
    return absl::InvalidArgumentError(
        absl::StrCat("admin reply in a frame comes without its one \"", kAdminReplyFrame, "\" data frame"));
  }
  auto frame = transport::FrameMessage<proto::admin::AdminReply>::Decode(out.message_.data(0), limits);
  if (!frame.ok()) return absl::InvalidArgumentError(absl::StrCat("admin reply: ", frame.status().message()));
  out.frame_.emplace(*std::move(frame));
  out.reply_ = out.frame_->root();
  if (out.reply_.which() == proto::admin::AdminReply::IN_FRAME) {
    return absl::InvalidArgumentError("the admin reply in the data frame says inFrame again");
  }
  return out;
}

}  // namespace sy::cluster
