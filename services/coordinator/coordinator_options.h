// Settings of one coordinator (from sy-coordinator's flags, or set by tests). The
// model's shape is not among them: the coordinator learns it from the nodes that register.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "services/cluster/cluster_keys.h"
#include "services/coordinator/initial_placement.h"

namespace sy::coordinator {

struct CoordinatorOptions {
  std::string node_id = "coordinator";  // our routing id
  std::string listen = "tcp://127.0.0.1:0";
  std::string db_path;                  // RocksDB directory (required)
  uint32_t expected_hosts = 1;          // placement starts once this many hosts registered
  // Holders of every actor (distinct hosts): with 2, a dead host whose actors all live
  // on elsewhere fails over to them without a checkpoint restore, and the coordinator
  // rebuilds the lost copies live.
  uint32_t redundancy = 1;
  // The first placement, instead of the static rule (--initial_placement): it also fixes the model's shape.
  std::optional<InitialPlacement> initial_placement;
  uint32_t max_nodes = 1024;            // nodes remembered at most: a registration of a new one beyond is refused
  // A node dead and silent this long is forgotten (no longer counts toward max_nodes),
  // unless the placement still lists it.
  absl::Duration forget_dead_after = absl::Minutes(10);
  absl::Duration heartbeat_timeout = absl::Seconds(3);  // silence after which a node has failed
  absl::Duration heartbeat_interval = absl::Milliseconds(500);  // told to nodes at register
  // A host whose connection dropped is pinged; unanswered this long, it is declared dead.
  absl::Duration probe_deadline = absl::Milliseconds(200);
  uint64_t checkpoint_every = 0;        // steps between automatic checkpoints; 0 = on demand only
  int retain = 3;                       // checkpoints kept
  uint64_t chunk_bytes = 1u << 20;      // state chunk size asked of hosts and used for restores
  absl::Duration checkpoint_timeout = absl::Seconds(120);  // a checkpoint not complete by then is abandoned
  absl::Duration call_timeout = absl::Seconds(10);         // deadline of calls to hosts/trainers
  double rebalance_threshold = 1.25;    // max/mean host load
  // At each committed checkpoint, rebalance (migrate, or replicate an expert too hot
  // for any one host) when the moving host load max/mean exceeds rebalance_threshold;
  // at most once per rebalance_every_steps steps (a rebalance replays from the
  // checkpoint, whose boundaries come again).
  bool auto_rebalance = true;
  uint64_t rebalance_every_steps = 20;
  // Live moves (join, drain, rebalance without a rollback; off: every move goes through
  // the latest checkpoint and the trainers replay): an actor moves after the step
  // this many steps ahead of the newest one reported (hosts' heartbeats, trainers' load
  // reports); a move that sees no step progress for live_move_timeout falls back to
  // checkpoint recovery.
  bool live_moves = true;
  uint64_t live_move_lead_steps = 3;
  absl::Duration live_move_timeout = absl::Seconds(20);
  int max_replicas = 2;                 // hosts one expert may be served from (1: migrations only)
  double load_alpha = 0.5;              // weight of the newest step in the moving load
  uint64_t config_hash = 0;             // fingerprint stored in checkpoints; checked on restore when set
  uint64_t seed = 0;                    // training seed stored in checkpoints
  std::string faults;                   // initial fault spec of the coordinator's transport
  // Fault injection (tests): raise(SIGKILL) once every chunk of this checkpoint id is
  // stored, just before its manifest is written (0: never).
  uint64_t kill_self_before_manifest_of_checkpoint = 0;
  // Admin authentication (both or neither): a second ROUTER on admin_listen, a CURVE
  // server with the keys of the admin_keys file (format: LoadAdminKeys in
  // admin_keys.h). Then admin calls are served only there and only for an
  // authorised admin key; the main endpoint refuses them. Empty: admin calls on `listen`.
  std::string admin_listen;
  std::string admin_keys;               // path of the admin key file
  cluster::NodeSecurity security;       // --keys / --insecure (none: plain TCP, for in-process tests)
};

}  // namespace sy::coordinator
