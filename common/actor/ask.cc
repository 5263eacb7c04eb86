// Reply tokens: delivery bookkeeping and the "dropped without a reply" failure.
#include "common/actor/ask.h"

namespace sy::actor::internal {

ReplyToken::~ReplyToken() {
  if (!delivered_) {
    sink_->DeliverError(absl::UnavailableError("actor '" + actor_name_ +
                                               "' stopped before replying to the request"));
  }
}

void ReplyToken::Deliver(ErasedValue value) {
  if (delivered_) return;
  delivered_ = true;
  sink_->Deliver(std::move(value));
}

void ReplyToken::DeliverError(absl::Status status) {
  if (delivered_) return;
  delivered_ = true;
  sink_->DeliverError(std::move(status));
}

}  // namespace sy::actor::internal
