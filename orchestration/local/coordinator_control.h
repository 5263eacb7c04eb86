// What sy-local asks of its coordinator besides starting it: seeding its database
// from an earlier run (--restore_from) and restoring a checkpoint into the fresh
// hosts before the trainers start (--restore_checkpoint), through the admin API
// (the same calls as `syctl checkpoint list|restore`). Thread-compatible: one
// caller at a time.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/transport/zmq_transport.h"
#include "orchestration/local/run_report.h"

namespace sy::local {

// The RocksDB directory `path` names: PATH/coordinator.db when PATH is an earlier
// run's workdir, else PATH itself. NotFound when neither holds a database.
absl::StatusOr<std::string> CheckpointDatabaseOf(const std::string& path);

// Copies the database directory `from` to `to` (replacing `to`).
absl::Status CopyDatabase(const std::string& from, const std::string& to);

struct RestoredCheckpoint {
  uint64_t id = 0;
  uint64_t step = 0;  // the hosts now hold the state after this step
};

// Restores checkpoint `id` (0: the newest committed one) through the coordinator
// at `endpoint` onto its current hosts and returns its step. NotFound when there
// is no such checkpoint; the coordinator's error otherwise.
absl::StatusOr<RestoredCheckpoint> RestoreCheckpoint(const std::string& endpoint, uint64_t id,
                                                     absl::Duration timeout, const transport::CurveKeys& curve);

// Waits until the coordinator at `endpoint` has committed a checkpoint at `step` or
// later (the last automatic one of a run, taken after the trainers finished).
// NotFound when the coordinator gave that one up (it is taking a later one, or none though the hosts are past it);
// DeadlineExceeded after `timeout`. Both name the newest checkpoint it saw.
absl::Status WaitForCheckpointAtStep(const std::string& endpoint, uint64_t step, absl::Duration timeout,
                                     const transport::CurveKeys& curve);

// One query of QueryClusterFacts the coordinator did not answer.
struct MissingFact {
  std::string query;  // kStatusQuery, kExpertsQuery, kHostLoadSeriesQuery or kCheckpointListQuery
  absl::Status error;
};
inline constexpr char kStatusQuery[] = "status";
inline constexpr char kExpertsQuery[] = "experts";
inline constexpr char kHostLoadSeriesQuery[] = "hostLoadSeries";
inline constexpr char kCheckpointListQuery[] = "checkpointList";

// What the coordinator saw of a run, for summary.json.
struct ClusterFacts {
  uint32_t recoveries = 0;
  uint32_t checkpoints = 0;   // committed
  uint32_t migrations = 0;
  uint32_t replications = 0;
  // (switch_layer, expert) -> hosts holding it, from the coordinator's final table.
  std::map<std::pair<uint32_t, uint32_t>, std::vector<std::string>> expert_hosts;
  // Step -> tokens per host, as the coordinator counted them with the table in force
  // when that step's load reports arrived (steps a restarted coordinator did not see are absent).
  std::map<uint64_t, std::map<std::string, double>> step_host_tokens;
  std::map<uint64_t, uint64_t> step_epoch;  // step -> placement epoch its load was counted with (same steps)
  // The step of every committed checkpoint, ascending (AddCheckpointSteps; unset until asked).
  std::optional<std::vector<uint64_t>> checkpoint_steps;
  // The queries that failed, in the order asked; what each would have told stays
  // absent (counts 0 for status, expert_hosts or step_host_tokens empty).
  std::vector<MissingFact> missing;
};
// Asks the coordinator its status (the counts), experts (expert_hosts) and
// hostLoadSeries (step_host_tokens); each query that fails is named in `missing`
// and the others' facts are kept.
ClusterFacts GatherClusterFacts(const std::string& endpoint, absl::Duration timeout,
                                const transport::CurveKeys& curve);
// Sets facts->checkpoint_steps from the coordinator's checkpoint list, or names the
// failed query in facts->missing.
void AddCheckpointSteps(const std::string& endpoint, absl::Duration timeout, const transport::CurveKeys& curve,
                        ClusterFacts* facts);
// Every fact, or the error of the first query that failed (prefixed with its name).
absl::StatusOr<ClusterFacts> QueryClusterFacts(const std::string& endpoint, absl::Duration timeout,
                                               const transport::CurveKeys& curve);

// Hottest host's tokens over the mean host's, summed over `steps`. A step the
// coordinator counted (facts.step_host_tokens) adds its per-host tokens, so moved
// actors count where they were at the time; any other step falls back to its
// expert_tokens split over the final table (each expert's tokens evenly between its
// hosts). `hosts` lists every host (an idle one counts as 0). 0 when nothing was routed.
double MaxOverMeanHostLoad(const std::vector<StepRecord>& steps, const ClusterFacts& facts,
                           const std::vector<std::string>& hosts);

// Adds recoveries, checkpoints, migrations, replications, max_over_mean_host_load
// {first_10_steps, last_10_steps}, host_cpu_seconds {host: user+system CPU seconds
// of its process}, host_load_per_step (when the series is known) and checkpoint_steps
// (when asked) to the one-line JSON object in `summary_path`. With facts.missing,
// what those queries would have told is left out (the counts without status,
// max_over_mean_host_load without experts or hostLoadSeries) and "missing"
// {query: error} says why.
absl::Status AddClusterFactsToSummary(const std::string& summary_path, const ClusterFacts& facts,
                                      double first_10_steps, double last_10_steps,
                                      const std::map<std::string, double>& host_cpu_seconds);

}  // namespace sy::local
