// The admin commands of syctl (status, hosts, experts, checkpoint, rebalance, drain,
// remove, faults): each checks its arguments and becomes one admin request and the
// printer of its reply, before anything is sent. Thread-compatible.
#pragma once

#include <functional>
#include <ostream>

#include "absl/status/statusor.h"
#include "proto/admin.capnp.h"
#include "services/syctl/syctl.h"

namespace sy::syctl {

struct AdminCall {
  std::function<void(proto::admin::AdminRequest::Builder)> fill;  // the request
  std::function<void(proto::admin::AdminReply::Reader)> print;    // its reply, to the `out` given
};

// The call of `inv`'s command (inv.words[0], one of the above); InvalidArgument naming
// the mistake for bad arguments or options. `inv` and `out` must outlive the call.
absl::StatusOr<AdminCall> PlanAdminCall(const Invocation& inv, std::ostream& out);

}  // namespace sy::syctl
