// FaultyTransport: per-message fault decisions from Philox, plus the timer thread
// that sends delayed and reordered messages when they are due.
#include "common/transport/faulty_transport.h"

#include <atomic>
#include <queue>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/base/philox.h"
#include "common/base/thread_name.h"

namespace sy::transport {
namespace {

// Philox counter word that keeps fault draws apart from every other use of a seed.
constexpr uint32_t kFaultDomain = 0xFA0175u;

double ToUnit(uint32_t bits) { return bits * (1.0 / 4294967296.0); }

class FaultyTransportImpl final : public FaultyTransport {
 public:
  FaultyTransportImpl(std::unique_ptr<Transport> inner, FaultSpec spec)
      : inner_(std::move(inner)), spec_(spec), timer_([this] {
          base::NameThisThread("sy-fault-timer");
          TimerLoop();
        }) {}
  ~FaultyTransportImpl() override { Close(); }

  const std::string& node_id() const override { return inner_->node_id(); }
  absl::StatusOr<std::string> Bind(const std::string& endpoint) override { return inner_->Bind(endpoint); }
  absl::Status Connect(const std::string& peer, const std::string& endpoint) override {
    return inner_->Connect(peer, endpoint);
  }
  absl::Status Disconnect(const std::string& peer) override { return inner_->Disconnect(peer); }
  absl::StatusOr<Message> Receive(absl::Time deadline) override { return inner_->Receive(deadline); }
  TransportStats stats() const override { return inner_->stats(); }

  absl::Status Send(Message message, absl::Time deadline) override {
    const uint64_t index = messages_.fetch_add(1);
    const PhiloxBlock draw = Philox4x32(
        spec_.seed, {static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32), kFaultDomain, 0});
    if (ToUnit(draw[0]) < spec_.drop) {
      ++dropped_;
      return absl::OkStatus();  // lost on the way: the sender cannot tell
    }
    absl::Duration hold = absl::ZeroDuration();
    if (ToUnit(draw[2]) < spec_.delay) {
      ++delayed_;
      hold += absl::Milliseconds(spec_.delay_ms);
    }
    if (ToUnit(draw[3]) < spec_.reorder) {
      ++reordered_;
      hold += absl::Milliseconds(spec_.reorder_ms);
    }
    const bool duplicate = ToUnit(draw[1]) < spec_.duplicate;
    if (duplicate) ++duplicated_;
    const int copies = duplicate ? 2 : 1;
    if (hold == absl::ZeroDuration()) {
      if (duplicate) {
        absl::Status first = inner_->Send(message, deadline);  // frames are shared, not copied
        if (!first.ok()) return first;
      }
      return inner_->Send(std::move(message), deadline);
    }
    absl::MutexLock lock(&mu_);
    if (closed_) return absl::FailedPreconditionError("transport closed");
    for (int i = 0; i < copies; ++i) held_.push(Held{absl::Now() + hold, sequence_++, message, deadline});
    return absl::OkStatus();
  }

  void Close() override {
    {
      absl::MutexLock lock(&mu_);
      if (closed_) return;
      closed_ = true;
    }
    timer_.join();
    inner_->Close();
  }

  FaultStats fault_stats() const override {
    return FaultStats{messages_.load(), dropped_.load(), duplicated_.load(), delayed_.load(), reordered_.load()};
  }

 private:
  struct Held {
    absl::Time due;
    uint64_t sequence;  // FIFO among equal due times
    Message message;
    absl::Time deadline;
    bool operator>(const Held& other) const {
      return due != other.due ? due > other.due : sequence > other.sequence;
    }
  };

  void TimerLoop() {
    while (true) {
      std::vector<Held> ready;
      {
        absl::MutexLock lock(&mu_);
        auto wake = [this]() { return closed_ || (!held_.empty() && held_.top().due <= absl::Now()); };
        const absl::Time until = held_.empty() ? absl::Now() + absl::Milliseconds(50) : held_.top().due;
        mu_.AwaitWithDeadline(absl::Condition(&wake), until);
        if (closed_) return;  // held messages are lost with the transport
        while (!held_.empty() && held_.top().due <= absl::Now()) {
          ready.push_back(held_.top());
          held_.pop();
        }
      }
      for (Held& held : ready) (void)inner_->Send(std::move(held.message), held.deadline);
    }
  }

  std::unique_ptr<Transport> inner_;
  const FaultSpec spec_;
  std::atomic<uint64_t> messages_{0}, dropped_{0}, duplicated_{0}, delayed_{0}, reordered_{0};
  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t sequence_ ABSL_GUARDED_BY(mu_) = 0;
  std::priority_queue<Held, std::vector<Held>, std::greater<Held>> held_ ABSL_GUARDED_BY(mu_);
  std::thread timer_;  // last: starts after the members it uses exist
};

absl::Status ParseRate(absl::string_view key, absl::string_view value, double* out) {
  if (!absl::SimpleAtod(value, out) || !(*out >= 0 && *out <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("fault spec: ", key, "=", value, " is not a rate in [0, 1]"));
  }
  return absl::OkStatus();
}

absl::Status ParseMillis(absl::string_view key, absl::string_view value, int* out) {
  if (!absl::SimpleAtoi(value, out) || *out < 0 || *out > 60000) {
    return absl::InvalidArgumentError(absl::StrCat("fault spec: ", key, "=", value, " is not milliseconds in [0, 60000]"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<FaultSpec> ParseFaultSpec(absl::string_view spec) {
  FaultSpec out;
  bool delay_rate_given = false, delay_ms_given = false;
  for (absl::string_view item : absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    const absl::string_view key = absl::StripAsciiWhitespace(kv.first);
    const absl::string_view value = absl::StripAsciiWhitespace(kv.second);
    absl::Status status;
    if (key == "drop") {
      status = ParseRate(key, value, &out.drop);
    } else if (key == "dup") {
      status = ParseRate(key, value, &out.duplicate);
    } else if (key == "delay") {
      status = ParseRate(key, value, &out.delay);
      delay_rate_given = true;
    } else if (key == "delay_ms") {
      status = ParseMillis(key, value, &out.delay_ms);
      delay_ms_given = true;
    } else if (key == "reorder") {
      status = ParseRate(key, value, &out.reorder);
    } else if (key == "reorder_ms") {
      status = ParseMillis(key, value, &out.reorder_ms);
    } else if (key == "seed") {
      if (!absl::SimpleAtoi(value, &out.seed)) status = absl::InvalidArgumentError(absl::StrCat("fault spec: bad seed ", value));
    } else {
      status = absl::InvalidArgumentError(absl::StrCat("fault spec: unknown item '", item, "'"));
    }
    if (!status.ok()) return status;
  }
  if (delay_ms_given && !delay_rate_given) out.delay = 1.0;
  return out;
}

std::unique_ptr<FaultyTransport> FaultyTransport::Wrap(std::unique_ptr<Transport> inner, FaultSpec spec) {
  return std::make_unique<FaultyTransportImpl>(std::move(inner), spec);
}

absl::StatusOr<std::unique_ptr<Transport>> WithFaultsFromFlag(std::unique_ptr<Transport> inner,
                                                              absl::string_view spec) {
  absl::StatusOr<FaultSpec> parsed = ParseFaultSpec(spec);
  if (!parsed.ok()) return parsed.status();
  if (!parsed->Any()) return inner;
  return std::unique_ptr<Transport>(FaultyTransport::Wrap(std::move(inner), *parsed));
}

}  // namespace sy::transport
