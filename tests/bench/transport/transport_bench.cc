// transport_bench: Switchyard's RPC layer (ZmqTransport + RpcNode, envelope header plus a
// tensor frame) against a bare libzmq DEALER/ROUTER loop moving the same bytes, between
// two processes over tcp loopback, measured in the same run. For 4 KiB and 1 MiB
// frames: ping-pong round-trip p50/p99 and MB/s (Switchyard: blocking Call), and
// pipelined MB/s (16 in flight; Switchyard: each reply's callback starts the next call).
// MB/s counts payload bytes in both directions. Each figure is the best of three rounds
// that alternate the two sides, so both see the same machine load (shared machines are
// noisy); a round's p50/p99 go with its MB/s. The child process is this binary
// re-executed with --serve; it prints its two endpoints and serves until stdin closes.
// Each run measures two modes, each against its own baseline: CurveZMQ (the cluster's
// default: the Switchyard pair with a cluster allowlist, the bare loop with
// libzmq's CURVE on the same key pairs, without an allowlist, whose ZAP check only
// runs at the handshake) and plain TCP on both sides. The keys reach the child in
// SY_BENCH_CURVE. Each case also runs the bare client reading its replies as a thread
// that waits on more than one socket must (LoopReceive: a non-blocking read, and a poll of
// the ZMQ_FD only after a read that would block), as Switchyard's callers and I/O thread
// do: its MB/s over the blocking bare client's is
// `ratio transport_{4k,1m}_{pingpong,window}_loop_bound[_plain]`, the most a client driven
// that way reaches over libzmq. After the tables come the machine-readable lines, those
// bounds first, then the headline `ratio transport_{4k,1m}_{pingpong,window}[_plain] VALUE`
// (Switchyard MB/s over bare libzmq MB/s; without `_plain`, the CurveZMQ mode).
// Under each case's rows, a table says where its ping-pongs' CPU time went: microseconds
// per round trip, thread by thread in both processes (thread_cpu.h), for Switchyard and
// for the event-loop bare client against the bare echo server. Time on CPU is steadier
// than latency on a shared machine, and it shows which side and thread the RPC layer's
// cost lands on.
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/base/process_setup.h"
#include "common/base/thread_name.h"
#include "common/transport/envelope_codec.h"
#include "common/transport/peer_allowlist.h"
#include "common/transport/rpc.h"
#include "common/transport/zmq_transport.h"
#include "tests/bench/support/thread_cpu.h"

extern char** environ;

namespace sy::transport {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kWindow = 16;
constexpr int kRounds = 3;

// ---- child: both echo servers --------------------------------------------------------

// The bench's two key pairs, server's then client's, as "pub sec pub sec" (SY_BENCH_CURVE).
std::vector<std::string> BenchKeys() {
  const char* text = std::getenv("SY_BENCH_CURVE");
  std::vector<std::string> keys;
  if (text == nullptr) return keys;
  char a[41], b[41], c[41], d[41];
  if (std::sscanf(text, "%40s %40s %40s %40s", a, b, c, d) == 4) keys = {a, b, c, d};
  return keys;
}

// With SY_BENCH_CURVE: our pair (`server` picks which) and the allowlist of both.
CurveKeys BenchCurve(bool server) {
  const std::vector<std::string> keys = BenchKeys();
  CurveKeys curve;
  if (keys.size() != 4) return curve;
  curve.allowlist = *PeerAllowlist::FromText("host server " + keys[0] + "\ntrainer bench-client " + keys[2] + "\n");
  curve.client_public = keys[server ? 0 : 2];
  curve.client_secret = keys[server ? 1 : 3];
  curve.server_secret = curve.client_secret;
  return curve;
}

int Serve() {
  ZmqOptions options;
  options.node_id = "server";
  options.curve = BenchCurve(/*server=*/true);
  auto transport = ZmqTransport::Create(options);
  if (!transport.ok()) return 1;
  auto sy_endpoint = (*transport)->Bind("tcp://127.0.0.1:*");
  if (!sy_endpoint.ok()) return 1;
  auto node = RpcNode::Create(*std::move(transport), {}, [](DecodedMessage request, Responder responder) {
    capnp::MallocMessageBuilder reply;
    auto envelope = reply.initRoot<proto::Envelope>();
    envelope.setKind(request.envelope().getKind());
    envelope.setTensors(request.envelope().getTensors());
    responder.Reply(reply, request.message().data);
  });
  if (!node.ok()) return 1;

  zmq::context_t context(1);
  zmq::socket_t router(context, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  if (const std::vector<std::string> keys = BenchKeys(); !keys.empty()) {
    router.set(zmq::sockopt::curve_server, true);
    router.set(zmq::sockopt::curve_secretkey, keys[1]);
  }
  router.bind("tcp://127.0.0.1:*");
  const std::string bare_endpoint = router.get(zmq::sockopt::last_endpoint);
  std::atomic<bool> stop{false};
  std::thread bare([&] {
    base::NameThisThread("bare-echo");
    while (!stop) {
      zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(50));
      if (!(item.revents & ZMQ_POLLIN)) continue;
      std::vector<zmq::message_t> parts;
      do {
        zmq::message_t part;
        (void)router.recv(part);
        parts.push_back(std::move(part));
      } while (parts.back().more());
      for (size_t i = 0; i < parts.size(); ++i) {
        router.send(parts[i], i + 1 < parts.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
      }
    }
  });
  std::printf("%s %s\n", sy_endpoint->c_str(), bare_endpoint.c_str());
  std::fflush(stdout);
  while (std::fgetc(stdin) != EOF) {
  }
  stop = true;
  bare.join();
  return 0;
}

// ---- parent: measurements ------------------------------------------------------------

struct Result {
  double p50_us = 0, p99_us = 0, mb_per_s = 0;
};

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))];
}

Result Summarize(const std::vector<double>& latencies_us, size_t bytes, double seconds, int messages) {
  Result r;
  if (!latencies_us.empty()) {
    r.p50_us = Percentile(latencies_us, 0.5);
    r.p99_us = Percentile(latencies_us, 0.99);
  }
  r.mb_per_s = 2.0 * bytes * messages / seconds / 1e6;
  return r;
}

// Keeps the faster of two measurements.
void KeepBest(Result* best, const Result& r) {
  if (r.mb_per_s > best->mb_per_s) *best = r;
}

double Since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

Frame Payload(size_t bytes) { return Frame::FromVector(std::vector<uint8_t>(bytes, 0x5A)); }

void FillRequest(capnp::MallocMessageBuilder& builder, size_t bytes) {
  auto envelope = builder.initRoot<proto::Envelope>();
  envelope.setKind(proto::MessageKind::PING);
  SetTensor(envelope.initTensors(1)[0], "x", proto::TensorRole::ACTIVATIONS, proto::DType::F32, {bytes / 4});
}

Result SyPingPong(RpcNode& client, size_t bytes, int iterations) {
  const Frame payload = Payload(bytes);
  std::vector<double> latencies;
  Clock::time_point start;
  for (int i = -iterations / 10; i < iterations; ++i) {
    if (i == 0) start = Clock::now();
    const auto t0 = Clock::now();
    capnp::MallocMessageBuilder builder;
    FillRequest(builder, bytes);
    auto reply = client.Call({"server"}, builder, {payload}, absl::Now() + absl::Seconds(30));
    if (!reply.ok() || reply->data(0).size() != bytes) {
      std::fprintf(stderr, "sy call failed: %s\n", reply.status().ToString().c_str());
      std::exit(1);
    }
    if (i >= 0) latencies.push_back(Since(t0) * 1e6);
  }
  return Summarize(latencies, bytes, Since(start), iterations);
}

// Keeps kWindow calls in flight the asynchronous way: each reply's callback (on the
// transport's I/O thread) starts the next call, as the bare loop's one thread does.
class PipelinedCalls {
 public:
  PipelinedCalls(RpcNode& client, size_t bytes, int iterations)
      : client_(client), bytes_(bytes), iterations_(iterations), payload_(Payload(bytes)) {}

  Result Run() {
    const auto start = Clock::now();
    const int first = std::min(kWindow, iterations_);
    {
      absl::MutexLock lock(&mu_);
      started_ = first;
    }
    for (int i = 0; i < first; ++i) Issue();
    absl::MutexLock lock(&mu_);
    auto all_done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_ == iterations_; };
    mu_.Await(absl::Condition(&all_done));
    if (failed_ > 0) {
      std::fprintf(stderr, "%d pipelined calls failed\n", failed_);
      std::exit(1);
    }
    return Summarize({}, bytes_, Since(start), iterations_);
  }

 private:
  // The last callback touches nothing after counting itself done: Run may return then.
  void Issue() {
    capnp::MallocMessageBuilder builder;
    FillRequest(builder, bytes_);
    client_.CallAsync({"server"}, builder, {payload_}, absl::Now() + absl::Seconds(30),
                      [this](absl::StatusOr<DecodedMessage> reply) {
                        bool another = false;
                        {
                          absl::MutexLock lock(&mu_);
                          failed_ += !reply.ok();
                          another = started_ < iterations_;
                          started_ += another;
                          ++done_;
                        }
                        if (another) Issue();
                      });
  }

  RpcNode& client_;
  const size_t bytes_;
  const int iterations_;
  const Frame payload_;
  absl::Mutex mu_;
  int started_ ABSL_GUARDED_BY(mu_) = 0;
  int done_ ABSL_GUARDED_BY(mu_) = 0;
  int failed_ ABSL_GUARDED_BY(mu_) = 0;
};

// The bare loop sends an 8-byte id frame plus the payload frame (zero-copy), like a
// minimal header, and the ROUTER echoes both back.
void BareSend(zmq::socket_t& dealer, const std::vector<uint8_t>& buffer, uint64_t id) {
  dealer.send(zmq::buffer(&id, sizeof(id)), zmq::send_flags::sndmore);
  dealer.send(zmq::message_t(const_cast<uint8_t*>(buffer.data()), buffer.size(), nullptr), zmq::send_flags::none);
}

// The echo's payload frame must be the one sent: a wrong size ends the bench.
void ExpectEchoed(const zmq::message_t& data, size_t bytes) {
  if (data.size() == bytes) return;
  std::fprintf(stderr, "bare echo returned %zu bytes\n", data.size());
  std::exit(1);
}

void BareReceive(zmq::socket_t& dealer, size_t bytes) {
  zmq::message_t id, data;
  (void)dealer.recv(id);
  (void)dealer.recv(data);
  ExpectEchoed(data, bytes);
}

// How a thread must read a socket when it waits on more than that socket (an event loop,
// or Switchyard's caller reading its own reply): a non-blocking read, and only when the
// socket would block (which re-arms libzmq's edge-triggered ZMQ_FD) a poll(2) on that
// descriptor. Each would-block read costs libzmq a getpid and a poll of its mailbox.
void LoopReceive(zmq::socket_t& dealer, size_t bytes) {
  zmq::message_t id, data;
  const int fd = dealer.get(zmq::sockopt::fd);
  while (!dealer.recv(id, zmq::recv_flags::dontwait)) {
    pollfd wait{fd, POLLIN, 0};
    (void)poll(&wait, 1, -1);
  }
  (void)dealer.recv(data);  // the rest of a message is already here
  ExpectEchoed(data, bytes);
}

// Blocking sends and receives (`receive`: BareReceive, or LoopReceive for the bound).
Result BarePingPong(zmq::socket_t& dealer, size_t bytes, int iterations,
                    void (*receive)(zmq::socket_t&, size_t) = BareReceive) {
  const std::vector<uint8_t> buffer(bytes, 0x5A);
  std::vector<double> latencies;
  Clock::time_point start;
  for (int i = -iterations / 10; i < iterations; ++i) {
    if (i == 0) start = Clock::now();
    const auto t0 = Clock::now();
    BareSend(dealer, buffer, static_cast<uint64_t>(i));
    receive(dealer, bytes);
    if (i >= 0) latencies.push_back(Since(t0) * 1e6);
  }
  return Summarize(latencies, bytes, Since(start), iterations);
}

Result BarePipelined(zmq::socket_t& dealer, size_t bytes, int iterations,
                     void (*receive)(zmq::socket_t&, size_t) = BareReceive) {
  const std::vector<uint8_t> buffer(bytes, 0x5A);
  const auto start = Clock::now();
  int sent = 0;
  for (; sent < std::min(kWindow, iterations); ++sent) BareSend(dealer, buffer, sent);
  for (int received = 0; received < iterations; ++received) {
    receive(dealer, bytes);
    if (sent < iterations) BareSend(dealer, buffer, sent++);
  }
  return Summarize({}, bytes, Since(start), iterations);
}

// One headline ratio: `ratio NAME VALUE` after the tables.
struct Ratio {
  std::string name;
  double value = 0;
};

// Where the ping-pongs' CPU time went, per round trip, thread by thread in both
// processes: Switchyard's calls against the bound's bare client (which reads as an event
// loop must), over all rounds. Switchyard's own threads are named sy-...; the bare echo
// server's thread bare-echo; the bench's caller is the client's main thread.
void PrintCpuByThread(const char* label, const bench::ThreadCpuTally& sy, const bench::ThreadCpuTally& loop) {
  const std::map<std::string, double> sy_us = sy.MicrosPerRoundTrip(), loop_us = loop.MicrosPerRoundTrip();
  std::map<std::string, std::pair<double, double>> rows;
  for (const auto& [name, us] : sy_us) rows[name].first = us;
  for (const auto& [name, us] : loop_us) rows[name].second = us;
  std::printf("  %s ping-pong, CPU us per round trip by process/thread %13s %8s\n", label, "Switchyard", "bare*");
  double sy_total = 0, loop_total = 0;
  for (const auto& [name, us] : rows) {
    std::printf("    %-55s %10.1f %8.1f\n", name.c_str(), us.first, us.second);
    sy_total += us.first;
    loop_total += us.second;
  }
  std::printf("    %-55s %10.1f %8.1f\n", "all threads", sy_total, loop_total);
}

// The bare DEALER, with libzmq's CURVE client options when the run has keys.
void ConfigureBareDealer(zmq::socket_t& dealer) {
  dealer.set(zmq::sockopt::linger, 0);
  const std::vector<std::string> keys = BenchKeys();
  if (keys.empty()) return;
  dealer.set(zmq::sockopt::curve_serverkey, keys[0]);
  dealer.set(zmq::sockopt::curve_publickey, keys[2]);
  dealer.set(zmq::sockopt::curve_secretkey, keys[3]);
}

// Measures one mode (CurveZMQ when SY_BENCH_CURVE is set, else plain TCP) against a
// child server started in that mode; appends its ratios and bounds, named with `suffix`.
int Measure(const char* self, const std::string& suffix, std::vector<Ratio>* ratios, std::vector<Ratio>* bounds) {
  int to_child[2], from_child[2];
  if (pipe(to_child) != 0 || pipe(from_child) != 0) return 1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, to_child[0], 0);
  posix_spawn_file_actions_adddup2(&actions, from_child[1], 1);
  posix_spawn_file_actions_addclose(&actions, to_child[1]);
  posix_spawn_file_actions_addclose(&actions, from_child[0]);
  std::string path = self;
  char serve[] = "--serve";
  char* argv[] = {path.data(), serve, nullptr};
  pid_t child;
  if (posix_spawn(&child, self, &actions, nullptr, argv, environ) != 0) return 1;
  close(to_child[0]);
  close(from_child[1]);
  FILE* out = fdopen(from_child[0], "r");
  char sy_endpoint[128] = {0}, bare_endpoint[128] = {0};
  if (std::fscanf(out, "%127s %127s", sy_endpoint, bare_endpoint) != 2) return 1;

  ZmqOptions options;
  options.node_id = "bench-client";
  options.curve = BenchCurve(/*server=*/false);
  auto transport = ZmqTransport::Create(options);
  if (!transport.ok() || !(*transport)->Connect("server", sy_endpoint).ok()) return 1;
  RpcOptions rpc_options;
  rpc_options.attempt_timeout = absl::Seconds(10);  // measure the transport, not retries
  auto client = RpcNode::Create(*std::move(transport), rpc_options, nullptr);
  if (!client.ok()) return 1;
  zmq::context_t context(1);
  zmq::socket_t dealer(context, zmq::socket_type::dealer);
  ConfigureBareDealer(dealer);
  dealer.connect(bare_endpoint);

  const bool curve = !BenchKeys().empty();
  std::printf("\ntransport_bench: two processes over tcp loopback; MB/s counts payload both ways; %s\n",
              curve ? "CurveZMQ: sy with an allowlist, bare libzmq CURVE on the same keys" : "plain TCP on both sides");
  std::printf("%-8s %-10s %12s %12s %10s | %12s %12s %10s | %6s\n", "frame", "mode", "sy p50 us", "sy p99 us",
              "sy MB/s", "zmq p50 us", "zmq p99 us", "zmq MB/s", "ratio");
  struct Case {
    const char* label;
    const char* name;
    size_t bytes;
    int iterations;
  };
  for (const Case& c : {Case{"4 KiB", "4k", 4096, 4000}, Case{"1 MiB", "1m", 1 << 20, 200}}) {
    Result bare, loop, sy, bare_pipe, loop_pipe, sy_pipe;
    const std::vector<std::pair<std::string, pid_t>> processes = {{"client", getpid()}, {"server", child}};
    bench::ThreadCpuTally loop_cpu(processes), sy_cpu(processes);
    const int round_trips = c.iterations + c.iterations / 10;  // the ping-pongs' warm-up included
    for (int round = 0; round < kRounds; ++round) {
      KeepBest(&bare, BarePingPong(dealer, c.bytes, c.iterations));
      loop_cpu.Start();
      KeepBest(&loop, BarePingPong(dealer, c.bytes, c.iterations, LoopReceive));
      loop_cpu.Stop(round_trips);
      sy_cpu.Start();
      KeepBest(&sy, SyPingPong(**client, c.bytes, c.iterations));
      sy_cpu.Stop(round_trips);
      KeepBest(&bare_pipe, BarePipelined(dealer, c.bytes, c.iterations * 2));
      KeepBest(&loop_pipe, BarePipelined(dealer, c.bytes, c.iterations * 2, LoopReceive));
      KeepBest(&sy_pipe, PipelinedCalls(**client, c.bytes, c.iterations * 2).Run());
    }
    const double pingpong = sy.mb_per_s / bare.mb_per_s;
    std::printf("%-8s %-10s %12.1f %12.1f %10.1f | %12.1f %12.1f %10.1f | %6.2f\n", c.label, "ping-pong", sy.p50_us,
                sy.p99_us, sy.mb_per_s, bare.p50_us, bare.p99_us, bare.mb_per_s, pingpong);
    const double window = sy_pipe.mb_per_s / bare_pipe.mb_per_s;
    std::printf("%-8s %-10s %12s %12s %10.1f | %12s %12s %10.1f | %6.2f\n", c.label, "window=16", "-", "-",
                sy_pipe.mb_per_s, "-", "-", bare_pipe.mb_per_s, window);
    std::printf("%-8s %-10s %12s %12s %10s | %12.1f %12.1f %10.1f | %6.2f\n", c.label, "ping-pong*", "", "", "",
                loop.p50_us, loop.p99_us, loop.mb_per_s, loop.mb_per_s / bare.mb_per_s);
    std::printf("%-8s %-10s %12s %12s %10s | %12s %12s %10.1f | %6.2f\n", c.label, "window=16*", "", "", "", "-", "-",
                loop_pipe.mb_per_s, loop_pipe.mb_per_s / bare_pipe.mb_per_s);
    PrintCpuByThread(c.label, sy_cpu, loop_cpu);
    ratios->push_back({std::string("transport_") + c.name + "_pingpong" + suffix, pingpong});
    ratios->push_back({std::string("transport_") + c.name + "_window" + suffix, window});
    bounds->push_back({std::string("transport_") + c.name + "_pingpong_loop_bound" + suffix,
                       loop.mb_per_s / bare.mb_per_s});
    bounds->push_back({std::string("transport_") + c.name + "_window_loop_bound" + suffix,
                       loop_pipe.mb_per_s / bare_pipe.mb_per_s});
  }
  std::printf("* the bound: the bare client reading as a thread that waits on more than one socket must, over the\n"
              "  blocking bare client; in the CPU tables, that client against the bare echo server\n");
  std::fflush(stdout);
  (*client)->Close();
  close(to_child[1]);
  int status = 0;
  waitpid(child, &status, 0);
  fclose(out);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

// Both modes, plain first, then the ratio lines.
int MeasureBothModes(const char* self) {
  std::vector<Ratio> ratios, bounds;
  unsetenv("SY_BENCH_CURVE");
  if (Measure(self, "_plain", &ratios, &bounds) != 0) return 1;
  char server_public[41], server_secret[41], client_public[41], client_secret[41];
  if (zmq_curve_keypair(server_public, server_secret) != 0 || zmq_curve_keypair(client_public, client_secret) != 0) {
    return 1;
  }
  const std::string keys = std::string(server_public) + " " + server_secret + " " + client_public + " " + client_secret;
  setenv("SY_BENCH_CURVE", keys.c_str(), 1);  // the child inherits it
  if (Measure(self, "", &ratios, &bounds) != 0) return 1;
  std::printf("\n");
  for (const Ratio& r : bounds) std::printf("ratio %s %.3f\n", r.name.c_str(), r.value);
  for (const Ratio& r : ratios) std::printf("ratio %s %.3f\n", r.name.c_str(), r.value);
  return 0;
}

}  // namespace
}  // namespace sy::transport

int main(int argc, char** argv) {
  sy::base::SetUpProcess();
  if (argc > 1 && std::strcmp(argv[1], "--serve") == 0) return sy::transport::Serve();
  if (argc > 1) {
    std::fprintf(stderr, "usage: transport_bench (measures CurveZMQ and plain TCP; takes no arguments)\n");
    return 2;
  }
  return sy::transport::MeasureBothModes("/proc/self/exe");
}
