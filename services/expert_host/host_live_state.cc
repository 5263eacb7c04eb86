// The expert host's side of live moves (proto/expert.capnp LiveStateRequest): a chunk of
// an actor's state streamed by the host that held it is checked at the door (a host
// sends it, for itself; one frame; the placement expects the actor from that host at
// that version; the chunks follow each other, have the actor's real size and, whole,
// the announced checksum; the values are finite) and, once whole, installed on the
// waiting actor: nothing else on this host changes and nothing is rolled back (unlike
// a checkpoint restore, host_state_stream.cc). With --kill_self_in_live_move=destination
// (tests) the host dies when the first chunk arrives.
#include <signal.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/transport/refusals.h"
#include "proto/expert.capnp.h"
#include "services/cluster/peer_roles.h"
#include "services/expert_host/host_metrics.h"
#include "services/expert_host/host_reply.h"
#include "services/expert_host/host_service.h"

namespace sy::expert_host {
namespace {

void ReplyLive(transport::Responder& responder, const cluster::ActorKey& actor, uint32_t chunks, bool complete) {
  ReplyWith<proto::expert::LiveStateReply>(responder, proto::MessageKind::LIVE_STATE, [&](auto reply) {
    actor.ToProto(reply.initActor());
    reply.setChunksReceived(chunks);
    reply.setComplete(complete);
  });
}

}  // namespace

absl::Status HostService::HandleLiveState(const transport::DecodedMessage& request, transport::Responder responder) {
  auto body = request.Body<proto::expert::LiveStateRequest>();
  if (!body.ok()) return body.status();
  absl::StatusOr<cluster::ActorKey> key = cluster::ActorKey::FromProto(body->getActor());
  if (!key.ok()) return key.status();
  if (absl::Status s = model_.CheckKey(*key); !s.ok()) return absl::NotFoundError(s.message());
  const std::string sender = body->getSender().cStr();
  if (absl::Status s = cluster::CheckSenderIsNode(sender, request.message(), registry_); !s.ok()) return s;
  const auto chunk = body->getChunk();
  if (absl::Status s = RequestDoor::CheckChunk(request, chunk); !s.ok()) return s;
  if (config_.kill_self_in_live_move == "destination") raise(SIGKILL);  // fault injection: dies receiving it
  absl::StatusOr<std::optional<std::string>> whole =
      arriving_.Add(*key, sender, chunk, request.data(0), static_cast<uint64_t>(model_.StateBytes(*key)));
  if (!whole.ok()) return transport::Refuse(registry_, "live_state", whole.status());
  if (!whole->has_value()) {
    ReplyLive(responder, *key, chunk.getIndex() + 1, false);
    return absl::OkStatus();
  }
  placement_->Tell(WithActorMsg{*key, [this, responder, key = *key, chunks = chunk.getCount(),
                                       version = chunk.getVersion(), sender,
                                       bytes = **std::move(whole)](
                                          absl::StatusOr<std::shared_ptr<ParamActor>> actor) mutable {
    if (!actor.ok()) return FailAndCount(registry_, responder, actor.status());
    LiveInstallMsg install;
    install.version = version;
    install.bytes = std::move(bytes);
    install.done = [this, responder, key, chunks, version, sender](absl::Status s) mutable {
      if (!s.ok()) return FailAndCount(registry_, responder, s);
      arriving_.Forget(key);
      SY_LOG(INFO) << key.ToString() << " moved here live from " << sender << " at version " << version;
      ReplyLive(responder, key, chunks, true);
    };
    (*actor)->Tell(std::move(install));
  }});
  return absl::OkStatus();
}

}  // namespace sy::expert_host
