// Metrics registry: counters, gauges and histograms identified by name + labels,
// rendered in the Prometheus text exposition format 0.0.4. There is no global
// registry: each service creates one and passes it explicitly to what it runs.
//
// Thread-safe. Get* returns the same object for the same name and labels (label
// order does not matter); references stay valid for the registry's lifetime.
// Updating a metric is lock-free. Names and label names are chosen by code, not
// by input: an invalid name, or one name reused with another type or other
// histogram bounds, is a programmer error and aborts (SY_CHECK).
//
//   sy::metrics::Registry registry;
//   auto& sent = registry.GetCounter("sy_frames_sent_total", "Frames sent.", {{"peer", "h1"}});
//   sent.Increment();
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace sy::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

// Monotonic counter. Increment by a negative amount is ignored (counters never go down).
class Counter {
 public:
  void Increment(double amount = 1);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double amount);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Histogram with fixed finite upper bounds (strictly increasing); +Inf is implicit.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double value);

  const std::vector<double>& upper_bounds() const { return upper_bounds_; }
  // Cumulative counts, one per upper bound plus the final +Inf bucket.
  std::vector<uint64_t> CumulativeCounts() const;
  uint64_t count() const;  // == CumulativeCounts().back()
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> upper_bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> bucket_counts_;  // per bucket, not cumulative
  std::atomic<double> sum_{0};
};

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Counter& GetCounter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& GetGauge(const std::string& name, const std::string& help, const Labels& labels = {});
  // Every series of one histogram name must use the same upper bounds.
  Histogram& GetHistogram(const std::string& name, const std::string& help,
                          std::vector<double> upper_bounds, const Labels& labels = {});

  // Prometheus text format 0.0.4, families sorted by name, series by labels.
  std::string RenderPrometheus() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Series {
    Labels labels;  // sorted by label name
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };
  struct Family {
    Type type;
    std::string help;
    std::vector<double> upper_bounds;          // histograms only
    std::map<std::string, Series> series;      // key: canonical label string
  };

  Series& FindOrAdd(const std::string& name, const std::string& help, Type type,
                    const Labels& labels, const std::vector<double>& upper_bounds);

  mutable absl::Mutex mu_;
  std::map<std::string, Family> families_ ABSL_GUARDED_BY(mu_);
};

// Formats a sample value as Prometheus expects: shortest round-trip decimal,
// "+Inf", "-Inf", "NaN".
std::string FormatValue(double value);

}  // namespace sy::metrics
