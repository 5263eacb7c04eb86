// Elasticity of a local cluster (--add_host_at_step, --drain_host_at_step): a host
// joins, or one is drained through the admin API and stopped (see cluster.h).
#include <signal.h>

#include <algorithm>
#include <thread>

#include "absl/strings/match.h"
#include "orchestration/local/cluster.h"
#include "orchestration/local/process_commands.h"
#include "proto/admin.capnp.h"
#include "services/cluster/cluster_keys.h"
#include "services/cluster/peer_roles.h"
#include "services/syctl/admin_client.h"

namespace sy::local {

absl::Status Cluster::ChangeHosts() {
  const int64_t step = progress_ ? progress_->last_step() : 0;
  if (o_.add_host_at_step > 0 && !host_added_ && step >= o_.add_host_at_step) {
    host_added_ = true;
    if (absl::Status s = AddHost(step); !s.ok()) return s;
  }
  if (o_.drain_host_at_step > 0 && !host_drained_ && step >= o_.drain_host_at_step) {
    host_drained_ = true;
    if (absl::Status s = DrainHost(step); !s.ok()) return s;
  }
  return absl::OkStatus();
}

void Cluster::HoldTrainers(bool hold) {
  if (hold == trainers_held_.has_value()) return;
  for (ChildProcess& t : trainers_) {
    if (!t.Poll()) t.Signal(hold ? SIGSTOP : SIGCONT);
  }
  trainers_held_ = hold ? std::optional<Clock::time_point>(After(kMaxTrainerHold)) : std::nullopt;
}

void Cluster::ReleaseTrainersIfHeldTooLong() {
  if (trainers_held_ && Clock::now() > *trainers_held_) HoldTrainers(false);
}

absl::Status Cluster::AddHost(int64_t step) {
  if (absl::Status s = WaitForAnyCheckpoint(); !s.ok()) return s;
  const int index = static_cast<int>(hosts_.size());
  const std::string role = absl::StrCat("host-", index);
  out_ << "\nsy-local: --add_host_at_step: starting " << role << " after step " << step << std::endl;
  if (!o_.insecure) {
    // The joining node gets its key the way an operator adds one (`syctl keygen --add`);
    // the running nodes re-read the grown allowlist when it first connects.
    absl::Status added = cluster::AddNodeKey(KeysDir(o_), cluster::kRoleHost, role);
    if (!added.ok() && !absl::IsAlreadyExists(added)) return added;
  }
  HoldTrainers(true);
  if (absl::Status s = Start(role, HostCommand(o_, bin_dir_, index, threads_, coordinator_endpoint_), &hosts_);
      !s.ok()) {
    return s;
  }
  const Clock::time_point ready_deadline = After(o_.ready_timeout_s);
  while (true) {
    ReleaseTrainersIfHeldTooLong();
    if (std::optional<std::string> ep = ReadEndpoint(ReadyFile(index))) {
      out_ << "sy-local: " << role << " ready at " << *ep << std::endl;
      // Registered by now (a host registers before it writes the file); the coordinator
      // started moving actors to it in the same turn.
      HoldTrainers(false);
      return absl::OkStatus();
    }
    if (hosts_.back().Poll()) return Failed(hosts_.back(), "exited before writing its ready file");
    if (absl::Status s = CheckStopAndDeadline(); !s.ok()) return s;
    if (Clock::now() > ready_deadline) {
      return Failed(hosts_.back(), absl::StrCat("did not write its ready file within ", o_.ready_timeout_s, " s"),
                    absl::StatusCode::kDeadlineExceeded);
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

absl::Status Cluster::DrainHost(int64_t step) {
  ChildProcess& host = hosts_[static_cast<size_t>(o_.hosts - 1)];
  out_ << "\nsy-local: --drain_host_at_step: draining " << host.role() << " after step " << step << std::endl;
  if (absl::Status s = WaitForAnyCheckpoint(); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<syctl::AdminClient>> client = syctl::AdminClient::Connect(coordinator_endpoint_, admin_curve_);
  if (!client.ok()) return Failed(coordinator_[0], absl::StrCat("cannot be reached: ", client.status().message()));
  const Clock::time_point give_up = After(60);
  while (true) {
    HoldTrainers(true);  // the drain's moves (and the trainers' rollback) start before they can finish
    absl::StatusOr<cluster::AdminReplyMessage> drained = (*client)->Call(
        [&](proto::admin::AdminRequest::Builder r) { r.setDrain(host.role()); }, absl::Seconds(10));
    HoldTrainers(false);
    if (drained.ok()) break;
    // Unavailable: a recovery is under way; the drain is accepted after it.
    if (!absl::IsUnavailable(drained.status()) || Clock::now() > give_up) {
      return Failed(coordinator_[0], absl::StrCat("refused to drain ", host.role(), ": ", drained.status().message()));
    }
    if (absl::Status s = CheckStopAndDeadline(); !s.ok()) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // The drain moves the host's actors live (or, as a recovery, through a checkpoint): the
  // host is free once that is over.
  while (true) {
    absl::StatusOr<cluster::AdminReplyMessage> status =
        (*client)->Call([](proto::admin::AdminRequest::Builder r) { r.setStatus(); }, absl::Seconds(10));
    if (!status.ok()) {
      return Failed(coordinator_[0], absl::StrCat("status after the drain: ", status.status().message()));
    }
    if (status->reply().which() != proto::admin::AdminReply::STATUS) {
      return Failed(coordinator_[0], "answered a status request with something else");
    }
    const std::string phase = status->reply().getStatus().getPhase().cStr();
    if (absl::StartsWith(phase, "degraded")) {
      return Failed(coordinator_[0], absl::StrCat("could not move ", host.role(), "'s actors: ", phase));
    }
    if (phase != "recovering" && !absl::StartsWith(phase, "moving actors live")) break;
    if (absl::Status s = CheckStopAndDeadline(); !s.ok()) return s;
    if (Clock::now() > give_up) {
      return Failed(coordinator_[0], absl::StrCat("did not finish moving ", host.role(), "'s actors within 60 s"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  absl::StatusOr<ClusterFacts> facts = QueryClusterFacts(coordinator_endpoint_, absl::Seconds(10), admin_curve_);
  if (!facts.ok()) {
    return Failed(coordinator_[0], absl::StrCat("placement after the drain: ", facts.status().message()));
  }
  for (const auto& [expert, holders] : facts->expert_hosts) {
    if (std::find(holders.begin(), holders.end(), host.role()) != holders.end()) {
      return Failed(coordinator_[0], absl::StrCat("still places expert ", expert.first, "/", expert.second, " on ",
                                                  host.role(), " after draining it"));
    }
  }
  if (absl::Status s = NoteSelfKills(); !s.ok()) return s;
  if (Killed(host)) return absl::OkStatus();  // it died in its live move, on purpose: nothing to stop
  out_ << "sy-local: " << host.role() << " holds no actors: stopping it" << std::endl;
  drained_.insert(host.role());
  host.Signal(SIGTERM);
  const Clock::time_point kill_at = After(o_.grace_s);
  while (!host.Poll()) {
    if (Clock::now() > kill_at) host.Signal(SIGKILL);
    std::this_thread::sleep_for(kPollInterval);
  }
  if (!host.Succeeded()) return Failed(host, "did not stop cleanly on SIGTERM after its drain");
  return absl::OkStatus();
}

}  // namespace sy::local
