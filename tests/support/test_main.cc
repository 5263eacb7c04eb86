// main() of every test binary. ctest runs each test case as its own process,
// several at once, and many tests write files under ::testing::TempDir(); so
// each process gets a private temporary directory (TEST_TMPDIR, which TempDir()
// reads) and removes it at exit. Fixed file names inside it can never collide.
#include <stdlib.h>

#include <filesystem>
#include <iostream>
#include <string>

#include "gtest/gtest.h"

int main(int argc, char** argv) {
  const char* base = getenv("TMPDIR");
  std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/sy-test-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    std::cerr << "cannot create a temporary directory from " << pattern << std::endl;
    return 1;
  }
  setenv("TEST_TMPDIR", pattern.c_str(), 1);
  testing::InitGoogleTest(&argc, argv);
  const int result = RUN_ALL_TESTS();
  std::error_code ignored;
  std::filesystem::remove_all(pattern, ignored);
  return result;
}
