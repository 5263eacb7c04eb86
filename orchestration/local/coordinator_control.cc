// Database seeding and checkpoint restore for sy-local (see coordinator_control.h).
#include "orchestration/local/coordinator_control.h"

#include <algorithm>
#include <filesystem>
#include <functional>

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

namespace {

using proto::admin::AdminReply;
using proto::admin::AdminRequest;

// The reply to the admin request `fill` builds (`query` names it in errors); Internal
// when the coordinator answers with another kind than `want`.
absl::StatusOr<cluster::AdminReplyMessage> Ask(syctl::AdminClient& client, const char* query,
                                                   const std::function<void(AdminRequest::Builder)>& fill,
                                                   AdminReply::Which want, absl::Duration timeout) {
  absl::StatusOr<cluster::AdminReplyMessage> reply = client.Call(fill, timeout);
  if (reply.ok() && reply->reply().which() != want) {
    return absl::InternalError(absl::StrCat("the coordinator answered ", query, " with something else"));
  }
  return reply;
}

absl::StatusOr<cluster::AdminReplyMessage> CallStatus(syctl::AdminClient& client, absl::Duration timeout) {
  return Ask(client, kStatusQuery, [](AdminRequest::Builder r) { r.setStatus(); }, AdminReply::STATUS, timeout);
}

// A hostLoadSeries reply: step -> tokens per host, and step -> placement epoch.
struct HostLoadSeries {
  std::map<uint64_t, std::map<std::string, double>> tokens;
  std::map<uint64_t, uint64_t> epoch;
};

// The series of a hostLoadSeries reply; DataLoss for a step whose lists differ in length.
absl::StatusOr<HostLoadSeries> ReadHostLoadSeries(capnp::List<proto::admin::StepHostLoad>::Reader series) {
  HostLoadSeries out;
  for (auto step : series) {
    auto hosts = step.getHosts();  // each list once: every get counts against the reader's budget
    auto counts = step.getTokens();
    if (hosts.size() != counts.size()) {
      return absl::DataLossError(absl::StrCat("host load of step ", step.getStep(), ": ", hosts.size(),
                                              " hosts but ", counts.size(), " counts"));
    }
    out.epoch[step.getStep()] = step.getEpoch();
    std::map<std::string, double>& tokens = out.tokens[step.getStep()];
    for (unsigned i = 0; i < hosts.size(); ++i) tokens[hosts[i].cStr()] = counts[i];
  }
  return out;
}

}  // namespace

absl::StatusOr<RestoredCheckpoint> RestoreCheckpoint(const std::string& endpoint, uint64_t id,
                                                     absl::Duration timeout, const transport::CurveKeys& curve) {
  absl::StatusOr<std::unique_ptr<syctl::AdminClient>> client = syctl::AdminClient::Connect(endpoint, curve);
  if (!client.ok()) return client.status();
  absl::StatusOr<cluster::AdminReplyMessage> listed =
      Ask(**client, "checkpoint list", [](AdminRequest::Builder r) { r.setCheckpointList(); },
          AdminReply::CHECKPOINTS, timeout);
  if (!listed.ok()) return listed.status();
  RestoredCheckpoint chosen;
  for (auto manifest : listed->reply().getCheckpoints()) {
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
  absl::StatusOr<cluster::AdminReplyMessage> restored;
  do {
    restored = (*client)->Call([&](AdminRequest::Builder r) { r.setCheckpointRestore(chosen.id); }, timeout);
    if (restored.status().code() != absl::StatusCode::kUnavailable) break;
    absl::SleepFor(absl::Milliseconds(50));
  } while (absl::Now() < give_up);
  if (!restored.ok()) {
    return absl::Status(restored.status().code(),
                        absl::StrCat("restoring checkpoint ", chosen.id, ": ", restored.status().message()));
  }
  return chosen;
}

absl::Status WaitForCheckpointAtStep(const std::string& endpoint, uint64_t step, absl::Duration timeout,
                                     const transport::CurveKeys& curve) {
  absl::StatusOr<std::unique_ptr<syctl::AdminClient>> client = syctl::AdminClient::Connect(endpoint, curve);
  if (!client.ok()) return client.status();
  const absl::Time deadline = absl::Now() + timeout;
  std::string seen = "none";
  while (true) {
    absl::StatusOr<cluster::AdminReplyMessage> status = CallStatus(**client, absl::Seconds(5));
    if (status.ok()) {
      auto s = status->reply().getStatus();
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

ClusterFacts GatherClusterFacts(const std::string& endpoint, absl::Duration timeout,
                                const transport::CurveKeys& curve) {
  ClusterFacts facts;
  absl::StatusOr<std::unique_ptr<syctl::AdminClient>> client = syctl::AdminClient::Connect(endpoint, curve);
  if (!client.ok()) {
    for (const char* query : {kStatusQuery, kExpertsQuery, kHostLoadSeriesQuery}) {
      facts.missing.push_back({query, client.status()});
    }
    return facts;
  }
  absl::StatusOr<cluster::AdminReplyMessage> status = CallStatus(**client, timeout);
  if (status.ok()) {
    auto s = status->reply().getStatus();
    facts.recoveries = s.getRecoveries();
    facts.checkpoints = s.getCheckpointsCommitted();
    facts.migrations = s.getMigrations();
    facts.replications = s.getReplications();
  } else {
    facts.missing.push_back({kStatusQuery, status.status()});
  }
  absl::StatusOr<cluster::AdminReplyMessage> experts =
      Ask(**client, kExpertsQuery, [](AdminRequest::Builder r) { r.setExperts(); }, AdminReply::EXPERTS, timeout);
  if (experts.ok()) {
    for (auto info : experts->reply().getExperts()) {
      std::vector<std::string>& hosts =
          facts.expert_hosts[{info.getExpert().getSwitchLayer(), info.getExpert().getExpert()}];
      for (auto h : info.getHosts()) hosts.emplace_back(h.cStr());
    }
  } else {
    facts.missing.push_back({kExpertsQuery, experts.status()});
  }
  absl::StatusOr<cluster::AdminReplyMessage> series =
      Ask(**client, kHostLoadSeriesQuery, [](AdminRequest::Builder r) { r.setHostLoadSeries(); },
          AdminReply::HOST_LOAD_SERIES, timeout);
  absl::StatusOr<HostLoadSeries> counted =
      series.ok() ? ReadHostLoadSeries(series->reply().getHostLoadSeries()) : series.status();
  if (counted.ok()) {
    facts.step_host_tokens = std::move(counted->tokens);
    facts.step_epoch = std::move(counted->epoch);
  } else {
    facts.missing.push_back({kHostLoadSeriesQuery, counted.status()});
  }
  return facts;
}

void AddCheckpointSteps(const std::string& endpoint, absl::Duration timeout, const transport::CurveKeys& curve,
                        ClusterFacts* facts) {
  absl::StatusOr<std::unique_ptr<syctl::AdminClient>> client = syctl::AdminClient::Connect(endpoint, curve);
  absl::StatusOr<cluster::AdminReplyMessage> listed =
      client.ok() ? Ask(**client, kCheckpointListQuery, [](AdminRequest::Builder r) { r.setCheckpointList(); },
                        AdminReply::CHECKPOINTS, timeout)
                  : client.status();
  if (!listed.ok()) {
    facts->missing.push_back({kCheckpointListQuery, listed.status()});
    return;
  }
  std::vector<uint64_t>& steps = facts->checkpoint_steps.emplace();
  for (auto manifest : listed->reply().getCheckpoints()) steps.push_back(manifest.getStep());
  std::sort(steps.begin(), steps.end());
}

absl::StatusOr<ClusterFacts> QueryClusterFacts(const std::string& endpoint, absl::Duration timeout,
                                               const transport::CurveKeys& curve) {
  ClusterFacts facts = GatherClusterFacts(endpoint, timeout, curve);
  if (facts.missing.empty()) return facts;
  const MissingFact& first = facts.missing.front();
  return absl::Status(first.error.code(), absl::StrCat(first.query, ": ", first.error.message()));
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
    for (size_t s = 0; s < step.expert_tokens.size(); ++s) {
      for (size_t e = 0; e < step.expert_tokens[s].size(); ++e) {
        auto it = facts.expert_hosts.find({static_cast<uint32_t>(s), static_cast<uint32_t>(e)});
        if (it == facts.expert_hosts.end() || it->second.empty()) continue;
        for (const std::string& h : it->second) {
          load[h] += static_cast<double>(step.expert_tokens[s][e]) / static_cast<double>(it->second.size());
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
  auto lacks = [&](const char* query) {
    return std::any_of(facts.missing.begin(), facts.missing.end(), [&](const MissingFact& m) { return m.query == query; });
  };
  ClusterRecord record;
  if (!lacks(kStatusQuery)) {
    record.counts = ClusterCounts{facts.recoveries, facts.checkpoints, facts.migrations, facts.replications};
  }
  if (!lacks(kExpertsQuery) && !lacks(kHostLoadSeriesQuery)) {
    record.max_over_mean_host_load = HostLoadRatios{first_10_steps, last_10_steps};
  }
  record.host_cpu_seconds = host_cpu_seconds;
  for (const auto& [step, tokens] : facts.step_host_tokens) {
    const auto epoch = facts.step_epoch.find(step);
    record.host_load_per_step.push_back({step, epoch == facts.step_epoch.end() ? 0 : epoch->second, tokens});
  }
  record.checkpoint_steps = facts.checkpoint_steps;
  for (const MissingFact& m : facts.missing) record.missing[m.query] = m.error.ToString();
  return AddClusterRecordToSummary(summary_path, record);
}

}  // namespace sy::local
