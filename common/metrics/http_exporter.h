// Serves a Registry over HTTP for Prometheus: GET /metrics answers the text
// exposition format (Content-Type text/plain; version=0.0.4); any other path is
// 404 and any other method on /metrics is 405. One connection = one request
// (Connection: close). The server runs on its own thread. Start logs the bound
// address at INFO ("metrics: serving http://ADDR:PORT/metrics").
//
// Thread-safe: port() and Shutdown() may be called from any thread. The
// registry must outlive the exporter.
//
//   auto exporter = sy::metrics::HttpExporter::Start(registry, "0.0.0.0", 9100);
//   if (!exporter.ok()) return exporter.status();   // e.g. port busy
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/metrics/registry.h"

namespace sy::metrics {

class HttpExporter {
 public:
  // Binds `address`:`port` (port 0 picks a free port, see port()) and starts
  // serving. Errors: InvalidArgument for an unparsable address,
  // FailedPrecondition when the port is busy or cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpExporter>> Start(const Registry& registry,
                                                             const std::string& address,
                                                             uint16_t port);
  virtual ~HttpExporter() = default;  // implementations shut down when destroyed

  // The bound port (the chosen one when started with port 0).
  virtual uint16_t port() const = 0;
  // Stops accepting, drops open connections and joins the thread. Idempotent.
  virtual void Shutdown() = 0;
};

}  // namespace sy::metrics
