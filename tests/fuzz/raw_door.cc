// Raw requests to a door and their replies (see raw_door.h).
#include "tests/fuzz/raw_door.h"

#include <iostream>
#include <utility>

#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "common/status/wire_status.h"
#include "tests/fuzz/mutator.h"
#include "tests/fuzz/wire_corpus.h"

namespace sy::fuzz {

RawDoor::RawDoor(std::unique_ptr<transport::Transport> transport, std::string peer)
    : transport_(std::move(transport)), peer_(std::move(peer)) {}

RawDoor::~RawDoor() { transport_->Close(); }

RawReply RawDoor::Call(transport::Message message, absl::Duration timeout) {
  RawReply out;
  absl::StatusOr<transport::DecodedMessage> local = transport::DecodedMessage::Decode(message, {});
  if (local.ok()) {
    if (local->envelope().getIsReply()) return out;
  } else {
    std::optional<transport::HeaderIds> ids = transport::PeekHeaderIds(message.header, {});
    if (ids.has_value() && ids->is_reply) return out;
  }
  const uint64_t request_id = local.ok() ? local->envelope().getRequestId() : 0;
  message.address = {peer_, transport::Route::kConnected};
  const absl::Time deadline = absl::Now() + timeout;
  out.sent = true;
  if (absl::Status s = transport_->Send(std::move(message), deadline); !s.ok()) {
    out.status = s;
    return out;
  }
  for (;;) {
    absl::StatusOr<transport::Message> received = transport_->Receive(deadline);
    if (!received.ok()) {
      out.status = absl::DeadlineExceededError("no reply: " + received.status().ToString());
      return out;
    }
    absl::StatusOr<transport::DecodedMessage> reply = transport::DecodedMessage::Decode(*std::move(received), {});
    if (!reply.ok() || !reply->envelope().getIsReply()) continue;  // not an answer to us
    if (request_id != 0 && reply->envelope().getRequestId() != request_id) continue;  // a late answer
    auto status = reply->envelope().getStatus();
    out.replied = true;
    out.status = StatusFromWire(status.getCode(), status.getMessage().cStr());
    return out;
  }
}

DoorTally FuzzDoor(RawDoor& door, const DoorFuzz& fuzz) {
  DoorTally tally;
  std::string before = fuzz.state();
  for (int i = 0; i < fuzz.iterations; ++i) {
    FuzzRng rng(fuzz.seed, static_cast<uint64_t>(i));
    Seed seed = fuzz.make(rng);
    // A request id of its own (the door's reply cache answers a repeated one from the cache).
    auto envelope = seed.header->getRoot<proto::Envelope>();
    envelope.setRequestId((uint64_t{1} << 32) + static_cast<uint64_t>(i));
    if (envelope.getSender().size() == 0) envelope.setSender("fuzz-client");
    std::string header = HeaderBytes(transport::Message({}, transport::EncodeHeader(*seed.header), {}));
    if (rng.OneIn(2)) {
      header = Mutate(std::move(header), rng);
      seed.summary += " +bytes mutated";
    }
    const std::string where = "seed=" + std::to_string(fuzz.seed) + " iteration=" + std::to_string(i) + ": " +
                              seed.summary + "\n" + HexDump(header, 256);
    RawReply reply = door.Call(transport::Message({}, FrameOf(header), std::move(seed.data)));
    if (!reply.sent) {
      ++tally.not_sent;
      continue;
    }
    ++tally.sent;
    if (reply.replied && reply.status.ok()) {
      ++tally.answered;
      if (fuzz.after_answer) fuzz.after_answer();
      before = fuzz.state();
      continue;
    }
    ++tally.refused;
    const absl::StatusCode code = reply.status.code();
    if (!reply.replied || code == absl::StatusCode::kInternal || code == absl::StatusCode::kUnknown ||
        reply.status.message().empty()) {
      ADD_FAILURE() << "no clear refusal: " << reply.status << "\n" << where;
      return tally;
    }
    const std::string after = fuzz.state();
    if (after != before) {
      ADD_FAILURE() << "refused (" << reply.status << ") but the state changed\nbefore: " << before
                    << "\nafter:  " << after << "\n" << where;
      return tally;
    }
  }
  std::cout << "sent " << tally.sent << " (answered " << tally.answered << ", refused " << tally.refused
            << "), not sent (no answer by design) " << tally.not_sent << "\n";
  return tally;
}

}  // namespace sy::fuzz
