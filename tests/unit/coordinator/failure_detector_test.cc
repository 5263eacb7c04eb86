// FailureDetector: a dropped connection is suspected and probed once; an unanswered
// probe declares the host dead, an answer or a newer incarnation clears the suspicion.
#include "services/coordinator/failure_detector.h"

#include <gtest/gtest.h>

namespace sy::coordinator {
namespace {

TEST(FailureDetector, AnUnansweredProbeDeclaresTheHostDead) {
  FailureDetector detector(absl::Milliseconds(200));
  EXPECT_TRUE(detector.Suspect("host-2", 7));
  EXPECT_FALSE(detector.Suspect("host-2", 7));  // its probe is out: no second one
  EXPECT_TRUE(detector.suspected("host-2"));
  EXPECT_EQ(detector.ProbeEnded("host-2", 7, /*answered=*/false),
            "host-2 disconnected; probe unanswered in 200 ms: declared dead");
  EXPECT_FALSE(detector.suspected("host-2"));
  EXPECT_EQ(detector.ProbeEnded("host-2", 7, false), std::nullopt);  // decided once
}

TEST(FailureDetector, AnAnswerClearsTheSuspicion) {
  FailureDetector detector(absl::Milliseconds(200));
  ASSERT_TRUE(detector.Suspect("host-1", 1));
  EXPECT_EQ(detector.ProbeEnded("host-1", 1, /*answered=*/true), std::nullopt);
  EXPECT_FALSE(detector.suspected("host-1"));
  EXPECT_TRUE(detector.Suspect("host-1", 1));  // a later drop is probed again
}

TEST(FailureDetector, AProbeOfAnOlderIncarnationDecidesNothing) {
  FailureDetector detector(absl::Milliseconds(50));
  ASSERT_TRUE(detector.Suspect("host-1", 1));
  EXPECT_TRUE(detector.Suspect("host-1", 2));  // it came back as a new process, which dropped too
  EXPECT_EQ(detector.ProbeEnded("host-1", 1, false), std::nullopt);
  EXPECT_TRUE(detector.suspected("host-1"));
  EXPECT_EQ(detector.ProbeEnded("host-1", 2, false), "host-1 disconnected; probe unanswered in 50 ms: declared dead");
}

TEST(FailureDetector, ForgetEndsTheSuspicion) {
  FailureDetector detector(absl::Milliseconds(200));
  ASSERT_TRUE(detector.Suspect("host-3", 4));
  detector.Forget("host-3");
  EXPECT_EQ(detector.ProbeEnded("host-3", 4, false), std::nullopt);
}

}  // namespace
}  // namespace sy::coordinator
