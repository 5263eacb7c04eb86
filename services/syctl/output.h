// syctl output: aligned text tables for people and a small JSON writer for scripts.
// Not thread-safe: one writer per output.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace sy::syctl {

// Columns padded to their widest cell, two spaces apart; numbers are the caller's text.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Print(std::ostream& out) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// Streams compact JSON: objects and arrays with commas placed for the caller.
//   JsonWriter j(out); j.BeginObject(); j.Key("epoch"); j.Uint(3); j.EndObject();
class JsonWriter {
 public:
  explicit JsonWriter(std::ostream& out) : out_(out) {}
  void BeginObject();
  void EndObject();
  void BeginArray();
  void EndArray();
  void Key(absl::string_view key);
  void String(absl::string_view value);
  void Uint(uint64_t value);
  void Int(int64_t value);
  void Double(double value);
  void Bool(bool value);

 private:
  void Separate();
  std::ostream& out_;
  std::vector<bool> first_{true};  // per open container: nothing written in it yet
  bool after_key_ = false;
};

// "12.3" style fixed formatting for loads and ratios.
std::string FormatFixed(double value, int decimals);

}  // namespace sy::syctl
