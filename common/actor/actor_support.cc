// Non-template pieces of Actor<Msg>: failure reporting and per-actor metrics.
#include <exception>
#include <string>

#include "common/actor/actor.h"
#include "common/log/log.h"

namespace sy::actor::internal {

absl::Status ReportHandlerFailure(const std::string& actor_name, const std::string& behavior,
                                  std::exception_ptr error, metrics::Counter* failures) {
  std::string what = "unknown exception (not derived from std::exception)";
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  SY_LOG(ERROR) << "actor '" << actor_name << "' (behavior '" << behavior
                << "') handler failed: " << what << "; the actor keeps serving";
  if (failures != nullptr) failures->Increment();
  return absl::InternalError("actor '" + actor_name + "' handler failed: " + what);
}

metrics::Counter* HandlerFailureCounter(metrics::Registry* registry, const std::string& actor) {
  if (registry == nullptr) return nullptr;
  return &registry->GetCounter("sy_actor_handler_failures_total",
                               "Actor handlers (or timers) that threw; the actor kept serving.",
                               {{"actor", actor}});
}

metrics::Counter* MessageCounter(metrics::Registry* registry, const std::string& actor) {
  if (registry == nullptr) return nullptr;
  return &registry->GetCounter("sy_actor_messages_total", "Messages handled by an actor.",
                               {{"actor", actor}});
}

metrics::Gauge* MailboxDepthGauge(metrics::Registry* registry, const std::string& actor) {
  if (registry == nullptr) return nullptr;
  return &registry->GetGauge("sy_actor_mailbox_depth", "Messages waiting in an actor's mailbox.",
                             {{"actor", actor}});
}

absl::Status NoReplyError(const std::string& actor_name, const std::string& behavior) {
  return absl::InternalError("actor '" + actor_name + "' (behavior '" + behavior +
                             "') returned from an ask without replying, stashing or taking the "
                             "responder");
}

}  // namespace sy::actor::internal
