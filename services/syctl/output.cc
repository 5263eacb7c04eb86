// Text tables and JSON for syctl (see output.h).
#include "services/syctl/output.h"

#include <algorithm>
#include <cmath>

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

void JsonWriter::Separate() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!first_.back()) out_ << ",";
  first_.back() = false;
}

void JsonWriter::BeginObject() {
  Separate();
  out_ << "{";
  first_.push_back(true);
}
void JsonWriter::EndObject() {
  first_.pop_back();
  out_ << "}";
}
void JsonWriter::BeginArray() {
  Separate();
  out_ << "[";
  first_.push_back(true);
}
void JsonWriter::EndArray() {
  first_.pop_back();
  out_ << "]";
}
void JsonWriter::Key(absl::string_view key) {
  String(key);
  out_ << ":";
  after_key_ = true;
}
void JsonWriter::String(absl::string_view value) {
  Separate();
  out_ << '"';
  for (char c : value) {
    switch (c) {
      case '"': out_ << "\\\""; break;
      case '\\': out_ << "\\\\"; break;
      case '\n': out_ << "\\n"; break;
      case '\t': out_ << "\\t"; break;
      case '\r': out_ << "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out_ << absl::StrFormat("\\u%04x", static_cast<unsigned char>(c));
        } else {
          out_ << c;
        }
    }
  }
  out_ << '"';
}
void JsonWriter::Uint(uint64_t value) {
  Separate();
  out_ << value;
}
void JsonWriter::Int(int64_t value) {
  Separate();
  out_ << value;
}
void JsonWriter::Double(double value) {
  Separate();
  if (!std::isfinite(value)) {
    out_ << "null";
  } else {
    out_ << absl::StrFormat("%.6g", value);
  }
}
void JsonWriter::Bool(bool value) {
  Separate();
  out_ << (value ? "true" : "false");
}

std::string FormatFixed(double value, int decimals) { return absl::StrFormat("%.*f", decimals, value); }

}  // namespace sy::syctl
