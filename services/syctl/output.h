// syctl output: aligned text tables for people and JSON (nlohmann::json) for scripts.
// Not thread-safe: one writer per output.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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

// Builds a JSON document value by value, in the order of the calls, and writes it
// compactly to `out` once its outermost object or array ends (a lone value at once).
// Keys keep their order; a value after Key goes under that key. Non-finite doubles
// are written as null, whole ones as integers; invalid UTF-8 becomes U+FFFD.
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
  using Json = nlohmann::ordered_json;
  // An object or array begun and not ended yet, and the key it goes under in its parent.
  struct Open {
    std::string key;
    Json value;
  };
  void Begin(Json container);
  void End();
  // Puts `value` into the innermost open container (under the pending key), or writes it.
  void Put(Json value);

  std::ostream& out_;
  std::vector<Open> open_;  // outermost first
  std::string key_;         // the last Key, for the next value in an object
};

// "12.3" style fixed formatting for loads and ratios.
std::string FormatFixed(double value, int decimals);

// One JSON object and a newline on `out`: `fields` writes its keys and values into the writer.
void PrintJsonObjectLine(std::ostream& out, const std::function<void(JsonWriter& j)>& fields);

}  // namespace sy::syctl
