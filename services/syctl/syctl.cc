// syctl's commands carried out: help, keygen, or one admin call to the coordinator (see syctl.h).
#include "services/syctl/syctl.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "services/cluster/cluster_keys.h"
#include "services/syctl/admin_client.h"
#include "services/syctl/admin_commands.h"
#include "services/syctl/command_help.h"
#include "services/syctl/keygen_command.h"
#include "services/syctl/output.h"
#include "services/syctl/top_view.h"

namespace sy::syctl {
namespace {

// `syctl help [command]`.
int Help(const Invocation& inv, std::ostream& out, std::ostream& err) {
  if (inv.words.size() == 1) {
    PrintHelp(out);
    return kExitOk;
  }
  if (!IsCommand(inv.words[1])) return Usage(absl::StrCat("unknown command '", inv.words[1], "'"), err);
  PrintCommandHelp(inv.words[1], out);
  return kExitOk;
}

// One admin call: `call` sent to the coordinator, its reply printed.
int CallCoordinator(const Invocation& inv, const AdminCall& call, std::ostream& err) {
  transport::CurveKeys curve;
  if (!inv.admin_key_file.empty() && !inv.keys_dir.empty()) {
    return Usage("--admin_key_file and --keys exclude each other", err);
  }
  if (!inv.admin_key_file.empty()) {
    auto keys = LoadClientKeys(inv.admin_key_file);
    if (!keys.ok()) return Usage(absl::StrCat("--admin_key_file: ", keys.status().message()), err);
    curve = *std::move(keys);
  }
  if (!inv.keys_dir.empty()) {
    auto keys = cluster::LoadNodeCurve({inv.keys_dir, false}, inv.as);
    if (!keys.ok()) return Usage(std::string(keys.status().message()), err);
    curve = *std::move(keys);
  }
  auto client = AdminClient::Connect(inv.coordinator, curve);
  if (!client.ok()) return Usage(std::string(client.status().message()), err);
  auto reply = (*client)->Call(call.fill, absl::Milliseconds(inv.timeout_ms));
  if (!reply.ok()) {
    if (reply.status().code() == absl::StatusCode::kDeadlineExceeded) {
      err << "syctl: coordinator " << inv.coordinator << " did not answer within " << inv.timeout_ms
          << " ms (is it running? is the address right?)\n";
      return kExitUnreachable;
    }
    err << "syctl: " << inv.words[0] << " failed: " << reply.status().message() << " ["
        << absl::StatusCodeToString(reply.status().code()) << "]\n";
    return kExitFailed;
  }
  call.print(reply->reply());
  return kExitOk;
}

}  // namespace

absl::Status ExpectArguments(const Invocation& inv, size_t positional, const std::vector<std::string>& allowed) {
  if (inv.words.size() - 1 != positional) {
    return absl::InvalidArgumentError(absl::StrCat("'", inv.words[0], "' takes ", positional, " argument(s), got ",
                                                   inv.words.size() - 1));
  }
  for (const auto& [name, value] : inv.options) {
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      return absl::InvalidArgumentError(absl::StrCat("'", inv.words[0], "' has no option --", name));
    }
  }
  return absl::OkStatus();
}

int Usage(const std::string& message, std::ostream& err) {
  err << "syctl: " << message << "\n(run `syctl help` for usage)\n";
  return kExitUsage;
}

int RunCommand(const Invocation& inv, std::ostream& out, std::ostream& err) {
  if (inv.words.empty()) {
    PrintHelp(inv.help ? out : err);
    return inv.help ? kExitOk : kExitUsage;
  }
  const std::string& command = inv.words[0];
  if (!IsCommand(command)) return Usage(absl::StrCat("unknown command '", command, "'"), err);
  if (command == "help") return Help(inv, out, err);
  if (inv.help) {
    PrintCommandHelp(command, out);
    return kExitOk;
  }
  if (command == "keygen") return Keygen(inv, out, err);
  if (command == "top") return RunTop(inv, out, err);
  // The command line is checked completely before talking to anyone.
  absl::StatusOr<AdminCall> call = PlanAdminCall(inv, out);
  if (!call.ok()) return Usage(std::string(call.status().message()), err);
  return CallCoordinator(inv, *call, err);
}

}  // namespace sy::syctl
