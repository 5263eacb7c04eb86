// The element count of a vector of vectors, for the messages that send one as a
// flat list (a trainer's per-expert loads, a host's per-segment norms).
#pragma once

#include <cstddef>
#include <vector>

namespace sy {

template <typename T>
size_t NestedSize(const std::vector<std::vector<T>>& nested) {
  size_t n = 0;
  for (const std::vector<T>& inner : nested) n += inner.size();
  return n;
}

}  // namespace sy
