// syctl: the admin CLI. All logic lives in sy_syctl_lib and sy_syctl_cli (RunSyctl).
#include <iostream>
#include <string>
#include <vector>

#include "common/base/process_setup.h"
#include "services/syctl/command_line.h"

int main(int argc, char** argv) {
  sy::base::SetUpProcess();
  return sy::syctl::RunSyctl(std::vector<std::string>(argv + 1, argv + argc), std::cout, std::cerr);
}
