// Reading the coordinator's admin key file (see admin_keys.h).
#include "services/coordinator/admin_keys.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/transport/curve_key_file.h"

namespace sy::coordinator {
namespace {

absl::StatusOr<AdminKeys> AdminKeysFromLines(const std::vector<transport::KeyLine>& lines) {
  AdminKeys keys;
  for (const transport::KeyLine& line : lines) {
    const std::string& label = line.label;
    if (label != "admin" && label != "server_secret" && label != "server_public") {
      return transport::KeyLineError(
          line, absl::StrCat("unknown label '", label, "' (want server_secret, server_public or admin)"));
    }
    if (line.names.size() != (label == "admin" ? 1u : 0u)) {
      return transport::KeyLineError(
          line, label == "admin" ? "want 'admin NAME KEY'" : absl::StrCat("want '", label, " KEY'"));
    }
    std::string* slot = label == "server_secret" ? &keys.server_secret
                        : label == "server_public" ? &keys.server_public : nullptr;
    if (slot != nullptr) {
      if (!slot->empty()) return transport::KeyLineError(line, absl::StrCat("second '", label, "'"));
      *slot = line.key;
      continue;
    }
    const std::string& name = line.names[0];
    if (std::find(keys.admin_names.begin(), keys.admin_names.end(), name) != keys.admin_names.end()) {
      return transport::KeyLineError(line, absl::StrCat("second admin named '", name, "'"));
    }
    keys.admin_names.push_back(name);
    keys.admin_publics.push_back(line.key);
  }
  if (keys.server_secret.empty()) return absl::InvalidArgumentError("admin key file has no 'server_secret KEY' line");
  if (keys.server_public.empty()) return absl::InvalidArgumentError("admin key file has no 'server_public KEY' line");
  if (keys.admin_publics.empty()) return absl::InvalidArgumentError("admin key file has no 'admin NAME KEY' line");
  if (!transport::IsPublicKeyOf(keys.server_public, keys.server_secret)) {
    return absl::InvalidArgumentError("admin key file: server_public is not the public key of server_secret");
  }
  return keys;
}

}  // namespace

absl::StatusOr<AdminKeys> ParseAdminKeys(const std::string& text) {
  absl::StatusOr<std::vector<transport::KeyLine>> lines = transport::ParseKeyLines(text);
  if (!lines.ok()) return lines.status();
  return AdminKeysFromLines(*lines);
}

absl::StatusOr<AdminKeys> LoadAdminKeys(const std::string& path) {
  absl::StatusOr<std::vector<transport::KeyLine>> lines = transport::ReadKeyFile(path);
  if (!lines.ok()) return lines.status();
  absl::StatusOr<AdminKeys> keys = AdminKeysFromLines(*lines);
  if (!keys.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", keys.status().message()));
  return keys;
}

}  // namespace sy::coordinator
