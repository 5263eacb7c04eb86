// An expert host's process-level wiring (see host_process.h).
#include "services/expert_host/host_process.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/transport/faulty_transport.h"
#include "common/transport/zmq_transport.h"
#include "services/cluster/cluster_keys.h"
#include "services/cluster/model_options.h"

namespace sy::expert_host {

std::string BindSpelling(const std::string& endpoint) {
  if (absl::EndsWith(endpoint, ":0")) return endpoint.substr(0, endpoint.size() - 1) + "*";
  return endpoint;
}

absl::StatusOr<std::string> AdvertisedEndpoint(const std::string& bound, const std::string& advertise_host,
                                               const std::string& hostname) {
  if (!absl::StartsWith(bound, "tcp://")) return bound;
  const size_t colon = bound.rfind(':');
  if (colon == std::string::npos || colon < 6 || colon + 1 == bound.size()) {
    return absl::InvalidArgumentError(absl::StrCat("endpoint ", bound, " has no port"));
  }
  const std::string address = bound.substr(6, colon - 6), port = bound.substr(colon + 1);
  std::string name = advertise_host;
  if (name.empty()) name = address == "0.0.0.0" || address == "*" ? hostname : address;
  return absl::StrCat("tcp://", name, ":", port);
}


namespace {
constexpr int kHostReceiveHwm = 64;
}  // namespace

size_t QueueBytesFor(int64_t largest_frame) {
  constexpr size_t kAtLeast = 8u << 20;
  return std::max(kAtLeast, static_cast<size_t>(4 * largest_frame));
}

absl::StatusOr<std::unique_ptr<HostProcess>> HostProcess::Start(const cluster::HostOptions& options) {
  absl::StatusOr<gpu::ModelConfig> model = cluster::ModelConfigFromOptions(options.model);
  if (!model.ok()) return model.status();
  absl::StatusOr<gpu::Device> device = gpu::Device::Parse(options.model.device);
  if (!device.ok()) return device.status();
  std::unique_ptr<HostProcess> p(new HostProcess());
  gpu::BackendOptions backend_options;
  backend_options.num_threads = options.model.threads;
  absl::StatusOr<std::unique_ptr<gpu::Backend>> backend = gpu::CreateBackend(*device, backend_options);
  if (!backend.ok()) return backend.status();
  p->backend_ = *std::move(backend);

  HostConfig config;
  config.model = *model;
  config.adam = cluster::AdamWConfigFromOptions(options.model);
  config.seed = options.model.seed;
  config.micro_batches = options.model.micro_batches;
  config.max_bucket_rows = options.model.micro_batch * options.model.context;
  config.host_index = options.host_index;
  config.num_hosts = options.num_hosts;
  config.step_timeout = absl::Seconds(options.step_timeout_s);
  config.checkpoint_every = static_cast<uint64_t>(options.checkpoint_every);
  config.emulate_device_gflops = options.emulate_device_gflops;
  config.kill_self_in_live_move = options.kill_self_in_live_move;
  if (options.fail_checkpoint_at_step) {
    config.fail_checkpoint_at_step = static_cast<uint64_t>(*options.fail_checkpoint_at_step);
  }
  if (options.kill_self_while_streaming_at_step) {
    config.kill_self_while_streaming_at_step = static_cast<uint64_t>(*options.kill_self_while_streaming_at_step);
  }
  if (options.kill_self_at_apply_of_step) {
    config.kill_self_at_apply_of_step = static_cast<uint64_t>(*options.kill_self_at_apply_of_step);
  }
  absl::StatusOr<std::unique_ptr<HostService>> service = HostService::Create(config, p->backend_.get(), &p->registry_);
  if (!service.ok()) return service.status();
  p->service_ = *std::move(service);

  if (options.metrics_port >= 0) {
    absl::StatusOr<std::unique_ptr<metrics::HttpExporter>> exporter =
        metrics::HttpExporter::Start(p->registry_, "0.0.0.0", static_cast<uint16_t>(options.metrics_port));
    if (!exporter.ok()) return exporter.status();
    p->exporter_ = *std::move(exporter);
  }
  transport::ZmqOptions zmq;
  zmq.node_id = absl::StrCat("host-", options.host_index);
  zmq.metrics = &p->registry_;
  // No frame larger than a legitimate one is ever read, and what waits in the queues is
  // bounded by the model's needs, not by what peers send.
  const int64_t largest_frame = p->service_->LargestRequestFrame();
  zmq.max_frame_bytes = largest_frame;
  zmq.receive_queue.max_bytes = QueueBytesFor(largest_frame);
  zmq.send_queue.max_bytes = QueueBytesFor(largest_frame);
  // ZeroMQ's own per-peer pipe holds up to receive_hwm messages before the I/O thread
  // reads them: a few queues' worth of the largest frames, not a thousand.
  zmq.receive_hwm = kHostReceiveHwm;
  zmq.max_connections = options.security.max_connections;
  absl::StatusOr<transport::CurveKeys> curve = cluster::LoadNodeCurve(options.security, zmq.node_id);
  if (!curve.ok()) return curve.status();
  zmq.curve = *curve;
  absl::StatusOr<std::unique_ptr<transport::ZmqTransport>> zt = transport::ZmqTransport::Create(zmq);
  if (!zt.ok()) return zt.status();
  absl::StatusOr<std::string> bound = (*zt)->Bind(BindSpelling(options.listen));
  if (!bound.ok()) return bound.status();
  char hostname[256] = {};
  if (gethostname(hostname, sizeof(hostname) - 1) != 0) std::snprintf(hostname, sizeof(hostname), "localhost");
  absl::StatusOr<std::string> advertised = AdvertisedEndpoint(*bound, options.advertise_host, hostname);
  if (!advertised.ok()) return advertised.status();
  p->endpoint_ = *advertised;
  absl::StatusOr<std::unique_ptr<transport::Transport>> transport =
      transport::WithFaultsFromFlag(*std::move(zt), options.faults);
  if (!transport.ok()) return transport.status();
  transport::RpcOptions rpc_options;
  rpc_options.metrics = &p->registry_;
  rpc_options.reply_cache_bytes = QueueBytesFor(largest_frame);
  HostService* handler = p->service_.get();
  absl::StatusOr<std::unique_ptr<transport::RpcNode>> rpc = transport::RpcNode::Create(
      *std::move(transport), rpc_options,
      [handler](transport::DecodedMessage request, transport::Responder responder) {
        handler->Handle(std::move(request), std::move(responder));
      });
  if (!rpc.ok()) return rpc.status();
  p->rpc_ = *std::move(rpc);
  p->service_->set_rpc(p->rpc_.get());  // replica gradients go out over it
  if (!options.coordinator.empty()) {
    cluster::CoordinatorLinkOptions link;
    link.node_id = zmq.node_id;
    link.is_host = true;
    link.curve = zmq.curve;
    link.coordinator = options.coordinator;
    link.endpoint = p->endpoint_;
    link.shape = cluster::ModelShapeOf(*model);
    // Re-registration with a restarted coordinator names them: a host that keeps its
    // actors is not mistaken for one that lost them (which would start a recovery).
    link.held_actors = [service = p->service_.get()] { return service->held_actors(); };
    // Declared failed while cut off or stopped: nothing of the old epoch may serve again.
    link.on_fenced = [service = p->service_.get()](uint64_t epoch) { service->Fence(epoch); };
    absl::StatusOr<std::unique_ptr<cluster::CoordinatorLink>> joined =
        cluster::CoordinatorLink::Start(link, [handler] { return handler->applied_version(); });
    if (!joined.ok()) return joined.status();
    p->coordinator_ = *std::move(joined);
    p->service_->set_coordinator_link(p->coordinator_.get());
  }
  SY_LOG(INFO) << "expert host " << options.host_index << " serving on " << *bound
               << (*bound != p->endpoint_ ? absl::StrCat(", reached at ", p->endpoint_) : std::string())
               << (p->exporter_ ? absl::StrCat(", metrics on port ", p->exporter_->port()) : std::string());
  return p;
}

void HostProcess::Stop() {
  if (service_ != nullptr) {
    service_->set_coordinator_link(nullptr);
    service_->set_rpc(nullptr);
  }
  coordinator_.reset();
  if (rpc_ != nullptr) rpc_->Close();
  if (exporter_ != nullptr) exporter_->Shutdown();
}

HostProcess::~HostProcess() {
  Stop();
  service_.reset();
}

}  // namespace sy::expert_host
