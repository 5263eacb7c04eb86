// Registry storage and the Prometheus text renderer.
#include "common/metrics/registry.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"

namespace sy::metrics {
namespace {

void AtomicAdd(std::atomic<double>& target, double amount) {
  double current = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(current, current + amount, std::memory_order_relaxed)) {
  }
}

bool IsValidName(const std::string& name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                       (allow_colon && c == ':');
    const bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) return false;
  }
  return true;
}

// Label values escape backslash, double quote and newline; HELP escapes backslash and newline.
std::string Escape(const std::string& text, bool quote) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

Labels SortedLabels(const Labels& labels) {
  Labels sorted = labels;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) {
    SY_CHECK(IsValidName(sorted[i].first, false) && sorted[i].first.rfind("__", 0) != 0)
        << "invalid label name '" << sorted[i].first << "'";
    SY_CHECK(sorted[i].first != "le") << "label 'le' is reserved for histogram buckets";
    SY_CHECK(i == 0 || sorted[i].first != sorted[i - 1].first)
        << "duplicate label '" << sorted[i].first << "'";
  }
  return sorted;
}

// `{a="x",b="y"}` (with `extra` appended inside the braces); empty when there is nothing.
std::string RenderLabels(const Labels& labels, const std::string& extra = "") {
  if (labels.empty() && extra.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ',';
    absl::StrAppend(&out, labels[i].first, "=\"", Escape(labels[i].second, true), "\"");
  }
  if (!extra.empty()) {
    if (!labels.empty()) out += ',';
    out += extra;
  }
  out += '}';
  return out;
}

const char* TypeName(int type) {
  switch (type) {
    case 0: return "counter";
    case 1: return "gauge";
    default: return "histogram";
  }
}

}  // namespace

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[32];
  const std::to_chars_result end = std::to_chars(buf, buf + sizeof(buf), value);  // shortest round-trip
  return std::string(buf, end.ptr);
}

void Counter::Increment(double amount) {
  if (!(amount > 0)) return;  // also drops NaN
  AtomicAdd(value_, amount);
}

void Gauge::Add(double amount) { AtomicAdd(value_, amount); }

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)),
      bucket_counts_(new std::atomic<uint64_t>[upper_bounds_.size() + 1]) {
  for (size_t i = 0; i < upper_bounds_.size(); ++i) {
    SY_CHECK(std::isfinite(upper_bounds_[i])) << "histogram bounds must be finite";
    SY_CHECK(i == 0 || upper_bounds_[i - 1] < upper_bounds_[i])
        << "histogram bounds must be strictly increasing";
  }
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) bucket_counts_[i].store(0);
}

void Histogram::Observe(double value) {
  // First bucket whose upper bound is >= value (Prometheus buckets are "le").
  const size_t bucket =
      std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) - upper_bounds_.begin();
  bucket_counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(sum_, value);
}

std::vector<uint64_t> Histogram::CumulativeCounts() const {
  std::vector<uint64_t> cumulative(upper_bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i < cumulative.size(); ++i) {
    running += bucket_counts_[i].load(std::memory_order_relaxed);
    cumulative[i] = running;
  }
  return cumulative;
}

uint64_t Histogram::count() const { return CumulativeCounts().back(); }

Registry::Series& Registry::FindOrAdd(const std::string& name, const std::string& help, Type type,
                                      const Labels& labels,
                                      const std::vector<double>& upper_bounds) {
  SY_CHECK(IsValidName(name, true)) << "invalid metric name '" << name << "'";
  Labels sorted = SortedLabels(labels);
  const std::string key = RenderLabels(sorted);
  absl::MutexLock lock(&mu_);
  auto [family_it, family_added] = families_.try_emplace(name);
  Family& family = family_it->second;
  if (family_added) {
    family.type = type;
    family.help = help;
    family.upper_bounds = upper_bounds;
  }
  SY_CHECK(family.type == type) << "metric '" << name << "' already registered as "
                                << TypeName(static_cast<int>(family.type));
  SY_CHECK(family.upper_bounds == upper_bounds)
      << "histogram '" << name << "' already registered with other bounds";
  auto [series_it, series_added] = family.series.try_emplace(key);
  Series& series = series_it->second;
  if (series_added) {
    series.labels = std::move(sorted);
    switch (type) {
      case Type::kCounter: series.counter = std::make_unique<Counter>(); break;
      case Type::kGauge: series.gauge = std::make_unique<Gauge>(); break;
      case Type::kHistogram: series.histogram = std::make_unique<Histogram>(upper_bounds); break;
    }
  }
  return series;
}

Counter& Registry::GetCounter(const std::string& name, const std::string& help,
                              const Labels& labels) {
  return *FindOrAdd(name, help, Type::kCounter, labels, {}).counter;
}

Gauge& Registry::GetGauge(const std::string& name, const std::string& help, const Labels& labels) {
  return *FindOrAdd(name, help, Type::kGauge, labels, {}).gauge;
}

Histogram& Registry::GetHistogram(const std::string& name, const std::string& help,
                                  std::vector<double> upper_bounds, const Labels& labels) {
  return *FindOrAdd(name, help, Type::kHistogram, labels, upper_bounds).histogram;
}

std::string Registry::RenderPrometheus() const {
  std::string out;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, family] : families_) {
    absl::StrAppend(&out, "# HELP ", name, " ", Escape(family.help, false), "\n");
    absl::StrAppend(&out, "# TYPE ", name, " ", TypeName(static_cast<int>(family.type)), "\n");
    for (const auto& [key, series] : family.series) {
      switch (family.type) {
        case Type::kCounter:
          absl::StrAppend(&out, name, key, " ", FormatValue(series.counter->value()), "\n");
          break;
        case Type::kGauge:
          absl::StrAppend(&out, name, key, " ", FormatValue(series.gauge->value()), "\n");
          break;
        case Type::kHistogram: {
          const Histogram& h = *series.histogram;
          const std::vector<uint64_t> cumulative = h.CumulativeCounts();
          for (size_t i = 0; i < cumulative.size(); ++i) {
            const std::string le =
                i < h.upper_bounds().size() ? FormatValue(h.upper_bounds()[i]) : "+Inf";
            absl::StrAppend(&out, name, "_bucket",
                            RenderLabels(series.labels, absl::StrCat("le=\"", le, "\"")), " ",
                            cumulative[i], "\n");
          }
          absl::StrAppend(&out, name, "_sum", key, " ", FormatValue(h.sum()), "\n");
          absl::StrAppend(&out, name, "_count", key, " ", cumulative.back(), "\n");
          break;
        }
      }
    }
  }
  return out;
}

}  // namespace sy::metrics
