// An expert host's emulated device: bucket FLOPs and delayed replies (see emulated_device.h).
#include "services/expert_host/emulated_device.h"

#include <algorithm>
#include <chrono>
#include <utility>

namespace sy::expert_host {
namespace {

void SendNow(PendingReply& reply) { reply.responder.Reply(*reply.header, std::move(reply.frames)); }

}  // namespace

int64_t ExpertBucketFlops(int64_t rows, int64_t d_model, int64_t d_ff, bool backward) {
  const int64_t forward = 2 * 2 * rows * d_model * d_ff;
  return backward ? 2 * forward : forward;
}

EmulatedDevice::EmulatedDevice(actor::Executor* executor, double gflops)
    : executor_(executor), flops_per_second_(gflops * 1e9) {}

actor::TimePoint EmulatedDevice::Book(int64_t flops) {
  const auto busy = std::chrono::duration_cast<actor::Duration>(
      std::chrono::duration<double>(static_cast<double>(flops) / flops_per_second_));
  const actor::TimePoint now = executor_->Now();
  absl::MutexLock lock(&mu_);
  free_at_ = std::max(free_at_, now) + busy;
  return free_at_;
}

void EmulatedDevice::SendAt(actor::TimePoint done, PendingReply reply) {
  if (done <= executor_->Now()) {
    SendNow(reply);
    return;
  }
  auto held = std::make_shared<PendingReply>(std::move(reply));
  executor_->ScheduleAt(done, [held] { SendNow(*held); });
}

DeviceBooking::DeviceBooking(EmulatedDevice* device, int64_t flops)
    : device_(device), done_(device != nullptr ? device->Book(flops) : actor::TimePoint()) {}

void DeviceBooking::Send(PendingReply reply) const {
  if (device_ == nullptr) {
    SendNow(reply);
    return;
  }
  device_->SendAt(done_, std::move(reply));
}

}  // namespace sy::expert_host
