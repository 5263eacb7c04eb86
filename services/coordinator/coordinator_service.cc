// Wiring of one coordinator: database, transport, RPC routing, actors (see coordinator_service.h).
#include "services/coordinator/coordinator_service.h"

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/actor/runtime.h"
#include "common/log/log.h"
#include "common/transport/zmq_transport.h"
#include "proto/admin.capnp.h"
#include "services/coordinator/catalog_actor.h"
#include "services/coordinator/checkpoint_store.h"
#include "services/coordinator/cluster_actor.h"
#include "services/coordinator/switchable_fault_transport.h"

namespace sy::coordinator {
namespace {

// The handler's view of the actors, filled once they exist (requests before that
// get Unavailable).
struct Router {
  absl::Mutex mu;
  std::shared_ptr<ClusterActor> cluster ABSL_GUARDED_BY(mu);
  std::shared_ptr<CatalogActor> catalog ABSL_GUARDED_BY(mu);

  void Route(transport::DecodedMessage message, transport::Responder responder) {
    std::shared_ptr<ClusterActor> cluster;
    std::shared_ptr<CatalogActor> catalog;
    {
      absl::MutexLock lock(&mu);
      cluster = this->cluster;
      catalog = this->catalog;
    }
    if (!cluster || !catalog) return responder.Fail(absl::UnavailableError("coordinator is starting or stopping"));
    const auto kind = message.envelope().getKind();
    bool to_catalog = kind == proto::MessageKind::CHECKPOINT_CHUNK || kind == proto::MessageKind::CHECKPOINT_MANIFEST;
    if (kind == proto::MessageKind::ADMIN) {
      auto admin = message.Body<proto::admin::AdminRequest>();
      if (!admin.ok()) return responder.Fail(admin.status());
      to_catalog = admin->which() == proto::admin::AdminRequest::CHECKPOINT_LIST;
    }
    if (to_catalog) {
      catalog->Tell(CatalogRequest{std::move(message), std::move(responder)});
    } else {
      cluster->Tell(ClusterRequest{std::move(message), std::move(responder)});
    }
  }
};

class CoordinatorServiceImpl final : public CoordinatorService {
 public:
  ~CoordinatorServiceImpl() override { Stop(); }
  const std::string& endpoint() const override { return endpoint_; }
  void Stop() override {
    if (stopped_) return;
    stopped_ = true;
    {
      absl::MutexLock lock(&router_->mu);
      router_->cluster.reset();
      router_->catalog.reset();
    }
    if (rpc_) rpc_->Close();
    if (runtime_) runtime_->Shutdown(actor::Runtime::ShutdownMode::kCancel);
    cluster_.reset();
    catalog_.reset();
    rpc_.reset();
    store_.reset();
  }

  CoordinatorOptions options_;
  std::string endpoint_;
  std::unique_ptr<CheckpointStore> store_;
  std::shared_ptr<Router> router_ = std::make_shared<Router>();
  std::unique_ptr<actor::Runtime> runtime_;
  std::unique_ptr<transport::RpcNode> rpc_;
  SwitchableFaultTransport* transport_ = nullptr;  // owned by rpc_
  std::shared_ptr<CatalogActor> catalog_;
  std::shared_ptr<ClusterActor> cluster_;
  bool stopped_ = false;
};

absl::Status Validate(const CoordinatorOptions& o) {
  if (o.db_path.empty()) return absl::InvalidArgumentError("--db is required");
  if (o.node_id.empty()) return absl::InvalidArgumentError("node id is empty");
  if (o.shape.num_layers == 0 || o.shape.num_experts == 0) {
    return absl::InvalidArgumentError("the model needs at least one layer and one expert");
  }
  if (o.expected_hosts == 0) return absl::InvalidArgumentError("--expected_hosts must be >= 1");
  if (o.retain < 1) return absl::InvalidArgumentError("--retain must be >= 1");
  if (o.heartbeat_timeout <= absl::ZeroDuration()) return absl::InvalidArgumentError("--heartbeat_timeout_ms must be > 0");
  if (o.chunk_bytes < 4 || o.chunk_bytes % 4 != 0) return absl::InvalidArgumentError("chunk bytes must be a positive multiple of 4");
  if (o.rebalance_threshold < 1) return absl::InvalidArgumentError("--rebalance_threshold must be >= 1");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<CoordinatorService>> CoordinatorService::Start(const CoordinatorOptions& options,
                                                                             metrics::Registry* registry) {
  if (absl::Status s = Validate(options); !s.ok()) return s;
  auto service = std::make_unique<CoordinatorServiceImpl>();
  service->options_ = options;
  CheckpointStoreOptions store_options;
  store_options.retain = options.retain;
  auto store = CheckpointStore::Open(options.db_path, store_options);
  if (!store.ok()) return store.status();
  service->store_ = *std::move(store);

  transport::ZmqOptions zmq;
  zmq.node_id = options.node_id;
  zmq.metrics = registry;
  auto zmq_transport = transport::ZmqTransport::Create(zmq);
  if (!zmq_transport.ok()) return zmq_transport.status();
  // ZeroMQ wants "*" for "any port".
  std::string listen = options.listen;
  if (listen.size() > 2 && listen.substr(listen.size() - 2) == ":0") listen = listen.substr(0, listen.size() - 1) + "*";
  auto bound = (*zmq_transport)->Bind(listen);
  if (!bound.ok()) return bound.status();
  service->endpoint_ = *bound;
  auto switchable = std::make_unique<SwitchableFaultTransport>(*std::move(zmq_transport));
  if (absl::Status s = switchable->SetFaultSpec(options.faults); !s.ok()) return s;
  service->transport_ = switchable.get();

  transport::RpcOptions rpc_options;
  rpc_options.metrics = registry;
  std::shared_ptr<Router> router = service->router_;
  auto rpc = transport::RpcNode::Create(std::move(switchable), rpc_options,
                                        [router](transport::DecodedMessage m, transport::Responder r) {
                                          router->Route(std::move(m), std::move(r));
                                        });
  if (!rpc.ok()) return rpc.status();
  service->rpc_ = *std::move(rpc);

  service->runtime_ = std::make_unique<actor::Runtime>(2);
  auto cluster_slot = std::make_shared<std::weak_ptr<ClusterActor>>();
  service->catalog_ = std::make_shared<CatalogActor>(
      *service->runtime_, service->store_.get(), service->rpc_.get(), options,
      [cluster_slot](CatalogEvent event) {
        if (auto cluster = cluster_slot->lock()) cluster->Tell(std::move(event));
      },
      registry);
  service->cluster_ = std::make_shared<ClusterActor>(*service->runtime_, options, service->endpoint_,
                                                     service->rpc_.get(), service->transport_,
                                                     service->store_.get(), service->catalog_, registry);
  *cluster_slot = service->cluster_;
  if (absl::Status s = service->cluster_->Start(); !s.ok()) return s;
  {
    absl::MutexLock lock(&router->mu);
    router->cluster = service->cluster_;
    router->catalog = service->catalog_;
  }
  SY_LOG(INFO) << "coordinator " << options.node_id << " listening on " << service->endpoint_;
  return std::unique_ptr<CoordinatorService>(std::move(service));
}

absl::Status WriteReadyFile(const std::string& path, const std::string& endpoint) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << endpoint << "\n";
    out.flush();
    if (!out) return absl::UnavailableError(absl::StrCat("cannot write ready file '", tmp, "'"));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot rename '", tmp, "' to '", path, "'"));
  }
  return absl::OkStatus();
}

}  // namespace sy::coordinator
