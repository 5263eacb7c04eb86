// syctl's output of each admin reply: an aligned table for people, or one JSON
// document for scripts (--json). Not thread-safe: one writer per output stream.
#pragma once

#include <ostream>
#include <string>

#include "proto/admin.capnp.h"

namespace sy::syctl {

void PrintStatus(proto::admin::ClusterStatus::Reader s, bool json, std::ostream& out);
void PrintHosts(capnp::List<proto::admin::HostInfo>::Reader hosts, bool json, std::ostream& out);
void PrintExperts(capnp::List<proto::admin::ExpertInfo>::Reader experts, bool json, std::ostream& out);
void PrintCheckpoints(capnp::List<proto::checkpoint::Manifest>::Reader list, bool json, std::ostream& out);
// `dry_run`: the moves were only planned.
void PrintRebalance(proto::admin::RebalanceResult::Reader r, bool dry_run, bool json, std::ostream& out);
// A command done with nothing to list: `what` as a line, or {"ok":true,"message":what}.
void PrintDone(const std::string& what, bool json, std::ostream& out);

}  // namespace sy::syctl
