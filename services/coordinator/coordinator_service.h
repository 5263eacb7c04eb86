// CoordinatorService: one running coordinator. Opens the checkpoint database, binds
// a ZeroMQ ROUTER (RpcNode) on options.listen, and routes requests to its two
// actors: checkpoint chunks, manifest queries and `checkpoint list` to the
// CatalogActor, everything else to the ClusterActor. On start it rebuilds its
// catalog and the saved placement from RocksDB; membership comes back as nodes
// re-register.
//
// Thread-safe. Stop() (or the destructor) closes the socket and stops the actors.
//
//   auto service = CoordinatorService::Start(options);
//   std::cout << (*service)->endpoint();   // "tcp://127.0.0.1:41234"
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/metrics/registry.h"
#include "services/coordinator/coordinator_options.h"

namespace sy::coordinator {

class CoordinatorService {
 public:
  // InvalidArgument for bad options; the database's error (DataLoss, Unavailable) when
  // it cannot be opened; the transport's when the endpoint cannot be bound.
  static absl::StatusOr<std::unique_ptr<CoordinatorService>> Start(const CoordinatorOptions& options,
                                                                   metrics::Registry* registry = nullptr);
  virtual ~CoordinatorService() = default;

  // The bound endpoint, e.g. "tcp://127.0.0.1:41234".
  virtual const std::string& endpoint() const = 0;
  virtual void Stop() = 0;
};

// Writes `endpoint` + "\n" to `path` atomically (temporary file, then rename), the
// ready-file convention of every Switchyard service.
absl::Status WriteReadyFile(const std::string& path, const std::string& endpoint);

}  // namespace sy::coordinator
