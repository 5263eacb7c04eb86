// The oracle test's per-tensor comparison: elementwise C++ vs torch within a relative or
// absolute tolerance, failures reported through gtest, and a printed table of the largest
// errors per tensor (so a passing run still shows how close each tensor came).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"

namespace sy::reference {

// Pass when |cpp - ref| <= kRelTol * |ref| or |cpp - ref| <= kAbsTol.
constexpr double kRelTol = 1e-4, kAbsTol = 1e-5;

// One row of the printed error table.
struct ErrorRow {
  std::string name;
  int64_t numel = 0;
  double max_ref = 0, max_abs = 0, max_rel = 0;
  int64_t bad = 0;        // elements outside tolerance
  int64_t explained = 0;  // outside tolerance, but by no more than `explained_by` allows
};

class ErrorTable {
 public:
  // Compares cpp with ref elementwise. An element outside tolerance whose error is
  // within tolerance of |ref - explained_by| (a reference computed from the C++
  // inputs, e.g. the AdamW step taken from the C++ gradient) is counted as explained
  // by an upstream difference, not as bad.
  void Compare(const std::string& name, const std::vector<float>& cpp, const std::vector<float>& ref,
               const std::vector<float>* explained_by = nullptr) {
    ErrorRow row{name, static_cast<int64_t>(ref.size())};
    EXPECT_EQ(cpp.size(), ref.size()) << name;
    if (explained_by != nullptr) {
      EXPECT_EQ(explained_by->size(), ref.size()) << name;
    }
    std::string first_bad;
    for (size_t i = 0; i < std::min(cpp.size(), ref.size()); ++i) {
      const double err = std::fabs(static_cast<double>(cpp[i]) - ref[i]), mag = std::fabs(ref[i]);
      row.max_ref = std::max(row.max_ref, mag);
      row.max_abs = std::max(row.max_abs, err);
      if (mag > kAbsTol) row.max_rel = std::max(row.max_rel, err / mag);
      if (err <= kAbsTol || err <= kRelTol * mag) continue;
      if (explained_by != nullptr && i < explained_by->size() &&
          err <= kAbsTol + std::fabs(static_cast<double>(ref[i]) - (*explained_by)[i])) {
        ++row.explained;
        continue;
      }
      if (row.bad++ == 0) first_bad = absl::StrFormat("first at element %d: C++ %.9g, torch %.9g", i, cpp[i], ref[i]);
    }
    EXPECT_EQ(row.bad, 0) << name << ": " << row.bad << " elements off (max abs " << row.max_abs << ", max rel "
                          << row.max_rel << "); " << first_bad;
    rows_.push_back(row);
  }
  void Print(const std::string& title) const {
    std::printf("\n%s\n%-38s %7s %10s %11s %11s %4s %5s\n", title.c_str(), "tensor", "numel", "max|ref|",
                "max abs err", "max rel err", "bad", "expl");
    for (const ErrorRow& r : rows_) {
      std::printf("%-38s %7lld %10.3e %11.3e %11.3e %4lld %5lld\n", r.name.c_str(), static_cast<long long>(r.numel),
                  r.max_ref, r.max_abs, r.max_rel, static_cast<long long>(r.bad), static_cast<long long>(r.explained));
    }
    std::fflush(stdout);
  }

 private:
  std::vector<ErrorRow> rows_;
};

}  // namespace sy::reference
