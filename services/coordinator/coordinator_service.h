// CoordinatorService: one running coordinator. Opens the checkpoint database, binds
// a ZeroMQ ROUTER (RpcNode) on options.listen, and routes requests to its two
// actors: checkpoint chunks, manifest queries and `checkpoint list` to the
// CheckpointActor, everything else to the ClusterActor. On start it rebuilds its
// catalog and the saved placement from RocksDB; membership comes back as nodes
// re-register.
//
// With options.admin_listen/admin_keys it binds a second ROUTER, a CURVE server, for
// admin calls (syctl): there an admin request is served only when its CURVE client key
// is an authorised admin key, and the main endpoint refuses admin requests; both
// refusals are PermissionDenied and counted (sy_coordinator_admin_refused_total).
// Hosts and trainers always use the main endpoint.
//
// Thread-safe. Stop() (or the destructor) closes the socket and stops the actors.
//
//   auto service = CoordinatorService::Start(options);
//   std::cout << (*service)->endpoint();   // "tcp://127.0.0.1:41234"
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/metrics/registry.h"
#include "services/coordinator/coordinator_options.h"

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace sy::coordinator {

class CoordinatorService {
 public:
  // InvalidArgument for bad options; the database's error (DataLoss, Unavailable) when
  // it cannot be opened; the transport's when the endpoint cannot be bound.
  // `storage_env` (tests: a disk that fails) replaces RocksDB's default environment.
  static absl::StatusOr<std::unique_ptr<CoordinatorService>> Start(const CoordinatorOptions& options,
                                                                   metrics::Registry* registry = nullptr,
                                                                   rocksdb::Env* storage_env = nullptr);
  virtual ~CoordinatorService() = default;

  // The bound endpoint, e.g. "tcp://127.0.0.1:41234".
  virtual const std::string& endpoint() const = 0;
  // The bound admin endpoint; empty without options.admin_listen.
  virtual const std::string& admin_endpoint() const = 0;
  // Admin requests refused so far (unknown client key, or sent to the main endpoint).
  virtual uint64_t admin_refused() const = 0;
  virtual void Stop() = 0;
};

}  // namespace sy::coordinator
