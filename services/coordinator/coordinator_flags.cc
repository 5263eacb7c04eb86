// sy-coordinator's flags and their translation into CoordinatorOptions (see coordinator_flags.h).
#include "services/coordinator/coordinator_flags.h"

#include <cstdint>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/flags/flags.h"
#include "services/cluster/ready_file.h"
#include "services/cluster/security_flags.h"

ABSL_FLAG(std::string, listen, "tcp://127.0.0.1:0", "ZeroMQ endpoint to bind (port 0: any free port).");
ABSL_FLAG(std::string, ready_file, "", "Once listening, write the bound endpoint here (atomically).");
ABSL_FLAG(std::string, db, "", "RocksDB directory of the checkpoint catalog (created if missing).");
ABSL_FLAG(std::string, node_id, "coordinator", "Routing id of the coordinator.");
ABSL_FLAG(int64_t, heartbeat_timeout_ms, 3000, "A node silent this long has failed.");
ABSL_FLAG(int64_t, heartbeat_interval_ms, 500, "Heartbeat period told to registering nodes.");
ABSL_FLAG(int64_t, checkpoint_every, 0, "Steps between automatic checkpoints (0: on demand only).");
ABSL_FLAG(int32_t, retain, 3, "Committed checkpoints kept.");
ABSL_FLAG(int64_t, checkpoint_timeout_ms, 120000, "A checkpoint not complete by then is abandoned.");
ABSL_FLAG(int64_t, chunk_bytes, 1 << 20, "State chunk size (multiple of 4).");
ABSL_FLAG(int32_t, expected_hosts, 1, "Hosts to wait for before the initial placement.");
ABSL_FLAG(int32_t, redundancy, 1,
          "Holders of every actor, experts and dense shards alike, on distinct hosts (1-4). With 2 or more, a host "
          "that dies while everything it held lives on elsewhere costs no checkpoint restore: the survivors drop "
          "the open step, the trainers redo it, and the lost copies are rebuilt live on other hosts. Costs memory "
          "and the replicas' gradient exchange every step.");
ABSL_FLAG(std::string, initial_placement, "",
          "JSON file of the first placement, used instead of the static rule when the coordinator places the cluster "
          "for the first time (a saved placement wins): every actor's holders by host id, {\"experts\": [[[\"host-0\"], "
          "[\"host-1\", \"host-2\"], ...] per Switch layer], \"dense\": [[\"host-0\"], ...] per dense shard}. It fixes "
          "the model's shape (a node whose model differs is refused) and names at most --expected_hosts hosts; "
          "placement waits until every host it names has registered.");
ABSL_FLAG(int32_t, max_nodes, 1024,
          "Hosts and trainers the coordinator remembers at most: a registration of a node it does not know beyond "
          "them is refused (a known node always registers again).");
ABSL_FLAG(int64_t, forget_dead_after_s, 600,
          "A node dead and silent this long is forgotten, so it no longer counts toward --max_nodes (a host the "
          "placement still lists is kept); it registers again as a new node.");
ABSL_FLAG(double, rebalance_threshold, 1.25, "Max/mean host load above which rebalance moves experts.");
ABSL_FLAG(bool, auto_rebalance, true,
          "When a checkpoint commits and the moving host load max/mean exceeds --rebalance_threshold, migrate hot "
          "experts (greedy, heaviest first onto the least loaded host, or replicate one too hot for any host) "
          "through that checkpoint.");
ABSL_FLAG(int32_t, max_replicas, 2,
          "Hosts one expert may be served from when rebalancing (replicas split its micro-batches and exchange "
          "gradient contributions); 1: migrations only.");
ABSL_FLAG(int64_t, rebalance_every_steps, 20,
          "At most one automatic rebalance per this many steps (the replay after one passes the same checkpoint "
          "steps again).");
ABSL_FLAG(bool, live_moves, true,
          "Move actors between live hosts (join, drain, rebalance) live at a step boundary: the old host streams "
          "the state to the new one, nothing is restored or replayed. Off: every move goes through the latest "
          "checkpoint and the trainers replay from it.");
ABSL_FLAG(int64_t, live_move_lead_steps, 3,
          "A live move takes effect this many steps after the newest step reported (hosts' heartbeats, trainers' "
          "load reports).");
ABSL_FLAG(int64_t, live_move_timeout_ms, 20000,
          "A live move that sees no step progress this long falls back to checkpoint recovery.");
ABSL_FLAG(uint64_t, config_hash, 0, "Config fingerprint stored in checkpoints and checked on restore (0: unchecked).");
ABSL_FLAG(uint64_t, seed, 0, "Training seed stored in checkpoints.");
ABSL_FLAG(std::string, admin_listen, "",
          "ZeroMQ endpoint of a second ROUTER for admin calls (syctl), a CurveZMQ server (port 0: any free port); "
          "needs --admin_keys. Its bound endpoint is the ready file's second line.");
ABSL_FLAG(std::string, admin_keys, "",
          "Admin key file (needs --admin_listen): lines 'server_secret KEY', 'server_public KEY' and one or more "
          "'admin NAME KEY' (40-character Z85 keys from `syctl keygen`; '#' starts a comment line). Then admin calls "
          "are served only on --admin_listen from an authorised admin key, and refused on --listen.");
ABSL_FLAG(std::string, faults, "", "Transport fault spec, e.g. drop=0.1,seed=7 (tests only).");
ABSL_FLAG(int64_t, kill_self_before_manifest_of_checkpoint, 0,
          "Fault injection (tests only): SIGKILL this process once every chunk of checkpoint N is stored, before "
          "its manifest is written (0: never).");

namespace sy::coordinator {

absl::StatusOr<CoordinatorOptions> CoordinatorOptionsFromFlags() {
  if (absl::Status s = flags::EveryFailure({
          flags::RequireNonEmpty("db", absl::GetFlag(FLAGS_db)),
          flags::RequirePositive("heartbeat_timeout_ms", absl::GetFlag(FLAGS_heartbeat_timeout_ms)),
          flags::RequirePositive("heartbeat_interval_ms", absl::GetFlag(FLAGS_heartbeat_interval_ms)),
          flags::RequireNonNegative("checkpoint_every", absl::GetFlag(FLAGS_checkpoint_every)),
          flags::RequirePositive("retain", int64_t{absl::GetFlag(FLAGS_retain)}),
          flags::RequirePositive("checkpoint_timeout_ms", absl::GetFlag(FLAGS_checkpoint_timeout_ms)),
          flags::RequireInRange("chunk_bytes", absl::GetFlag(FLAGS_chunk_bytes), 4, int64_t{1} << 30),
          flags::RequirePositive("expected_hosts", int64_t{absl::GetFlag(FLAGS_expected_hosts)}),
          flags::RequireInRange("redundancy", int64_t{absl::GetFlag(FLAGS_redundancy)}, 1, 4),
          flags::RequireInRange("max_nodes", int64_t{absl::GetFlag(FLAGS_max_nodes)}, 1, int64_t{1} << 20),
          flags::RequirePositive("forget_dead_after_s", absl::GetFlag(FLAGS_forget_dead_after_s)),
          flags::RequireInRange("rebalance_threshold", absl::GetFlag(FLAGS_rebalance_threshold), 1.0, 100.0),
          flags::RequirePositive("rebalance_every_steps", absl::GetFlag(FLAGS_rebalance_every_steps)),
          flags::RequireInRange("max_replicas", int64_t{absl::GetFlag(FLAGS_max_replicas)}, 1, 8),
          flags::RequireInRange("live_move_lead_steps", absl::GetFlag(FLAGS_live_move_lead_steps), 1, 1000),
          flags::RequirePositive("live_move_timeout_ms", absl::GetFlag(FLAGS_live_move_timeout_ms)),
          flags::RequireNonNegative("kill_self_before_manifest_of_checkpoint",
                                    absl::GetFlag(FLAGS_kill_self_before_manifest_of_checkpoint)),
      });
      !s.ok()) {
    return s;
  }
  CoordinatorOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.db_path = absl::GetFlag(FLAGS_db);
  options.node_id = absl::GetFlag(FLAGS_node_id);
  options.heartbeat_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_heartbeat_timeout_ms));
  options.heartbeat_interval = absl::Milliseconds(absl::GetFlag(FLAGS_heartbeat_interval_ms));
  options.checkpoint_every = static_cast<uint64_t>(absl::GetFlag(FLAGS_checkpoint_every));
  options.retain = absl::GetFlag(FLAGS_retain);
  options.checkpoint_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_checkpoint_timeout_ms));
  options.chunk_bytes = static_cast<uint64_t>(absl::GetFlag(FLAGS_chunk_bytes));
  options.expected_hosts = static_cast<uint32_t>(absl::GetFlag(FLAGS_expected_hosts));
  options.redundancy = static_cast<uint32_t>(absl::GetFlag(FLAGS_redundancy));
  if (const std::string path = absl::GetFlag(FLAGS_initial_placement); !path.empty()) {
    absl::StatusOr<InitialPlacement> placement = ReadInitialPlacement(path);
    if (!placement.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--initial_placement=", placement.status().message()));
    }
    if (placement->hosts.size() > options.expected_hosts) {
      return absl::InvalidArgumentError(absl::StrCat("--initial_placement=", path, " names ", placement->hosts.size(),
                                                     " hosts, more than --expected_hosts=", options.expected_hosts));
    }
    options.initial_placement = *std::move(placement);
  }
  options.max_nodes = static_cast<uint32_t>(absl::GetFlag(FLAGS_max_nodes));
  options.forget_dead_after = absl::Seconds(absl::GetFlag(FLAGS_forget_dead_after_s));
  options.rebalance_threshold = absl::GetFlag(FLAGS_rebalance_threshold);
  options.auto_rebalance = absl::GetFlag(FLAGS_auto_rebalance);
  options.rebalance_every_steps = static_cast<uint64_t>(absl::GetFlag(FLAGS_rebalance_every_steps));
  options.max_replicas = absl::GetFlag(FLAGS_max_replicas);
  options.live_moves = absl::GetFlag(FLAGS_live_moves);
  options.live_move_lead_steps = static_cast<uint64_t>(absl::GetFlag(FLAGS_live_move_lead_steps));
  options.live_move_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_live_move_timeout_ms));
  options.config_hash = absl::GetFlag(FLAGS_config_hash);
  options.seed = absl::GetFlag(FLAGS_seed);
  options.faults = absl::GetFlag(FLAGS_faults);
  options.kill_self_before_manifest_of_checkpoint =
      static_cast<uint64_t>(absl::GetFlag(FLAGS_kill_self_before_manifest_of_checkpoint));
  options.admin_listen = absl::GetFlag(FLAGS_admin_listen);
  options.admin_keys = absl::GetFlag(FLAGS_admin_keys);
  options.security = cluster::ReadSecurityFlags();
  if (absl::Status s = cluster::CheckNodeSecurity(options.security); !s.ok()) return s;
  return options;
}

absl::Status WriteReadyFileFromFlags(const CoordinatorService& service) {
  const std::string ready_file = absl::GetFlag(FLAGS_ready_file);
  if (ready_file.empty()) return absl::OkStatus();
  std::string endpoints = service.endpoint();
  if (!service.admin_endpoint().empty()) endpoints += "\n" + service.admin_endpoint();
  return cluster::WriteReadyFile(ready_file, endpoints);
}

}  // namespace sy::coordinator
