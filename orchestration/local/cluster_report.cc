// The end of a local cluster's run: summary.json gains the coordinator's facts, and
// the report is printed (see cluster.h).
#include <algorithm>
#include <map>

#include "orchestration/local/cluster.h"
#include "orchestration/local/run_report.h"

namespace sy::local {

absl::Status Cluster::AddFacts(ClusterFacts facts) {
  facts.recoveries += facts_before_restart_.recoveries;
  facts.checkpoints += facts_before_restart_.checkpoints;
  facts.migrations += facts_before_restart_.migrations;
  facts.replications += facts_before_restart_.replications;
  // Steps only the killed coordinator counted (the restarted one counts from its start).
  facts.step_host_tokens.insert(facts_before_restart_.step_host_tokens.begin(),
                                facts_before_restart_.step_host_tokens.end());
  facts.step_epoch.insert(facts_before_restart_.step_epoch.begin(), facts_before_restart_.step_epoch.end());
  absl::StatusOr<RunReport> report = ReadRunReport(o_.workdir);
  if (!report.ok()) return report.status();
  std::vector<std::string> hosts;  // every host the run ended with (a joined one too, not a drained one)
  for (const ChildProcess& h : hosts_) {
    if (!drained_.count(h.role())) hosts.push_back(h.role());
  }
  const size_t n = std::min<size_t>(10, report->steps.size());
  const std::vector<StepRecord> first(report->steps.begin(), report->steps.begin() + n);
  const std::vector<StepRecord> last(report->steps.end() - n, report->steps.end());
  std::map<std::string, double> cpu;
  for (const ChildProcess& h : hosts_) cpu[h.role()] = h.cpu_seconds();
  return AddClusterFactsToSummary(Path("summary.json"), facts, MaxOverMeanHostLoad(first, facts, hosts),
                                  MaxOverMeanHostLoad(last, facts, hosts), cpu);
}

absl::Status Cluster::Report() {
  absl::StatusOr<RunReport> report = ReadRunReport(o_.workdir);
  if (!report.ok()) {
    return absl::DataLossError(absl::StrCat("trainer-0 exited 0 but its run record is unusable: ",
                                            report.status().message()));
  }
  out_ << FormatRunReport(*report);
  out_ << "sy-local: logs in " << o_.workdir << "/<role>-<i>.log; metrics in " << Path("metrics.jsonl")
       << "; summary in " << Path("summary.json") << std::endl;
  return absl::OkStatus();
}

}  // namespace sy::local
