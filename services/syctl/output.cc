// Text tables and JSON for syctl (see output.h).
#include "services/syctl/output.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_format.h"

namespace sy::syctl {

void Table::Print(std::ostream& out) const {
  std::vector<size_t> widths(header_.size(), 0);
  auto widen = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  };
  widen(header_);
  for (const auto& row : rows_) widen(row);
  auto print = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < widths.size(); ++i) {
      const std::string cell = i < row.size() ? row[i] : "";
      line += cell;
      if (i + 1 < widths.size()) line += std::string(widths[i] - cell.size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  };
  print(header_);
  for (const auto& row : rows_) print(row);
}

void JsonWriter::Begin(Json container) { open_.push_back({std::move(key_), std::move(container)}); }

void JsonWriter::End() {
  Open done = std::move(open_.back());
  open_.pop_back();
  key_ = std::move(done.key);
  Put(std::move(done.value));
}

void JsonWriter::Put(Json value) {
  if (open_.empty()) {
    out_ << value.dump(-1, ' ', false, Json::error_handler_t::replace);
    return;
  }
  Json& parent = open_.back().value;
  if (parent.is_array()) {
    parent.push_back(std::move(value));
  } else {
    parent[std::move(key_)] = std::move(value);
  }
  key_.clear();
}

void JsonWriter::BeginObject() { Begin(Json::object()); }
void JsonWriter::EndObject() { End(); }
void JsonWriter::BeginArray() { Begin(Json::array()); }
void JsonWriter::EndArray() { End(); }
void JsonWriter::Key(absl::string_view key) { key_ = std::string(key); }
void JsonWriter::String(absl::string_view value) { Put(std::string(value)); }
void JsonWriter::Uint(uint64_t value) { Put(value); }
void JsonWriter::Int(int64_t value) { Put(value); }
void JsonWriter::Double(double value) {
  if (!std::isfinite(value)) return Put(nullptr);
  if (value == std::trunc(value) && std::fabs(value) < 0x1p53) return Put(static_cast<int64_t>(value));
  Put(value);
}
void JsonWriter::Bool(bool value) { Put(value); }

std::string FormatFixed(double value, int decimals) { return absl::StrFormat("%.*f", decimals, value); }

void PrintJsonObjectLine(std::ostream& out, const std::function<void(JsonWriter& j)>& fields) {
  JsonWriter j(out);
  j.BeginObject();
  fields(j);
  j.EndObject();
  out << "\n";
}

}  // namespace sy::syctl
