// Wiring of one coordinator: database, transport, RPC routing, actors (see coordinator_service.h).
#include "services/coordinator/coordinator_service.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/actor/request_budget.h"
#include "common/actor/runtime.h"
#include "common/log/log.h"
#include "common/transport/refusals.h"
#include "common/transport/zmq_transport.h"
#include "proto/admin.capnp.h"
#include "proto/coordinator.capnp.h"
#include "services/cluster/peer_roles.h"
#include "services/coordinator/admin_keys.h"
#include "services/coordinator/checkpoint_actor.h"
#include "services/coordinator/checkpoint_store.h"
#include "services/coordinator/cluster_actor.h"
#include "services/coordinator/switchable_fault_transport.h"

namespace sy::coordinator {
namespace {

// An admin request is a command with a few names and numbers.
constexpr size_t kMaxAdminHeaderBytes = 16u << 10;
// ZeroMQ's pipe per peer holds this many messages before the I/O thread reads them: a
// few chunks' worth, not a thousand.
constexpr int kCoordinatorReceiveHwm = 16;
// Requests handed to the actors and not yet handled: this many of the largest, and at least kMinAdmittedBytes.
constexpr size_t kAdmittedLargestRequests = 16;
constexpr size_t kMinAdmittedBytes = 16u << 20;
// The longest a request waits for the actors to catch up before it is refused (busy).
constexpr absl::Duration kMaxAdmissionWait = absl::Seconds(10);

// Where a request arrived: the main endpoint, or the CURVE admin endpoint.
enum class Entry { kMain, kAdmin };

// The handler's view of the actors, filled once they exist (requests before that
// get Unavailable).
struct Router {
  absl::Mutex mu;
  std::shared_ptr<ClusterActor> cluster ABSL_GUARDED_BY(mu);
  std::shared_ptr<CheckpointActor> checkpoints ABSL_GUARDED_BY(mu);
  // Set before any request can arrive, then read-only.
  bool require_admin_key = false;
  std::vector<std::string> admin_publics;
  metrics::Counter* refused_unknown_key = nullptr;    // optional
  metrics::Counter* refused_main_endpoint = nullptr;  // optional
  metrics::Registry* registry = nullptr;              // optional: sy_refused_total
  std::unique_ptr<actor::RequestBudget> admission;    // bytes handed to the actors, not yet handled
  std::atomic<uint64_t> admin_refused{0};

  // PermissionDenied (and counted) when the admin key rules refuse this request.
  absl::Status CheckAdmin(const transport::DecodedMessage& message, Entry entry) {
    if (!require_admin_key) return absl::OkStatus();
    const bool admin = message.envelope().getKind() == proto::MessageKind::ADMIN;
    if (entry == Entry::kMain) {
      if (!admin) return absl::OkStatus();
      ++admin_refused;
      if (refused_main_endpoint != nullptr) refused_main_endpoint->Increment();
      return absl::PermissionDeniedError("admin calls need the admin key on --admin_listen");
    }
    if (!admin) return absl::PermissionDeniedError("only admin calls are served on --admin_listen");
    const std::string& key = message.message().client_key;
    if (std::find(admin_publics.begin(), admin_publics.end(), key) != admin_publics.end()) return absl::OkStatus();
    ++admin_refused;
    if (refused_unknown_key != nullptr) refused_unknown_key->Increment();
    SY_LOG(WARNING) << "admin call from " << message.message().address.peer << " refused: client key '" << key
                    << "' is not an authorised admin key";
    return absl::PermissionDeniedError("this client key is not an authorised admin key of the coordinator");
  }

  // PermissionDenied (counted) when the main endpoint's authenticated sender may not send
  // this kind, or registers or heartbeats under another node's name.
  absl::Status CheckSender(const transport::DecodedMessage& message, Entry entry) {
    if (entry != Entry::kMain) return absl::OkStatus();
    const proto::MessageKind kind = message.envelope().getKind();
    if (absl::Status s = cluster::CheckSenderRole(cluster::Door::kCoordinator, kind, message.message(), registry);
        !s.ok()) {
      return s;
    }
    if (kind == proto::MessageKind::REGISTER) {
      auto body = message.Body<proto::coordinator::RegisterRequest>();
      if (!body.ok()) return body.status();
      return cluster::CheckSenderIsNode(body->getNodeId().cStr(), message.message(), registry);
    }
    if (kind == proto::MessageKind::HEARTBEAT) {
      auto body = message.Body<proto::coordinator::HeartbeatRequest>();
      if (!body.ok()) return body.status();
      return cluster::CheckSenderIsNode(body->getNodeId().cStr(), message.message(), registry);
    }
    return absl::OkStatus();
  }

  // The transport's connection to `peer` dropped: the cluster actor probes that host.
  void ConnectionLost(const transport::ConnectionLost& lost) {
    absl::MutexLock lock(&mu);
    if (cluster) cluster->Tell(HostConnectionLost{lost.peer});
  }

  void Route(transport::DecodedMessage message, transport::Responder responder, Entry entry) {
    std::shared_ptr<ClusterActor> cluster;
    std::shared_ptr<CheckpointActor> checkpoints;
    {
      absl::MutexLock lock(&mu);
      cluster = this->cluster;
      checkpoints = this->checkpoints;
    }
    if (!cluster || !checkpoints) return responder.Fail(absl::UnavailableError("coordinator is starting or stopping"));
    if (message.envelope().getKind() == proto::MessageKind::ADMIN &&
        message.message().header.size() > kMaxAdminHeaderBytes) {
      return responder.Fail(transport::Refuse(
          registry, "oversized",
          absl::InvalidArgumentError(absl::StrCat("an admin request of ", message.message().header.size(),
                                                  " bytes (at most ", kMaxAdminHeaderBytes, ")"))));
    }
    if (absl::Status s = CheckAdmin(message, entry); !s.ok()) return responder.Fail(s);
    if (absl::Status s = CheckSender(message, entry); !s.ok()) return responder.Fail(s);
    const auto kind = message.envelope().getKind();
    bool to_checkpoints = kind == proto::MessageKind::CHECKPOINT_CHUNK || kind == proto::MessageKind::CHECKPOINT_MANIFEST;
    if (kind == proto::MessageKind::ADMIN) {
      auto admin = message.Body<proto::admin::AdminRequest>();
      if (!admin.ok()) return responder.Fail(admin.status());
      to_checkpoints = admin->which() == proto::admin::AdminRequest::CHECKPOINT_LIST;
    }
    // Past the cap the door's thread waits (the transport's queues fill and senders are
    // slowed) until earlier requests are handled, at most until the request's deadline.
    absl::StatusOr<actor::RequestBudget::Ticket> ticket =
        admission->Take(message.message().ByteSize(), std::min(message.deadline(), absl::Now() + kMaxAdmissionWait));
    if (!ticket.ok()) return responder.Fail(transport::Refuse(registry, "busy", ticket.status()));
    if (to_checkpoints) {
      checkpoints->Tell(CheckpointRequest{std::move(message), std::move(responder), *std::move(ticket)});
    } else {
      cluster->Tell(ClusterRequest{std::move(message), std::move(responder), *std::move(ticket)});
    }
  }
};

class CoordinatorServiceImpl final : public CoordinatorService {
 public:
  ~CoordinatorServiceImpl() override { Stop(); }
  const std::string& endpoint() const override { return endpoint_; }
  const std::string& admin_endpoint() const override { return admin_endpoint_; }
  uint64_t admin_refused() const override { return router_->admin_refused.load(); }
  void Stop() override {
    if (stopped_) return;
    stopped_ = true;
    {
      absl::MutexLock lock(&router_->mu);
      router_->cluster.reset();
      router_->checkpoints.reset();
    }
    // The actors stop before the sockets close: a connection closing under a running
    // cluster actor looked like a host that failed, and a clean stop logged a recovery.
    if (runtime_) runtime_->Shutdown(actor::Runtime::ShutdownMode::kCancel);
    if (admin_rpc_) admin_rpc_->Close();
    if (rpc_) rpc_->Close();
    cluster_.reset();
    checkpoints_.reset();
    admin_rpc_.reset();
    rpc_.reset();
    store_.reset();
  }

  CoordinatorOptions options_;
  std::string endpoint_;
  std::string admin_endpoint_;
  std::unique_ptr<CheckpointStore> store_;
  std::shared_ptr<Router> router_ = std::make_shared<Router>();
  std::unique_ptr<actor::Runtime> runtime_;
  std::unique_ptr<transport::RpcNode> rpc_;
  std::unique_ptr<transport::RpcNode> admin_rpc_;  // with options.admin_listen
  SwitchableFaultTransport* transport_ = nullptr;  // owned by rpc_
  std::shared_ptr<CheckpointActor> checkpoints_;
  std::shared_ptr<ClusterActor> cluster_;
  bool stopped_ = false;
};

absl::Status Validate(const CoordinatorOptions& o) {
  if (o.db_path.empty()) return absl::InvalidArgumentError("--db is required");
  if (o.node_id.empty()) return absl::InvalidArgumentError("node id is empty");
  if (o.expected_hosts == 0) return absl::InvalidArgumentError("--expected_hosts must be >= 1");
  if (o.max_nodes == 0) return absl::InvalidArgumentError("--max_nodes must be >= 1");
  if (o.forget_dead_after <= absl::ZeroDuration()) return absl::InvalidArgumentError("--forget_dead_after_s must be > 0");
  if (o.retain < 1) return absl::InvalidArgumentError("--retain must be >= 1");
  if (o.heartbeat_timeout <= absl::ZeroDuration()) return absl::InvalidArgumentError("--heartbeat_timeout_ms must be > 0");
  if (o.chunk_bytes < 4 || o.chunk_bytes % 4 != 0) return absl::InvalidArgumentError("chunk bytes must be a positive multiple of 4");
  if (o.rebalance_threshold < 1) return absl::InvalidArgumentError("--rebalance_threshold must be >= 1");
  if (o.admin_listen.empty() != o.admin_keys.empty()) {
    return absl::InvalidArgumentError("--admin_listen and --admin_keys go together (give both or neither)");
  }
  return absl::OkStatus();
}

// ZeroMQ wants "*" for "any port".
std::string BindSpec(const std::string& endpoint) {
  if (endpoint.size() > 2 && endpoint.substr(endpoint.size() - 2) == ":0") {
    return endpoint.substr(0, endpoint.size() - 1) + "*";
  }
  return endpoint;
}

// Binds the CURVE admin ROUTER and its RpcNode, whose requests go to `router` as Entry::kAdmin.
absl::Status StartAdminEndpoint(const CoordinatorOptions& options, const AdminKeys& keys,
                                metrics::Registry* registry, CoordinatorServiceImpl& service) {
  transport::ZmqOptions zmq;
  zmq.node_id = options.node_id;
  zmq.metrics = registry;
  zmq.curve.server_secret = keys.server_secret;  // any client that knows our key connects; Route checks its key
  auto zmq_transport = transport::ZmqTransport::Create(zmq);
  if (!zmq_transport.ok()) return zmq_transport.status();
  auto bound = (*zmq_transport)->Bind(BindSpec(options.admin_listen));
  if (!bound.ok()) return bound.status();
  service.admin_endpoint_ = *bound;
  transport::RpcOptions rpc_options;
  rpc_options.metrics = registry;
  std::shared_ptr<Router> router = service.router_;
  auto rpc = transport::RpcNode::Create(*std::move(zmq_transport), rpc_options,
                                        [router](transport::DecodedMessage m, transport::Responder r) {
                                          router->Route(std::move(m), std::move(r), Entry::kAdmin);
                                        });
  if (!rpc.ok()) return rpc.status();
  service.admin_rpc_ = *std::move(rpc);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<CoordinatorService>> CoordinatorService::Start(const CoordinatorOptions& options,
                                                                             metrics::Registry* registry,
                                                                             rocksdb::Env* storage_env) {
  if (absl::Status s = Validate(options); !s.ok()) return s;
  std::optional<AdminKeys> admin_keys;  // loaded before anything is opened: a bad file changes nothing
  if (!options.admin_keys.empty()) {
    auto keys = LoadAdminKeys(options.admin_keys);
    if (!keys.ok()) return keys.status();
    admin_keys = *std::move(keys);
  }
  absl::StatusOr<transport::CurveKeys> curve = cluster::LoadNodeCurve(options.security, options.node_id);
  if (!curve.ok()) return curve.status();
  auto service = std::make_unique<CoordinatorServiceImpl>();
  service->options_ = options;
  CheckpointStoreOptions store_options;
  store_options.retain = options.retain;
  store_options.env = storage_env;
  auto store = CheckpointStore::Open(options.db_path, store_options);
  if (!store.ok()) return store.status();
  service->store_ = *std::move(store);

  service->router_->registry = registry;
  // A few of the largest requests (state chunks) wait for the actors at most.
  actor::RequestBudget::Limits admitted;
  admitted.max_bytes = std::max<size_t>(kMinAdmittedBytes, kAdmittedLargestRequests * options.chunk_bytes);
  service->router_->admission = std::make_unique<actor::RequestBudget>("the coordinator", admitted);
  if (admin_keys.has_value()) {
    const AdminKeys* keys = &*admin_keys;
    Router& router = *service->router_;
    router.require_admin_key = true;
    router.admin_publics = keys->admin_publics;
    if (registry != nullptr) {
      const std::string help = "Admin requests refused (no authorised admin key).";
      router.refused_unknown_key =
          &registry->GetCounter("sy_coordinator_admin_refused_total", help, {{"reason", "unknown_key"}});
      router.refused_main_endpoint =
          &registry->GetCounter("sy_coordinator_admin_refused_total", help, {{"reason", "main_endpoint"}});
    }
    if (absl::Status s = StartAdminEndpoint(options, *keys, registry, *service); !s.ok()) return s;
  }

  // No frame larger than a legitimate one (a state chunk, or a header) is ever read, and
  // what waits in the queues is a few of them, whatever peers send.
  transport::RpcOptions rpc_options;
  rpc_options.metrics = registry;
  const size_t largest_frame = options.chunk_bytes + rpc_options.limits.max_header_bytes;
  rpc_options.limits.max_message_bytes = largest_frame + rpc_options.limits.max_header_bytes;
  transport::ZmqOptions zmq;
  zmq.node_id = options.node_id;
  zmq.metrics = registry;
  zmq.curve = *std::move(curve);
  zmq.max_connections = options.security.max_connections;
  zmq.on_connection_lost = [router = service->router_](const transport::ConnectionLost& lost) {
    router->ConnectionLost(lost);
  };
  zmq.max_frame_bytes = static_cast<int64_t>(largest_frame);
  zmq.receive_queue.max_bytes = std::max<size_t>(16u << 20, 8 * largest_frame);
  zmq.receive_hwm = kCoordinatorReceiveHwm;
  auto zmq_transport = transport::ZmqTransport::Create(zmq);
  if (!zmq_transport.ok()) return zmq_transport.status();
  auto bound = (*zmq_transport)->Bind(BindSpec(options.listen));
  if (!bound.ok()) return bound.status();
  service->endpoint_ = *bound;
  auto switchable = std::make_unique<SwitchableFaultTransport>(*std::move(zmq_transport));
  if (absl::Status s = switchable->SetFaultSpec(options.faults); !s.ok()) return s;
  service->transport_ = switchable.get();

  std::shared_ptr<Router> router = service->router_;
  auto rpc = transport::RpcNode::Create(std::move(switchable), rpc_options,
                                        [router](transport::DecodedMessage m, transport::Responder r) {
                                          router->Route(std::move(m), std::move(r), Entry::kMain);
                                        });
  if (!rpc.ok()) return rpc.status();
  service->rpc_ = *std::move(rpc);

  service->runtime_ = std::make_unique<actor::Runtime>(2);
  auto cluster_slot = std::make_shared<std::weak_ptr<ClusterActor>>();
  service->checkpoints_ = std::make_shared<CheckpointActor>(
      *service->runtime_, options, service->endpoint_, service->store_.get(), service->rpc_.get(),
      [cluster_slot](CheckpointEvent event) {
        if (auto cluster = cluster_slot->lock()) cluster->Tell(std::move(event));
      },
      registry);
  service->cluster_ = std::make_shared<ClusterActor>(*service->runtime_, options, service->rpc_.get(),
                                                     service->transport_, service->store_.get(),
                                                     service->checkpoints_, registry);
  *cluster_slot = service->cluster_;
  absl::StatusOr<CheckpointSnapshot> checkpoints = service->checkpoints_->Start();
  if (!checkpoints.ok()) return checkpoints.status();
  if (absl::Status s = service->cluster_->Start(*checkpoints); !s.ok()) return s;
  {
    absl::MutexLock lock(&router->mu);
    router->cluster = service->cluster_;
    router->checkpoints = service->checkpoints_;
  }
  SY_LOG(INFO) << "coordinator " << options.node_id << " listening on " << service->endpoint_
               << (service->admin_endpoint_.empty() ? "" : ", admin calls (CURVE) on " + service->admin_endpoint_);
  return std::unique_ptr<CoordinatorService>(std::move(service));
}

}  // namespace sy::coordinator
