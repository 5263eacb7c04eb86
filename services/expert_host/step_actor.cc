// The host's step bookkeeping (see step_actor.h).
#include "services/expert_host/step_actor.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/nested_size.h"
#include "common/log/log.h"
#include "proto/expert.capnp.h"
#include "services/expert_host/host_metrics.h"
#include "services/expert_host/host_reply.h"

namespace sy::expert_host {
namespace {

// Answers a step-protocol request about `step` with a StepReply that `fill` completes.
template <class Fill>
void ReplyStep(transport::Responder& responder, uint64_t step, Fill&& fill) {
  ReplyWith<proto::expert::StepReply>(responder, proto::MessageKind::STEP_COMMIT, [&](auto reply) {
    reply.setStep(step);
    fill(reply);
  });
}

// `step` is applied on this host, which is at `version` (>= step).
void ReplyApplied(transport::Responder& responder, uint64_t step, uint64_t version) {
  ReplyStep(responder, step, [&](auto reply) {
    reply.setApplied(true);
    reply.setVersion(version);
  });
}

}  // namespace

StepActor::StepActor(actor::Executor& executor, std::vector<std::shared_ptr<ParamActor>> actors,
                     int num_micro_batches, absl::Duration step_timeout, metrics::Registry* registry)
    : Actor(executor, "step", registry),
      actors_(std::move(actors)),
      m_(num_micro_batches),
      step_timeout_(step_timeout),
      registry_(registry),
      timeouts_(&registry->GetCounter("sy_host_step_timeouts_total",
                                      "Steps that stayed incomplete past the step timeout.")),
      step_seconds_(&registry->GetHistogram("sy_host_step_seconds", "Time from a step's first request to its apply.",
                                            {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60})) {
  Reset();
  Become("serving", [this](StepActorMsg& msg) { Handle(msg); });
}

void StepActor::Handle(StepActorMsg& msg) {
  if (auto* m = std::get_if<CommitMsg>(&msg)) {
    OnCommit(*m);
  } else if (auto* m = std::get_if<GatherMsg>(&msg)) {
    OnGather(*m);
  } else if (auto* m = std::get_if<StepApplyMsg>(&msg)) {
    OnApply(*m);
  } else if (auto* m = std::get_if<HostStatusMsg>(&msg)) {
    OnStatus(*m);
  } else if (auto* m = std::get_if<StepSeenMsg>(&msg)) {
    if (m->step == version_ + 1) Open(m->step);
  } else if (auto* m = std::get_if<FinalizedMsg>(&msg)) {
    OnFinalized(*m);
  } else if (auto* m = std::get_if<ActorStatusMsg>(&msg)) {
    OnActorStatus(*m);
  } else if (auto* m = std::get_if<RollbackMsg>(&msg)) {
    AbortOpenStep(absl::AbortedError(absl::StrCat("rolled back to step ", m->version,
                                                  " (checkpoint restore): replay from step ", m->version + 1)));
    version_ = m->version;
    applied_version_.store(version_);
    pending_after_version_ = 0;  // a restore installs the placement at once
    MaybeInstallActors();
    SY_LOG(INFO) << "rolled back to step " << version_;
  } else if (auto* m = std::get_if<SetActorsMsg>(&msg)) {
    pending_actors_ = std::move(m->actors);
    pending_after_version_ = m->after_version;
    if (m->catch_up && version_ < m->after_version) {
      Reset();
      version_ = m->after_version;
      applied_version_.store(version_);
      SY_LOG(INFO) << "joining at step " << version_ << " (its actors come live at that version)";
    }
    MaybeInstallActors();
  } else if (auto* m = std::get_if<DropOpenStepMsg>(&msg)) {
    if (applying_) {
      pending_drop_ = std::move(*m);  // the apply under way finishes on every actor first
    } else {
      DropOpenStep(*m);
    }
  } else if (auto* m = std::get_if<AppliedMsg>(&msg)) {
    if (m->step != version_ + 1 || m->round != round_ || !applying_) return;
    apply_error_.Update(m->status);
    if (++applied_ < actors_.size()) return;
    if (!apply_error_.ok()) {
      SY_LOG(ERROR) << "apply of step " << m->step << " failed: " << apply_error_;
      for (auto& r : appliers_) FailAndCount(registry_, r, apply_error_);
      appliers_.clear();
      applying_ = false;
      applied_ = 0;
      apply_error_ = absl::OkStatus();
      ++round_;  // answers of the failed attempt still on their way are ignored
      DropIfAsked();
      return;
    }
    version_ = m->step;
    applied_version_.store(version_);
    if (opened_) step_seconds_->Observe(absl::ToDoubleSeconds(absl::Now() - opened_at_));
    for (auto& r : appliers_) {
      ReplyStep(r, m->step, [&](auto reply) {
        reply.setApplied(true);
        reply.setVersion(version_);
        reply.setReceived(static_cast<uint32_t>(m_));
      });
    }
    Reset();
    MaybeInstallActors();
    DropIfAsked();
  }
}

void StepActor::AbortOpenStep(const absl::Status& why) {
  for (auto& r : gathers_) FailAndCount(registry_, r, why);
  for (auto& r : appliers_) FailAndCount(registry_, r, why);
  Reset();
}

void StepActor::DropOpenStep(const DropOpenStepMsg& m) {
  for (const std::shared_ptr<ParamActor>& actor : actors_) actor->Tell(DropStepMsg{});
  AbortOpenStep(absl::AbortedError(
      absl::StrCat("step ", version_ + 1, " was dropped (a host failed over): the trainers redo it")));
  SY_LOG(INFO) << "failover: dropped the open step " << version_ + 1 << " of " << actors_.size() << " actors";
  m.done(version_);
}

void StepActor::DropIfAsked() {
  if (!pending_drop_) return;
  const DropOpenStepMsg drop = *std::exchange(pending_drop_, std::nullopt);
  DropOpenStep(drop);
}

void StepActor::MaybeInstallActors() {
  if (!pending_actors_.has_value() || finalizing_ || applying_ || version_ < pending_after_version_) return;
  actors_ = *std::move(pending_actors_);
  pending_actors_.reset();
  squares_.assign(actors_.size(), {});
}

void StepActor::Reset() {
  ++round_;
  if (timer_ != 0) CancelTimer(timer_);
  timer_ = 0;
  opened_ = false;
  timed_out_ = false;
  committed_.clear();
  finalizing_ = false;
  finalized_ = 0;
  finalize_error_ = absl::OkStatus();
  squares_.assign(actors_.size(), {});
  gathers_.clear();
  applying_ = false;
  applied_ = 0;
  apply_error_ = absl::OkStatus();
  appliers_.clear();
}

std::weak_ptr<StepActor> StepActor::Weak() {
  return std::static_pointer_cast<StepActor>(this->shared_from_this());
}

void StepActor::TellIfAlive(const std::weak_ptr<StepActor>& self, StepActorMsg msg) {
  if (std::shared_ptr<StepActor> alive = self.lock()) alive->Tell(std::move(msg));
}

void StepActor::Open(uint64_t step) {
  if (opened_ || step != version_ + 1) return;
  opened_ = true;
  opened_at_ = absl::Now();
  timer_ = After(absl::ToChronoNanoseconds(step_timeout_), [this, step] { OnTimeout(step); });
}

std::vector<uint32_t> StepActor::Missing() const {
  std::vector<uint32_t> missing;
  for (int i = 0; i < m_; ++i) {
    if (committed_.count(static_cast<uint32_t>(i)) == 0) missing.push_back(static_cast<uint32_t>(i));
  }
  return missing;
}

void StepActor::OnCommit(CommitMsg& m) {
  if (m.step <= version_) {
    ReplyApplied(m.responder, m.step, version_);
    return;
  }
  if (m.step > version_ + 1) {
    FailAndCount(registry_, m.responder, absl::FailedPreconditionError(
        absl::StrCat("commit of step ", m.step, " but the host is at version ", version_, " (step ahead)")));
    return;
  }
  Open(m.step);
  if (finalizing_) {
    FailAndCount(registry_, m.responder,
                 absl::FailedPreconditionError(absl::StrCat("step ", m.step, " is already complete")));
    return;
  }
  for (size_t i = 0; i < m.micro_batches.size(); ++i) {
    cluster::MicroBatchStatsValue stats = i < m.stats.size() ? m.stats[i] : cluster::MicroBatchStatsValue{};
    stats.micro_batch = m.micro_batches[i];
    committed_[m.micro_batches[i]] = std::move(stats);
  }
  ReplyStep(m.responder, m.step, [&](auto reply) {
    reply.setReceived(static_cast<uint32_t>(committed_.size()));
    reply.setVersion(version_);
  });
  if (static_cast<int>(committed_.size()) < m_) return;
  finalizing_ = true;
  for (size_t i = 0; i < actors_.size(); ++i) {
    const uint64_t step = m.step, round = round_;
    actors_[i]->Tell(FinalizeMsg{step, [self = Weak(), step, round, i](absl::StatusOr<std::vector<double>> squares) {
                                   TellIfAlive(self, FinalizedMsg{step, round, i, std::move(squares)});
                                 }});
  }
  if (actors_.empty()) AnswerGathers();
}

void StepActor::OnFinalized(FinalizedMsg& m) {
  if (m.step != version_ + 1 || m.round != round_ || !finalizing_) return;
  if (m.squares.ok()) {
    squares_[m.actor] = *std::move(m.squares);
  } else {
    finalize_error_.Update(m.squares.status());
  }
  if (++finalized_ == actors_.size()) AnswerGathers();
}

void StepActor::AnswerGathers() {
  for (auto& r : gathers_) {
    if (!finalize_error_.ok()) {
      FailAndCount(registry_, r, finalize_error_);
      continue;
    }
    ReplyStep(r, version_ + 1, [&](auto reply) {
      reply.setReceived(static_cast<uint32_t>(committed_.size()));
      reply.setVersion(version_);
      auto segments = reply.initSegments(static_cast<unsigned>(NestedSize(squares_)));
      unsigned k = 0;
      for (size_t i = 0; i < actors_.size(); ++i) {
        const auto& segs = actors_[i]->segments();
        for (size_t j = 0; j < segs.size() && j < squares_[i].size(); ++j, ++k) {
          segments[k].setParam(segs[j].param_index);
          segments[k].setExpert(segs[j].expert);
          segments[k].setSumSquares(squares_[i][j]);
        }
      }
      auto stats = reply.initStats(static_cast<unsigned>(committed_.size()));
      unsigned n = 0;
      for (const auto& [mb, value] : committed_) cluster::StatsToWire(value, stats[n++]);
    });
  }
  gathers_.clear();
}

void StepActor::OnGather(GatherMsg& m) {
  if (m.step != version_ + 1) {
    FailAndCount(registry_, m.responder, absl::FailedPreconditionError(
        absl::StrCat("norm gather for step ", m.step, " but the host is at version ", version_)));
    return;
  }
  Open(m.step);
  gathers_.push_back(std::move(m.responder));
  if (finalizing_ && finalized_ == actors_.size()) {
    AnswerGathers();
  } else if (timed_out_) {
    OnTimeout(m.step);
  }
}

void StepActor::OnApply(StepApplyMsg& m) {
  if (m.step <= version_) {
    ReplyApplied(m.responder, m.step, version_);
    return;
  }
  if (m.step > version_ + 1 || !finalizing_ || finalized_ < actors_.size() || !finalize_error_.ok()) {
    FailAndCount(registry_, m.responder, absl::FailedPreconditionError(
        absl::StrCat("apply of step ", m.step, ": the step is not complete on this host (version ", version_, ")")));
    return;
  }
  appliers_.push_back(std::move(m.responder));
  if (applying_) return;
  applying_ = true;
  const uint64_t step = m.step, round = round_;
  // Dense shards first: the trainers' pulls wait only for them, and each trainer's next
  // step starts with attention, long before it needs an expert.
  for (const bool experts : {false, true}) {
    for (auto& a : actors_) {
      if (a->identity().is_expert != experts) continue;
      a->Tell(ApplyMsg{step, m.clip_scale, m.lr,
                       [self = Weak(), step, round](absl::Status s) {
                         TellIfAlive(self, AppliedMsg{step, round, s});
                       }});
    }
  }
  if (actors_.empty()) Tell(AppliedMsg{step, round, absl::OkStatus()});
}

void StepActor::OnStatus(HostStatusMsg& m) {
  StatusQuery query;
  query.values.resize(actors_.size());
  query.left = actors_.size();
  query.version = version_;
  query.timeouts = static_cast<uint64_t>(timeouts_->value());
  query.missing = opened_ ? Missing() : std::vector<uint32_t>{};
  query.responder = std::move(m.responder);
  if (actors_.empty()) {
    AnswerStatus(query);
    return;
  }
  const uint64_t id = ++status_queries_sent_;
  status_queries_[id] = std::move(query);
  for (size_t i = 0; i < actors_.size(); ++i) {
    actors_[i]->Tell(StatusMsg{[self = Weak(), id, i](absl::StatusOr<ActorStatusValue> value) {
      TellIfAlive(self, ActorStatusMsg{id, i, std::move(value)});
    }});
  }
}

void StepActor::OnActorStatus(ActorStatusMsg& m) {
  auto it = status_queries_.find(m.query);
  if (it == status_queries_.end()) return;
  StatusQuery& query = it->second;
  if (m.value.ok()) {
    query.values[m.actor] = *std::move(m.value);
  } else {
    query.error.Update(m.value.status());
  }
  if (--query.left > 0) return;
  AnswerStatus(query);
  status_queries_.erase(it);
}

void StepActor::AnswerStatus(StatusQuery& query) {
  if (!query.error.ok()) {
    FailAndCount(registry_, query.responder, query.error);
    return;
  }
  ReplyStep(query.responder, query.version + 1, [&](auto reply) {
    reply.setVersion(query.version);
    reply.setStepTimeouts(query.timeouts);
    auto missing = reply.initMissingMicroBatches(static_cast<unsigned>(query.missing.size()));
    for (size_t i = 0; i < query.missing.size(); ++i) missing.set(static_cast<unsigned>(i), query.missing[i]);
    auto actors = reply.initActors(static_cast<unsigned>(query.values.size()));
    for (size_t i = 0; i < query.values.size(); ++i) {
      const ActorStatusValue& v = query.values[i];
      auto a = actors[static_cast<unsigned>(i)];
      v.actor.ToProto(a.initActor());
      a.setVersion(v.version);
      a.setChecksum(v.checksum);
      a.setContributions(v.contributions);
    }
  });
}

void StepActor::OnTimeout(uint64_t step) {
  if (step != version_ + 1) return;
  const std::vector<uint32_t> missing = Missing();
  const std::string what =
      missing.empty() ? std::string("every micro-batch is in, but the leader never applied it")
                      : absl::StrCat("missing micro-batches [", absl::StrJoin(missing, ", "), "] (", committed_.size(),
                                     " of ", m_, " committed)");
  if (!timed_out_) {
    timed_out_ = true;
    timer_ = 0;
    timeouts_->Increment();
    SY_LOG(ERROR) << "step " << step << " incomplete after " << absl::FormatDuration(step_timeout_) << ": " << what;
  }
  const absl::Status aborted =
      absl::AbortedError(absl::StrCat("step ", step, " incomplete past the host's step timeout: ", what));
  for (auto& r : gathers_) FailAndCount(registry_, r, aborted);
  gathers_.clear();
}

}  // namespace sy::expert_host
