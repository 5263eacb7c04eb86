// WaitUntil: polls a condition for tests that observe other threads. The long limit only
// guards against hangs; no test asserts on how long anything took.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace sy::transport::testing {

inline bool WaitUntil(const std::function<bool()>& condition) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace sy::transport::testing
