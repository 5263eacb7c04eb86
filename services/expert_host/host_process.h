// Everything an sy-expert-host process runs, startable from main() or a test:
// the backend, the metrics registry (and /metrics exporter when asked), the
// HostService with its actors, and an RpcNode on a bound ZeroMQ ROUTER (wrapped
// in the fault-injecting transport when --faults is set). Its transport reads no
// frame larger than the host's largest legitimate one (ZMQ_MAXMSGSIZE) and its
// queues and reply cache are sized from the model (QueueBytesFor), and ZeroMQ's
// per-peer receive pipe holds at most 64 messages. Stop() (or the
// destructor) closes the socket and the actors. Thread-safe after Start.
//
//   auto host = HostProcess::Start(options).value();
//   cluster::WriteReadyFile(options.ready_file, host->endpoint());
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/metrics/http_exporter.h"
#include "common/metrics/registry.h"
#include "common/transport/rpc.h"
#include "gpu/backend.h"
#include "services/cluster/cluster_options.h"
#include "services/cluster/coordinator_link.h"
#include "services/expert_host/host_service.h"

namespace sy::expert_host {

class HostProcess {
 public:
  // InvalidArgument for a bad configuration; the bind/exporter error otherwise.
  static absl::StatusOr<std::unique_ptr<HostProcess>> Start(const cluster::HostOptions& options);
  ~HostProcess();

  const std::string& endpoint() const { return endpoint_; }  // e.g. "tcp://127.0.0.1:40123"
  int metrics_port() const { return exporter_ ? exporter_->port() : -1; }
  metrics::Registry& registry() { return registry_; }
  HostService& service() { return *service_; }
  void Stop();

 private:
  HostProcess() = default;
  metrics::Registry registry_;
  std::unique_ptr<gpu::Backend> backend_;
  std::unique_ptr<HostService> service_;
  std::unique_ptr<transport::RpcNode> rpc_;
  std::unique_ptr<metrics::HttpExporter> exporter_;
  std::unique_ptr<cluster::CoordinatorLink> coordinator_;  // with --coordinator: registration and heartbeats
  std::string endpoint_;
};

// The bytes a host's transport queues and reply cache hold at most, for a model whose
// largest legitimate frame is `largest_frame`: room for a few of them, 8 MiB at least.
size_t QueueBytesFor(int64_t largest_frame);

// "tcp://HOST:0" -> "tcp://HOST:*" (ZeroMQ's spelling of "any free port").
std::string BindSpelling(const std::string& endpoint);

// Where others reach a host bound at `bound` (e.g. "tcp://0.0.0.0:5555"): the same
// port on `advertise_host`, else on the bound address, or on `hostname` when that
// is a wildcard (0.0.0.0, *). Other transports (inproc, ipc) are returned as bound.
// InvalidArgument when a tcp endpoint has no port.
absl::StatusOr<std::string> AdvertisedEndpoint(const std::string& bound, const std::string& advertise_host,
                                               const std::string& hostname);

}  // namespace sy::expert_host
