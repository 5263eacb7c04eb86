// Device emulation for benchmarks on shared CPUs (--emulate_device_gflops=G): when
// hosts and trainers share a few cores, step time hides where the work is. With
// emulation the host behaves as if its experts ran on one device of G GFLOP/s: an
// expert bucket's reply leaves no earlier than its FLOPs / G after the device was
// free to start it. The computation itself runs at once and unchanged (the numbers
// do not change); only the reply waits, on an executor timer, so no thread sleeps
// and the actors of other requests go on (as with a busy GPU, the waiting is the
// device's, not the host's). One device per host: its timeline is shared by the
// host's expert actors. Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <capnp/message.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/actor/executor.h"
#include "common/transport/message.h"
#include "common/transport/rpc.h"

namespace sy::expert_host {

// The FLOPs of an expert bucket of `rows` tokens: its two GEMMs, (rows x d_model) by
// (d_model x d_ff) and back, 2 FLOPs per multiply-add, forward; a backward is twice
// a forward (the input and the weight gradients of both GEMMs).
int64_t ExpertBucketFlops(int64_t rows, int64_t d_model, int64_t d_ff, bool backward);

// A reply built but not yet sent.
struct PendingReply {
  transport::Responder responder;
  std::unique_ptr<capnp::MallocMessageBuilder> header;
  std::vector<transport::Frame> frames;
};

class EmulatedDevice {
 public:
  // `gflops` > 0 (checked by the flags); `executor` must outlive the device.
  EmulatedDevice(actor::Executor* executor, double gflops);

  // Books a computation of `flops` starting now: it ends once the device finished what
  // was booked before it and then spent flops / G on it. Returns that end.
  actor::TimePoint Book(int64_t flops);
  // Sends `reply` at `done` (a Book result): at once when that time has passed, else
  // from an executor timer (pending at the executor's shutdown: never sent).
  void SendAt(actor::TimePoint done, PendingReply reply);

 private:
  actor::Executor* executor_;
  const double flops_per_second_;
  absl::Mutex mu_;
  actor::TimePoint free_at_ ABSL_GUARDED_BY(mu_);  // the end of the last booked computation
};

// A bucket's reply on an optional device: with none (emulation off) sent at once.
class DeviceBooking {
 public:
  // Books `flops` on `device` when there is one.
  DeviceBooking(EmulatedDevice* device, int64_t flops);
  void Send(PendingReply reply) const;

 private:
  EmulatedDevice* device_;
  actor::TimePoint done_;
};

}  // namespace sy::expert_host
