// Database seeding and checkpoint restore for sy-local (see coordinator_control.h).
#include "orchestration/local/coordinator_control.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "proto/admin.capnp.h"
#include "proto/checkpoint.capnp.h"
#include "services/syctl/admin_client.h"

namespace sy::local {

absl::StatusOr<std::string> CheckpointDatabaseOf(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path in_workdir = std::filesystem::path(path) / "coordinator.db";
  for (const std::filesystem::path& candidate : {in_workdir, std::filesystem::path(path)}) {
    if (std::filesystem::exists(candidate / "CURRENT", ec)) return candidate.string();
  }
  return absl::NotFoundError(absl::StrCat("--restore_from=", path, ": neither it nor ", in_workdir.string(),
                                          " is a checkpoint database"));
}

absl::Status CopyDatabase(const std::string& from, const std::string& to) {
  std::error_code ec;
  std::filesystem::remove_all(to, ec);
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive, ec);
  if (ec) return absl::FailedPreconditionError(absl::StrCat("copying ", from, " to ", to, ": ", ec.message()));
  // A LOCK file copied along is only a marker: RocksDB takes the lock with fcntl.
  return absl::OkStatus();
}

absl::StatusOr<RestoredCheckpoint> RestoreCheckpoint(const std::string& endpoint, uint64_t id,
                                                     absl::Duration timeout) {
  absl::StatusOr<std::unique_ptr<syctl::AdminClient>> client = syctl::AdminClient::Connect(endpoint);
  if (!client.ok()) return client.status();
  absl::StatusOr<transport::DecodedMessage> listed =
      (*client)->Call([](proto::admin::AdminRequest::Builder r) { r.setCheckpointList(); }, timeout);
  if (!listed.ok()) return listed.status();
  auto list = listed->Body<proto::admin::AdminReply>();
  if (!list.ok()) return list.status();
  if (list->which() != proto::admin::AdminReply::CHECKPOINTS) {
    return absl::InternalError("the coordinator answered a checkpoint list with something else");
  }
  RestoredCheckpoint chosen;
  for (auto manifest : list->getCheckpoints()) {
    const bool wanted = id == 0 ? manifest.getCheckpointId() > chosen.id : manifest.getCheckpointId() == id;
    if (wanted) chosen = {manifest.getCheckpointId(), manifest.getStep()};
  }
  if (chosen.id == 0) {
    return absl::NotFoundError(id == 0 ? std::string("the database holds no committed checkpoint")
                                       : absl::StrCat("no committed checkpoint ", id, " in the database"));
  }
  // Hosts registering on a seeded database may start the coordinator's own recovery
  // (Unavailable while it runs): ask again until it is done.
  const absl::Time give_up = absl::Now() + timeout;
  absl::StatusOr<transport::DecodedMessage> restored;
  do {
    restored = (*client)->Call([&](proto::admin::AdminRequest::Builder r) { r.setCheckpointRestore(chosen.id); },
                               timeout);
    if (restored.status().code() != absl::StatusCode::kUnavailable) break;
    absl::SleepFor(absl::Milliseconds(50));
  } while (absl::Now() < give_up);
  if (!restored.ok()) {
    return absl::Status(restored.status().code(),
                        absl::StrCat("restoring checkpoint ", chosen.id, ": ", restored.status().message()));
  }
  return chosen;
}

namespace {

// The coordinator's `status` reply (kept alive by the returned message).
absl::StatusOr<transport::DecodedMessage> CallStatus(syctl::AdminClient& client, absl::Duration timeout) {
  absl::StatusOr<transport::DecodedMessage> status =
      client.Call([](proto::admin::AdminRequest::Builder r) { r.setStatus(); }, timeout);
  if (!status.ok()) return status.status();
  auto s = status->Body<proto::admin::AdminReply>();
  if (!s.ok()) return s.status();
  if (s->which() != proto::admin::AdminReply::STATUS) return absl::InternalError("status answered with something else");
  return status;
}

}  // namespace

absl::Status WaitForCheckpointAtStep(const std::string& endpoint, uint64_t step, absl::Duration timeout) {
  absl::StatusOr<std::unique_ptr<syctl::AdminClient>> client = syctl::AdminClient::Connect(endpoint);
  if (!client.ok()) return client.status();
  const absl::Time deadline = absl::Now() + timeout;
  std::string seen = "none";
  while (true) {
    absl::StatusOr<transport::DecodedMessage> status = CallStatus(**client, absl::Seconds(5));
    if (status.ok()) {
      auto s = status->Body<proto::admin::AdminReply>()->getStatus();
      if (s.getLatestCheckpoint() > 0) {
        if (s.getLatestCheckpointStep() >= step) return absl::OkStatus();
        seen = absl::StrCat("checkpoint ", s.getLatestCheckpoint(), " at step ", s.getLatestCheckpointStep());
      }
      // Given up: a later one is being taken, or the hosts are past the step and none is
      // (the coordinator asks for the next boundary at once, unless training is over).
      const bool taking = s.getCheckpointInProgress() != 0;
      if ((taking && s.getCheckpointInProgressStep() > step) ||
          (!taking && s.getStep() >= step && std::string(s.getPhase().cStr()) == "training")) {
        return absl::NotFoundError(absl::StrCat("the checkpoint at step ", step, " was not committed (newest: ",
                                                seen, ")"));
      }
    } else if (status.status().code() != absl::StatusCode::kUnavailable &&
               status.status().code() != absl::StatusCode::kDeadlineExceeded) {
      return status.status();
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("no checkpoint at step ", step, " after ",
                                                      absl::FormatDuration(timeout), " (newest: ", seen, ")"));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
}

absl::StatusOr<ClusterFacts> QueryClusterFacts(const std::string& endpoint, absl::Duration timeout) {
  absl::StatusOr<std::unique_ptr<syctl::AdminClient>> client = syctl::AdminClient::Connect(endpoint);
  if (!client.ok()) return client.status();
  ClusterFacts facts;
  absl::StatusOr<transport::DecodedMessage> status = CallStatus(**client, timeout);
  if (!status.ok()) return status.status();
  auto s = status->Body<proto::admin::AdminReply>();
  facts.recoveries = s->getStatus().getRecoveries();
  facts.checkpoints = s->getStatus().getCheckpointsCommitted();
  facts.migrations = s->getStatus().getMigrations();
  facts.replications = s->getStatus().getReplications();
  absl::StatusOr<transport::DecodedMessage> experts =
      (*client)->Call([](proto::admin::AdminRequest::Builder r) { r.setExperts(); }, timeout);
  if (!experts.ok()) return experts.status();
  auto e = experts->Body<proto::admin::AdminReply>();
  if (!e.ok()) return e.status();
  if (e->which() != proto::admin::AdminReply::EXPERTS) return absl::InternalError("experts answered with something else");
  for (auto info : e->getExperts()) {
    std::vector<std::string>& hosts = facts.expert_hosts[{info.getExpert().getLayer(), info.getExpert().getExpert()}];
    for (auto h : info.getHosts()) hosts.emplace_back(h.cStr());
  }
  absl::StatusOr<transport::DecodedMessage> series =
      (*client)->Call([](proto::admin::AdminRequest::Builder r) { r.setHostLoadSeries(); }, timeout);
  if (!series.ok()) return series.status();
  auto l = series->Body<proto::admin::AdminReply>();
  if (!l.ok()) return l.status();
  if (l->which() != proto::admin::AdminReply::HOST_LOAD_SERIES) {
    return absl::InternalError("hostLoadSeries answered with something else");
  }
  for (auto step : l->getHostLoadSeries()) {
    if (step.getHosts().size() != step.getTokens().size()) {
      return absl::DataLossError(absl::StrCat("host load of step ", step.getStep(), ": ", step.getHosts().size(),
                                              " hosts but ", step.getTokens().size(), " counts"));
    }
    std::map<std::string, double>& tokens = facts.step_host_tokens[step.getStep()];
    for (unsigned i = 0; i < step.getHosts().size(); ++i) tokens[step.getHosts()[i].cStr()] = step.getTokens()[i];
  }
  return facts;
}

double MaxOverMeanHostLoad(const std::vector<StepRecord>& steps, const ClusterFacts& facts,
                           const std::vector<std::string>& hosts) {
  std::map<std::string, double> load;
  for (const std::string& h : hosts) load[h] = 0;
  for (const StepRecord& step : steps) {
    auto counted = facts.step_host_tokens.find(static_cast<uint64_t>(step.step));
    if (counted != facts.step_host_tokens.end()) {
      for (const auto& [host, tokens] : counted->second) load[host] += tokens;
      continue;
    }
    for (size_t l = 0; l < step.expert_tokens.size(); ++l) {
      for (size_t e = 0; e < step.expert_tokens[l].size(); ++e) {
        auto it = facts.expert_hosts.find({static_cast<uint32_t>(l), static_cast<uint32_t>(e)});
        if (it == facts.expert_hosts.end() || it->second.empty()) continue;
        for (const std::string& h : it->second) {
          load[h] += static_cast<double>(step.expert_tokens[l][e]) / static_cast<double>(it->second.size());
        }
      }
    }
  }
  double total = 0, hottest = 0;
  for (const auto& [host, tokens] : load) {
    total += tokens;
    hottest = std::max(hottest, tokens);
  }
  return total > 0 ? hottest / (total / static_cast<double>(load.size())) : 0.0;
}

absl::Status AddClusterFactsToSummary(const std::string& summary_path, const ClusterFacts& facts,
                                      double first_10_steps, double last_10_steps,
                                      const std::map<std::string, double>& host_cpu_seconds) {
  ClusterRecord record;
  record.recoveries = facts.recoveries;
  record.checkpoints = facts.checkpoints;
  record.migrations = facts.migrations;
  record.replications = facts.replications;
  record.max_over_mean_host_load_first_10_steps = first_10_steps;
  record.max_over_mean_host_load_last_10_steps = last_10_steps;
  record.host_cpu_seconds = host_cpu_seconds;
  return AddClusterRecordToSummary(summary_path, record);
}

}  // namespace sy::local
