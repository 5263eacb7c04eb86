// Copies between Cap'n Proto lists of primitives (numbers, enums) and std::vector, so
// that a converter says which list goes where instead of spelling out the loop and the
// size casts each time. Pure functions: thread-safe.
//
//   FillList(out.initCounts(ListSize(counts)), counts);
//   std::vector<int64_t> counts = ListToVector<int64_t>(in.getCounts());
#pragma once

#include <vector>

namespace sy::cluster {

// The size of `values` as the element count a Cap'n Proto init*() takes.
template <class Container>
unsigned ListSize(const Container& values) {
  return static_cast<unsigned>(values.size());
}

// Sets list[i] = values[i] for every i; `list` was initialised with ListSize(values) elements.
template <class ListBuilder, class T>
void FillList(ListBuilder list, const std::vector<T>& values) {
  for (unsigned i = 0; i < ListSize(values); ++i) list.set(i, values[i]);
}

// The elements of a Cap'n Proto list of primitives, in order.
template <class T, class ListReader>
std::vector<T> ListToVector(ListReader list) {
  std::vector<T> values;
  values.reserve(list.size());
  for (auto value : list) values.push_back(value);
  return values;
}

}  // namespace sy::cluster
