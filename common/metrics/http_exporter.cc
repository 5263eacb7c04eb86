// Boost.Beast implementation of HttpExporter: one io_context on one thread,
// asynchronous accept, one short-lived session per connection.
#include "common/metrics/http_exporter.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/strings/str_cat.h"
#include "common/base/thread_name.h"
#include "common/log/log.h"

namespace sy::metrics {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr auto kSessionTimeout = std::chrono::seconds(10);

http::response<http::string_body> Respond(const Registry& registry,
                                          const http::request<http::string_body>& request) {
  std::string path(request.target());
  if (const size_t query = path.find('?'); query != std::string::npos) path.resize(query);
  http::response<http::string_body> response;
  response.version(request.version());
  response.keep_alive(false);
  response.set(http::field::server, "switchyard");
  if (path != "/metrics") {
    response.result(http::status::not_found);
    response.set(http::field::content_type, "text/plain");
    response.body() = "not found; metrics are at /metrics\n";
  } else if (request.method() != http::verb::get) {
    response.result(http::status::method_not_allowed);
    response.set(http::field::allow, "GET");
    response.set(http::field::content_type, "text/plain");
    response.body() = "only GET is allowed\n";
  } else {
    response.result(http::status::ok);
    response.set(http::field::content_type, "text/plain; version=0.0.4");
    response.body() = registry.RenderPrometheus();
  }
  response.prepare_payload();
  return response;
}

// Reads one request, writes one response, closes.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const Registry& registry)
      : stream_(std::move(socket)), registry_(registry) {}

  void Run() {
    stream_.expires_after(kSessionTimeout);
    http::async_read(stream_, buffer_, request_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->OnRead(ec);
                     });
  }

 private:
  void OnRead(beast::error_code ec) {
    if (ec) return;  // timeout, reset or malformed request: just drop the connection
    response_ = Respond(registry_, request_);
    http::async_write(stream_, response_,
                      [self = shared_from_this()](beast::error_code, size_t) {
                        beast::error_code ignored;
                        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                      });
  }

  beast::tcp_stream stream_;
  const Registry& registry_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
};

class BeastExporter final : public HttpExporter {
 public:
  // `acceptor` is bound and listening, and runs on `io`.
  BeastExporter(const Registry& registry, std::unique_ptr<asio::io_context> io,
                tcp::acceptor acceptor)
      : registry_(registry), io_(std::move(io)), acceptor_(std::move(acceptor)) {
    port_ = acceptor_.local_endpoint().port();
    Accept();
    thread_ = std::thread([this] {
      base::NameThisThread("sy-metrics-http");
      io_->run();
    });
  }
  ~BeastExporter() override { Shutdown(); }

  uint16_t port() const override { return port_; }

  void Shutdown() override {
    if (stopped_.exchange(true)) return;
    asio::post(*io_, [this] {
      beast::error_code ignored;
      acceptor_.close(ignored);
      io_->stop();
    });
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
      if (!ec) std::make_shared<Session>(std::move(socket), registry_)->Run();
      else SY_LOG(WARNING) << "metrics exporter: accept failed: " << ec.message();
      Accept();
    });
  }

  const Registry& registry_;
  std::unique_ptr<asio::io_context> io_;  // declared before acceptor_: outlives it
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<bool> stopped_{false};
  std::thread thread_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<HttpExporter>> HttpExporter::Start(const Registry& registry,
                                                                  const std::string& address,
                                                                  uint16_t port) {
  beast::error_code ec;
  const asio::ip::address ip = asio::ip::make_address(address, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics exporter: bad listen address '", address, "': ", ec.message()));
  }
  auto io = std::make_unique<asio::io_context>(1);
  tcp::acceptor acceptor(*io);
  const tcp::endpoint endpoint(ip, port);
  acceptor.open(endpoint.protocol(), ec);
  // SO_REUSEADDR lets a restarted service rebind over TIME_WAIT; on Linux a port
  // another socket listens on still fails to bind.
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat("metrics exporter: cannot listen on ",
                                                      address, ":", port, ": ", ec.message()));
  }
  auto exporter = std::make_unique<BeastExporter>(registry, std::move(io), std::move(acceptor));
  // The bound port, for whoever started the process with port 0 (tests, dashboards by hand).
  SY_LOG(INFO) << "metrics: serving http://" << address << ":" << exporter->port() << "/metrics";
  return std::unique_ptr<HttpExporter>(std::move(exporter));
}

}  // namespace sy::metrics
