// The expert host's door: every request is checked before an actor sees it and
// decoded into that actor's message, or refused with an error that changes nothing.
// Wrong d_model, token count, tensor count, dtype, shape, element count or a NaN/Inf
// value -> InvalidArgument; a step/version pair that does not fit, a micro-batch
// outside [0, M), the wrong M -> InvalidArgument; a table naming actors the model
// lacks or replica hosts without an endpoint -> InvalidArgument; a placement epoch
// older than the accepted one -> Aborted naming the current epoch; the step protocol
// while an actor waits for its restore -> Unavailable; a state stream out to another
// node than the one asking -> FailedPrecondition. (Which actor serves a request, and
// NotFound when none here does, is HeldActors'; a replica's sender, its ParamActor's.)
// Immutable: thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/transport/envelope_codec.h"
#include "common/transport/rpc.h"
#include "proto/coordinator.capnp.h"
#include "proto/expert.capnp.h"
#include "proto/parameter.capnp.h"
#include "services/cluster/actor_key.h"
#include "services/expert_host/held_actors.h"
#include "services/expert_host/host_config.h"
#include "services/expert_host/model_actors.h"
#include "services/expert_host/param_actor.h"
#include "services/expert_host/placement_actor.h"
#include "services/expert_host/step_actor.h"

namespace sy::expert_host {

// Aborted for a request or table of placement `epoch` when `current` is newer, carrying
// the current epoch as transport::kCurrentEpochPayload (the sender refreshes and resends).
absl::Status StaleEpochError(uint64_t epoch, uint64_t current);

class RequestDoor {
 public:
  // `model` must outlive the door.
  RequestDoor(const HostConfig& config, const ModelActors* model);

  // StaleEpochError when the request's placement epoch is older than `current`, or is 0
  // while there is a current one on a host with a coordinator (epoch 0 is the static
  // placement of a host without one).
  static absl::Status CheckEpoch(const transport::DecodedMessage& request, uint64_t current, bool has_coordinator);

  // The data path. Each message gets `responder` and the request's deadline.
  absl::StatusOr<ForwardMsg> Forward(const transport::DecodedMessage& request,
                                     proto::expert::ExpertForwardRequest::Reader body,
                                     const transport::Responder& responder) const;
  absl::StatusOr<BackwardMsg> Backward(const transport::DecodedMessage& request,
                                       proto::expert::ExpertBackwardRequest::Reader body,
                                       const transport::Responder& responder) const;
  absl::StatusOr<PushMsg> Push(const transport::DecodedMessage& request, proto::parameter::PushRequest::Reader body,
                               const transport::Responder& responder) const;
  // InvalidArgument for a dtype other than f32 or bf16.
  static absl::StatusOr<PullMsg> Pull(const transport::DecodedMessage& request,
                                      proto::parameter::PullRequest::Reader body, const transport::Responder& responder);
  // Another replica's contributions to `key` (an actor of the model).
  absl::StatusOr<PeerGradientsMsg> ReplicaGradients(const transport::DecodedMessage& request,
                                                    proto::expert::ReplicaGradientsRequest::Reader body,
                                                    const cluster::ActorKey& key,
                                                    const transport::Responder& responder) const;

  // A phase of the step protocol for the StepActor; `held` tells whether an actor still
  // waits for its restore.
  absl::StatusOr<StepActorMsg> Step(proto::expert::StepRequest::Reader body, const HeldActors& held,
                                    const transport::Responder& responder) const;

  // A coordinator table pushed to this host (an update; a get is not served here): the
  // actors it places on this host and their replicas' hosts.
  absl::StatusOr<PlaceMsg> Placement(proto::coordinator::PlacementRequest::Reader body,
                                     const transport::Responder& responder) const;

  // A state stream out goes to the node that asks (its sender, the coordinator):
  // FailedPrecondition for another destination (a host-to-host move is not served).
  static absl::Status CheckStreamOut(const transport::DecodedMessage& request, proto::expert::StreamOut::Reader out);
  // A chunk of restored state: exactly one frame, index < count.
  static absl::Status CheckChunk(const transport::DecodedMessage& request, proto::expert::ChunkIn::Reader chunk);

  // The request's deadline; an hour from now when it has none.
  static absl::Time Deadline(const transport::DecodedMessage& request);

 private:
  // InvalidArgument unless micro_batch < M.
  absl::Status CheckMicroBatch(uint32_t micro_batch) const;
  // A step of the protocol (not status): step >= 1, the host's M, no actor waiting for a restore.
  absl::Status CheckStep(uint64_t step, uint32_t total_micro_batches, const HeldActors& held) const;
  absl::StatusOr<PlaceMsg> PlaceFromTable(proto::coordinator::PlacementTable::Reader update,
                                          const transport::Responder& responder) const;
  // The micro-batch and the frame of a forward's or backward's bucket, checked, into
  // `call` (with the request's deadline and `responder`) and its rows decoded into `values`.
  absl::Status CheckBucket(const transport::DecodedMessage& request, proto::expert::BucketId::Reader bucket,
                           uint32_t rows, uint32_t d_model, const transport::Responder& responder, BucketCall* call,
                           std::vector<float>* values) const;
  // The single bucket frame checked against (rows, d_model) and decoded to floats.
  absl::StatusOr<std::vector<float>> BucketFrame(const transport::DecodedMessage& request, uint32_t rows,
                                                 uint32_t d_model, proto::DType* dtype) const;

  const HostConfig config_;
  const ModelActors* model_;
  const std::string self_;  // this host's node id
};

}  // namespace sy::expert_host
