// RunSyctl in-process: help, usage errors (exit 2) before any network use, address
// normalisation, and exit 3 when nothing answers at the address.
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "services/syctl/admin_client.h"
#include "services/syctl/command_line.h"
#include "services/syctl/syctl.h"

namespace sy::syctl {
namespace {

using ::testing::HasSubstr;

struct Outcome {
  int code;
  std::string out, err;
};

Outcome Syctl(std::vector<std::string> args) {
  std::ostringstream out, err;
  const int code = RunSyctl(args, out, err);
  return {code, out.str(), err.str()};
}

TEST(SyctlUsageTest, HelpForEverythingAndForOneCommand) {
  Outcome help = Syctl({"help"});
  EXPECT_EQ(help.code, kExitOk);
  EXPECT_THAT(help.out, HasSubstr("exit codes: 0 ok, 1 command failed, 2 bad usage, 3 coordinator unreachable"));
  EXPECT_EQ(Syctl({"--help"}).code, kExitOk);
  Outcome drain = Syctl({"help", "drain"});
  EXPECT_EQ(drain.code, kExitOk);
  EXPECT_THAT(drain.out, HasSubstr("drain HOST"));
  EXPECT_EQ(Syctl({"faults", "--help"}).code, kExitOk);
  EXPECT_EQ(Syctl({"help", "nonsense"}).code, kExitUsage);
}

TEST(SyctlUsageTest, BadUsageIsExit2WithAReason) {
  const std::string address = "--coordinator=tcp://127.0.0.1:9";
  struct Case {
    std::vector<std::string> args;
    std::string reason;
  };
  for (const Case& c : std::vector<Case>{
           {{}, "usage"},
           {{address, "frobnicate"}, "unknown command 'frobnicate'"},
           {{address, "checkpoint", "later"}, "checkpoint needs now, list or restore K"},
           {{address, "checkpoint", "restore", "0"}, "checkpoint id > 0"},
           {{address, "checkpoint", "restore"}, "takes 2 argument(s)"},
           {{address, "hosts", "--dry_run"}, "'hosts' has no option --dry_run"},
           {{address, "rebalance", "--threshold=abc"}, "--threshold needs a number >= 1"},
           {{address, "rebalance", "--dry_run=yes"}, "--dry_run takes no value"},
           {{address, "faults", "jitter=0.1"}, "jitter"},
           {{address, "--json=1", "status"}, "--json takes no value"},
           {{address, "--timeout_ms=0", "status"}, "--timeout_ms"},
           {{"--coordinator", "status"}, "--coordinator needs a value"},
           {{"--coordinator=udp://x:1", "status"}, "want tcp://HOST:PORT"},
           {{"--coordinator=localhost", "status"}, "has no port"},
       }) {
    Outcome o = Syctl(c.args);
    EXPECT_EQ(o.code, kExitUsage) << c.reason;
    EXPECT_THAT(o.err, HasSubstr(c.reason));
    EXPECT_TRUE(o.out.empty());
  }
}

TEST(SyctlUsageTest, AddressesAreNormalised) {
  EXPECT_EQ(*NormalizeAddress("127.0.0.1:5555"), "tcp://127.0.0.1:5555");
  EXPECT_EQ(*NormalizeAddress("tcp://10.0.0.1:7"), "tcp://10.0.0.1:7");
  EXPECT_FALSE(NormalizeAddress("").ok());
}

TEST(SyctlUsageTest, NothingListeningIsExit3) {
  Outcome o = Syctl({"--coordinator=127.0.0.1:9", "--timeout_ms=250", "status"});
  EXPECT_EQ(o.code, kExitUnreachable);
  EXPECT_THAT(o.err, HasSubstr("did not answer within 250 ms"));
}

}  // namespace
}  // namespace sy::syctl
