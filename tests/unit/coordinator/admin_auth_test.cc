// Admin authentication of the coordinator over real ZeroMQ sockets: with --admin_keys,
// an authorised CURVE admin key runs `status` on the admin endpoint (AdminClient and
// syctl's RunSyctl), an unknown key and an admin call on the main endpoint are refused
// with PermissionDenied and counted, hosts still register on the main endpoint; without
// keys admin calls work on the main endpoint as before. Also the key file parsers'
// errors, and `syctl keygen`.
#include <zmq.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/transport/curve_key_file.h"
#include <unistd.h>

#include "common/metrics/registry.h"
#include "proto/admin.capnp.h"
#include "services/coordinator/admin_keys.h"
#include "services/coordinator/coordinator_service.h"
#include "services/syctl/admin_client.h"
#include "services/syctl/command_line.h"
#include "services/syctl/syctl.h"
#include "tests/unit/coordinator/fake_node.h"

namespace sy::coordinator {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

struct KeyPair {
  std::string public_key, secret_key;
};

KeyPair NewKeyPair() {
  char public_key[41], secret_key[41];
  EXPECT_EQ(zmq_curve_keypair(public_key, secret_key), 0);
  return {public_key, secret_key};
}

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::trunc) << text; }

std::string ClientKeyText(const KeyPair& client, const KeyPair& server) {
  return "# syctl admin keys\nclient_public " + client.public_key + "\nclient_secret " + client.secret_key +
         "\nserver_public " + server.public_key + "\n";
}

class AdminAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("sy_admin_auth_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name())).string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    options_.db_path = dir_ + "/db";
    options_.expected_hosts = 1;
    options_.heartbeat_timeout = absl::Seconds(30);
    server_ = NewKeyPair();
    admin_ = NewKeyPair();
    stranger_ = NewKeyPair();
    WriteFile(dir_ + "/coordinator.keys", "# sy-coordinator admin keys\nserver_secret " + server_.secret_key +
                                              "\nserver_public " + server_.public_key + "\nadmin alice " +
                                              admin_.public_key + "\n");
    WriteFile(dir_ + "/alice.keys", ClientKeyText(admin_, server_));
    WriteFile(dir_ + "/stranger.keys", ClientKeyText(stranger_, server_));
  }
  void TearDown() override {
    service_.reset();
    fs::remove_all(dir_);
  }

  void StartService(bool with_keys) {
    if (with_keys) {
      options_.admin_listen = "tcp://127.0.0.1:0";
      options_.admin_keys = dir_ + "/coordinator.keys";
    }
    auto service = CoordinatorService::Start(options_, &registry_);
    ASSERT_TRUE(service.ok()) << service.status();
    service_ = *std::move(service);
  }

  // One `status` call to `endpoint`, as the client of `key_file` ("": plain TCP).
  absl::Status StatusCall(const std::string& endpoint, const std::string& key_file) {
    transport::CurveKeys curve;
    if (!key_file.empty()) {
      auto keys = syctl::LoadClientKeys(key_file);
      if (!keys.ok()) return keys.status();
      curve = *keys;
    }
    auto client = syctl::AdminClient::Connect(endpoint, curve);
    if (!client.ok()) return client.status();
    auto reply = (*client)->Call([](proto::admin::AdminRequest::Builder r) { r.setStatus(); }, absl::Seconds(5));
    return reply.status();
  }

  struct Outcome {
    int code;
    std::string out, err;
  };
  Outcome Syctl(std::vector<std::string> args) {
    std::ostringstream out, err;
    const int code = syctl::RunSyctl(args, out, err);
    return {code, out.str(), err.str()};
  }

  std::string dir_;
  CoordinatorOptions options_;
  metrics::Registry registry_;
  std::unique_ptr<CoordinatorService> service_;
  KeyPair server_, admin_, stranger_;
};

TEST_F(AdminAuthTest, AuthorisedKeyRunsStatusOnTheAdminEndpoint) {
  StartService(true);
  ASSERT_THAT(service_->admin_endpoint(), HasSubstr("tcp://127.0.0.1:"));
  EXPECT_NE(service_->admin_endpoint(), service_->endpoint());
  EXPECT_TRUE(StatusCall(service_->admin_endpoint(), dir_ + "/alice.keys").ok());

  Outcome status = Syctl({"--coordinator=" + service_->admin_endpoint(), "--admin_key_file=" + dir_ + "/alice.keys",
                          "--json", "status"});
  EXPECT_EQ(status.code, syctl::kExitOk) << status.err;
  EXPECT_THAT(status.out, HasSubstr("\"epoch\""));
  EXPECT_EQ(service_->admin_refused(), 0u);
}

TEST_F(AdminAuthTest, UnknownKeyIsRefusedAndCounted) {
  StartService(true);
  absl::Status refused = StatusCall(service_->admin_endpoint(), dir_ + "/stranger.keys");
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied) << refused;
  EXPECT_THAT(refused.message(), HasSubstr("not an authorised admin key"));
  EXPECT_EQ(service_->admin_refused(), 1u);

  Outcome syctl = Syctl({"--coordinator=" + service_->admin_endpoint(),
                         "--admin_key_file=" + dir_ + "/stranger.keys", "status"});
  EXPECT_EQ(syctl.code, syctl::kExitFailed);
  EXPECT_THAT(syctl.err, HasSubstr("not an authorised admin key"));
  EXPECT_THAT(syctl.err, HasSubstr("PERMISSION_DENIED"));
  EXPECT_EQ(service_->admin_refused(), 2u);
  EXPECT_THAT(registry_.RenderPrometheus(),
              HasSubstr("sy_coordinator_admin_refused_total{reason=\"unknown_key\"} 2"));
}

TEST_F(AdminAuthTest, AdminCallOnTheMainEndpointIsRefusedButHostsRegister) {
  StartService(true);
  absl::Status refused = StatusCall(service_->endpoint(), "");
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied) << refused;
  EXPECT_EQ(refused.message(), "admin calls need the admin key on --admin_listen");
  EXPECT_EQ(service_->admin_refused(), 1u);
  EXPECT_THAT(registry_.RenderPrometheus(),
              HasSubstr("sy_coordinator_admin_refused_total{reason=\"main_endpoint\"} 1"));

  // Hosts keep using the main endpoint; the admin endpoint serves admin calls only.
  auto host = testing::FakeHost::Start("host-0", service_->endpoint());
  ASSERT_TRUE(host.ok()) << host.status();
  EXPECT_TRUE((*host)->Register().ok());
  EXPECT_TRUE(testing::WaitFor([&] { return (*host)->table_epoch() >= 1; }));
}

TEST_F(AdminAuthTest, WithoutKeysAdminCallsWorkOnTheMainEndpoint) {
  StartService(false);
  EXPECT_TRUE(service_->admin_endpoint().empty());
  EXPECT_TRUE(StatusCall(service_->endpoint(), "").ok());
  Outcome status = Syctl({"--coordinator=" + service_->endpoint(), "status"});
  EXPECT_EQ(status.code, syctl::kExitOk) << status.err;
  EXPECT_EQ(service_->admin_refused(), 0u);
}

TEST_F(AdminAuthTest, BadAdminOptionsAreRefusedBeforeAnythingIsOpened) {
  options_.admin_listen = "tcp://127.0.0.1:0";
  auto alone = CoordinatorService::Start(options_);
  EXPECT_EQ(alone.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(alone.status().message(), HasSubstr("--admin_listen and --admin_keys go together"));

  options_.admin_keys = dir_ + "/missing.keys";
  auto missing = CoordinatorService::Start(options_);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.status().message(), HasSubstr("cannot read admin key file"));
  EXPECT_FALSE(fs::exists(options_.db_path));  // nothing was created
}

TEST(AdminKeysTest, ParsesTheCoordinatorFileAndRejectsMalformedOnes) {
  const KeyPair server = NewKeyPair(), a = NewKeyPair(), b = NewKeyPair();
  const std::string head = "server_secret " + server.secret_key + "\nserver_public " + server.public_key + "\n";
  auto keys = ParseAdminKeys("# comment\n\n" + head + "admin a " + a.public_key + "\nadmin b " + b.public_key + "\n");
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->server_secret, server.secret_key);
  EXPECT_EQ(keys->admin_names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(keys->admin_publics, (std::vector<std::string>{a.public_key, b.public_key}));

  auto error = [](const std::string& text) { return std::string(ParseAdminKeys(text).status().message()); };
  EXPECT_THAT(error(head), HasSubstr("no 'admin NAME KEY' line"));
  EXPECT_THAT(error(head + "admin a short\n"), HasSubstr("line 3: the key is not a 40-character Z85"));
  EXPECT_THAT(error(head + "admin " + a.public_key + "\n"), HasSubstr("line 3: want 'admin NAME KEY'"));
  EXPECT_THAT(error(head + "client " + a.public_key + "\n"), HasSubstr("line 3: unknown label 'client'"));
  EXPECT_THAT(error(head + "admin a " + a.public_key + "\nadmin a " + b.public_key + "\n"),
              HasSubstr("line 4: second admin named 'a'"));
  EXPECT_THAT(error("server_secret " + server.secret_key + "\nserver_public " + a.public_key + "\nadmin a " +
                    a.public_key + "\n"),
              HasSubstr("server_public is not the public key of server_secret"));
  EXPECT_THAT(error("admin a " + a.public_key + "\n"), HasSubstr("no 'server_secret KEY' line"));
}

TEST(AdminKeysTest, SyctlKeyFileErrorsAreUsageErrors) {
  const KeyPair server = NewKeyPair(), client = NewKeyPair();
  auto error = [](const std::string& text) { return std::string(syctl::ParseClientKeys(text).status().message()); };
  EXPECT_TRUE(syctl::ParseClientKeys(ClientKeyText(client, server)).ok());
  EXPECT_THAT(error("client_public " + client.public_key + "\n"), HasSubstr("no 'client_secret KEY' line"));
  EXPECT_THAT(error("client_public x\n"), HasSubstr("line 1: the key is not a 40-character Z85"));
  EXPECT_THAT(error("client_public " + client.public_key + "\nclient_secret " + server.secret_key +
                    "\nserver_public " + server.public_key + "\n"),
              HasSubstr("client_public is not the public key of client_secret"));

  std::ostringstream out, err;
  EXPECT_EQ(syctl::RunSyctl({"--coordinator=tcp://127.0.0.1:1", "--admin_key_file=/nonexistent/keys", "status"}, out,
                            err),
            syctl::kExitUsage);
  EXPECT_THAT(err.str(), HasSubstr("cannot read admin key file '/nonexistent/keys'"));
}

TEST(AdminKeysTest, KeygenPrintsAFreshMatchingPair) {
  std::ostringstream out, err;
  ASSERT_EQ(syctl::RunSyctl({"keygen"}, out, err), syctl::kExitOk) << err.str();
  std::istringstream lines(out.str());
  std::string public_label, public_key, secret_label, secret_key;
  lines >> public_label >> public_key >> secret_label >> secret_key;
  EXPECT_EQ(public_label, "public");
  EXPECT_EQ(secret_label, "secret");
  ASSERT_TRUE(transport::IsZ85Key(public_key) && transport::IsZ85Key(secret_key)) << out.str();
  char derived[41];
  ASSERT_EQ(zmq_curve_public(derived, secret_key.c_str()), 0);
  EXPECT_EQ(public_key, derived);

  std::ostringstream again, again_err;
  ASSERT_EQ(syctl::RunSyctl({"keygen"}, again, again_err), syctl::kExitOk);
  EXPECT_NE(again.str(), out.str());
  std::ostringstream bad, bad_err;
  EXPECT_EQ(syctl::RunSyctl({"keygen", "extra"}, bad, bad_err), syctl::kExitUsage);
}

}  // namespace
}  // namespace sy::coordinator
