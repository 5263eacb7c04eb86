// The text format of CurveZMQ key files (the coordinator's admin keys, syctl's
// client keys): one "LABEL [NAME] KEY" per line, keys in 40-character Z85, blank
// lines and '#' comments ignored. One reader for both, so they check keys and
// report bad lines the same way; each caller maps the labels it knows.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sy::transport {

struct KeyLine {
  int number = 0;           // 1-based line number in the file
  std::string label;        // first word
  std::vector<std::string> names;  // words between the label and the key
  std::string key;          // last word, a valid Z85 CURVE key
};

// True for a 40-character Z85 string that decodes to a 32-byte key.
bool IsZ85Key(const std::string& key);
// True when `public_key` is the public key of `secret_key`.
bool IsPublicKeyOf(const std::string& public_key, const std::string& secret_key);

// The file's key lines. InvalidArgument naming the line for a line with only a
// label or whose last word is not a Z85 key.
absl::StatusOr<std::vector<KeyLine>> ParseKeyLines(const std::string& text);
// InvalidArgument "admin key file line N: why".
absl::Status KeyLineError(const KeyLine& line, absl::string_view why);
// The key lines of the file at `path`; errors are prefixed with the path.
absl::StatusOr<std::vector<KeyLine>> ReadKeyFile(const std::string& path);

}  // namespace sy::transport
