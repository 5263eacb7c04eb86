// Tests for sy_metrics: identity of series, Prometheus text format, histogram
// buckets, independence of registries, concurrency, and the HTTP endpoint over
// a real loopback socket.
#include "common/metrics/registry.h"

#include <cmath>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "common/metrics/http_exporter.h"
#include "gtest/gtest.h"

namespace sy::metrics {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(RegistryTest, SameNameAndLabelsGiveTheSameObject) {
  Registry registry;
  Counter& a = registry.GetCounter("sy_requests_total", "Requests.", {{"peer", "h1"}, {"op", "fwd"}});
  Counter& b = registry.GetCounter("sy_requests_total", "Requests.", {{"op", "fwd"}, {"peer", "h1"}});
  Counter& c = registry.GetCounter("sy_requests_total", "Requests.", {{"op", "bwd"}, {"peer", "h1"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &c);
  a.Increment();
  b.Increment(2.5);
  a.Increment(-7);  // counters never go down
  EXPECT_DOUBLE_EQ(a.value(), 3.5);
  EXPECT_DOUBLE_EQ(c.value(), 0);
  Gauge& g = registry.GetGauge("sy_queue_depth", "Depth.");
  g.Set(10);
  g.Add(-3);
  EXPECT_DOUBLE_EQ(registry.GetGauge("sy_queue_depth", "Depth.").value(), 7);
}

TEST(RegistryTest, RendersValidPrometheusText) {
  Registry registry;
  registry.GetCounter("sy_frames_total", "Frames \\ sent.\nSecond line.", {{"peer", "a\"b\\c\nd"}})
      .Increment(3);
  registry.GetGauge("sy_temperature", "Degrees.").Set(-1.5);
  registry.GetHistogram("sy_latency_seconds", "Latency.", {0.01, 0.1, 1}, {{"op", "fwd"}})
      .Observe(0.05);
  const std::string text = registry.RenderPrometheus();
  const std::regex help(R"(^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$)");
  const std::regex type(R"(^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram)$)");
  const std::regex sample(
      R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\["\\n])*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\["\\n])*")*\})? (-?[0-9.e+-]+|[+-]Inf|NaN)$)");
  for (const std::string& line : Lines(text)) {
    EXPECT_TRUE(std::regex_match(line, help) || std::regex_match(line, type) ||
                std::regex_match(line, sample))
        << "bad line: " << line;
  }
  EXPECT_NE(text.find("# HELP sy_frames_total Frames \\\\ sent.\\nSecond line.\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("sy_frames_total{peer=\"a\\\"b\\\\c\\nd\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE sy_temperature gauge\nsy_temperature -1.5\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE sy_latency_seconds histogram\n"), std::string::npos);
  // Families are sorted by name.
  EXPECT_LT(text.find("sy_frames_total"), text.find("sy_latency_seconds"));
  EXPECT_LT(text.find("sy_latency_seconds"), text.find("sy_temperature"));
}

TEST(RegistryTest, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Registry registry;
  Histogram& h = registry.GetHistogram("sy_bucket_tokens", "Tokens per bucket.", {1, 10, 100});
  for (double v : {0.5, 1.0, 5.0, 10.0, 50.0, 1000.0, 2000.0}) h.Observe(v);
  const std::string text = registry.RenderPrometheus();
  const std::string expected =
      "sy_bucket_tokens_bucket{le=\"1\"} 2\n"
      "sy_bucket_tokens_bucket{le=\"10\"} 4\n"
      "sy_bucket_tokens_bucket{le=\"100\"} 5\n"
      "sy_bucket_tokens_bucket{le=\"+Inf\"} 7\n"
      "sy_bucket_tokens_sum 3066.5\n"
      "sy_bucket_tokens_count 7\n";
  EXPECT_NE(text.find(expected), std::string::npos) << text;
  const std::vector<uint64_t> cumulative = h.CumulativeCounts();
  for (size_t i = 1; i < cumulative.size(); ++i) EXPECT_LE(cumulative[i - 1], cumulative[i]);
  EXPECT_EQ(h.count(), 7u);

  Histogram& labelled =
      registry.GetHistogram("sy_bucket_tokens", "Tokens per bucket.", {1, 10, 100}, {{"e", "3"}});
  labelled.Observe(3);
  EXPECT_NE(registry.RenderPrometheus().find("sy_bucket_tokens_bucket{e=\"3\",le=\"10\"} 1\n"),
            std::string::npos);
}

TEST(RegistryTest, TwoRegistriesAreIndependent) {
  Registry first, second;
  first.GetCounter("sy_steps_total", "Steps.").Increment(5);
  EXPECT_DOUBLE_EQ(second.GetCounter("sy_steps_total", "Steps.").value(), 0);
  EXPECT_NE(first.RenderPrometheus().find("sy_steps_total 5\n"), std::string::npos);
  EXPECT_NE(second.RenderPrometheus().find("sy_steps_total 0\n"), std::string::npos);
  EXPECT_EQ(Registry().RenderPrometheus(), "");
}

TEST(RegistryTest, ConcurrentUpdatesAreNotLost) {
  Registry registry;
  constexpr int kThreads = 4, kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&registry] {
      for (int i = 0; i < kPerThread; ++i) {
        registry.GetCounter("sy_hits_total", "Hits.").Increment();
        registry.GetGauge("sy_level", "Level.").Add(0.5);
        registry.GetHistogram("sy_sizes", "Sizes.", {2}).Observe(i % 4);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_DOUBLE_EQ(registry.GetCounter("sy_hits_total", "Hits.").value(), kThreads * kPerThread);
  EXPECT_DOUBLE_EQ(registry.GetGauge("sy_level", "Level.").value(), kThreads * kPerThread * 0.5);
  Histogram& sizes = registry.GetHistogram("sy_sizes", "Sizes.", {2});
  EXPECT_EQ(sizes.count(), static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(sizes.CumulativeCounts()[0], static_cast<uint64_t>(kThreads * kPerThread * 3 / 4));
}

TEST(RegistryTest, FormatValueRoundTripsAndSpellsSpecials) {
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(1234567.0), "1234567");
  EXPECT_EQ(FormatValue(1e21), "1e+21");
  EXPECT_EQ(FormatValue(INFINITY), "+Inf");
  EXPECT_EQ(FormatValue(-INFINITY), "-Inf");
  EXPECT_EQ(FormatValue(NAN), "NaN");
  EXPECT_EQ(std::stod(FormatValue(1.0 / 3)), 1.0 / 3);
}

TEST(RegistryDeathTest, ReusingANameWithAnotherTypeIsAProgrammerError) {
  Registry registry;
  registry.GetCounter("sy_thing", "A thing.");
  EXPECT_DEATH(registry.GetGauge("sy_thing", "A thing."), "already registered as counter");
  EXPECT_DEATH(registry.GetCounter("bad name", "x"), "invalid metric name");
  EXPECT_DEATH(registry.GetHistogram("sy_h", "x", {2, 1}), "strictly increasing");
}

// One HTTP/1.1 request over a fresh loopback connection; returns the raw response.
std::string HttpGet(uint16_t port, const std::string& method, const std::string& path) {
  namespace asio = boost::asio;
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), port});
  const std::string request =
      method + " " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  asio::write(socket, asio::buffer(request));
  std::string response;
  boost::system::error_code ec;
  asio::read(socket, asio::dynamic_buffer(response), ec);  // until the server closes
  return response;
}

TEST(HttpExporterTest, ServesMetricsAnd404OverARealSocket) {
  Registry registry;
  registry.GetCounter("sy_served_total", "Served.", {{"kind", "test"}}).Increment(42);
  auto exporter = HttpExporter::Start(registry, "127.0.0.1", 0);
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  const uint16_t port = (*exporter)->port();
  ASSERT_NE(port, 0);

  const std::string ok = HttpGet(port, "GET", "/metrics");
  EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << ok;
  EXPECT_NE(ok.find("Content-Type: text/plain; version=0.0.4\r\n"), std::string::npos) << ok;
  const std::string body = ok.substr(ok.find("\r\n\r\n") + 4);
  EXPECT_EQ(body, registry.RenderPrometheus());
  EXPECT_NE(body.find("sy_served_total{kind=\"test\"} 42\n"), std::string::npos);

  EXPECT_EQ(HttpGet(port, "GET", "/").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(HttpGet(port, "GET", "/metricsx").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(HttpGet(port, "POST", "/metrics").rfind("HTTP/1.1 405", 0), 0u);

  // Live values: the next scrape sees the update.
  registry.GetCounter("sy_served_total", "Served.", {{"kind", "test"}}).Increment();
  EXPECT_NE(HttpGet(port, "GET", "/metrics?x=1").find("sy_served_total{kind=\"test\"} 43\n"),
            std::string::npos);

  (*exporter)->Shutdown();
  (*exporter)->Shutdown();  // idempotent
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  boost::system::error_code ec;
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), port}, ec);
  EXPECT_TRUE(ec) << "still accepting after Shutdown";
}

TEST(HttpExporterTest, BusyPortAndBadAddressGiveClearErrors) {
  Registry registry;
  auto first = HttpExporter::Start(registry, "127.0.0.1", 0);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = HttpExporter::Start(registry, "127.0.0.1", (*first)->port());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find(std::to_string((*first)->port())), std::string::npos);
  auto bad = HttpExporter::Start(registry, "not-an-address", 0);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  // The first exporter is unaffected.
  EXPECT_EQ(HttpGet((*first)->port(), "GET", "/metrics").rfind("HTTP/1.1 200", 0), 0u);
}

}  // namespace
}  // namespace sy::metrics
