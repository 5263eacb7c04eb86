// CurveZMQ key files (see curve_key_file.h).
#include "common/transport/curve_key_file.h"

#include <zmq.h>

#include <cstdint>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace sy::transport {

bool IsZ85Key(const std::string& key) {
  uint8_t decoded[32];
  return key.size() == 40 && zmq_z85_decode(decoded, key.c_str()) != nullptr;
}

bool IsPublicKeyOf(const std::string& public_key, const std::string& secret_key) {
  char derived[41];
  return IsZ85Key(secret_key) && zmq_curve_public(derived, secret_key.c_str()) == 0 && public_key == derived;
}

absl::Status KeyLineError(const KeyLine& line, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("admin key file line ", line.number, ": ", why));
}

absl::StatusOr<std::vector<KeyLine>> ParseKeyLines(const std::string& text) {
  std::vector<KeyLine> lines;
  int number = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++number;
    std::vector<std::string> words = absl::StrSplit(raw, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (words.empty() || words[0][0] == '#') continue;
    KeyLine line;
    line.number = number;
    line.label = words[0];
    if (words.size() < 2) return KeyLineError(line, absl::StrCat("'", line.label, "' without a key"));
    line.names.assign(words.begin() + 1, words.end() - 1);
    line.key = words.back();
    if (!IsZ85Key(line.key)) {
      return KeyLineError(line, "the key is not a 40-character Z85 CURVE key (see `syctl keygen`)");
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

absl::StatusOr<std::vector<KeyLine>> ReadKeyFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read admin key file '", path, "'"));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<std::vector<KeyLine>> lines = ParseKeyLines(text.str());
  if (!lines.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", lines.status().message()));
  return lines;
}

}  // namespace sy::transport
