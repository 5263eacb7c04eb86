// A separate process for the two-process tests: binds a ZeroMQ ROUTER on the given
// endpoint, prints "ENDPOINT <resolved endpoint>" on stdout, and echoes every request
// until stdin closes (the parent's end of the pipe) or it is killed.
#include <cstdio>
#include <iostream>
#include <string>

#include "common/transport/zmq_transport.h"
#include "tests/unit/transport/testing.h"

int main(int argc, char** argv) {
  const std::string endpoint = argc > 1 ? argv[1] : "tcp://127.0.0.1:*";
  sy::transport::ZmqOptions options;
  options.node_id = "echo-server";
  auto transport = sy::transport::ZmqTransport::Create(options);
  if (!transport.ok()) {
    std::cerr << transport.status() << "\n";
    return 1;
  }
  auto bound = (*transport)->Bind(endpoint);
  if (!bound.ok()) {
    std::cerr << bound.status() << "\n";
    return 1;
  }
  auto node = sy::transport::RpcNode::Create(*std::move(transport), {}, sy::transport::testing::EchoHandler);
  if (!node.ok()) {
    std::cerr << node.status() << "\n";
    return 1;
  }
  std::cout << "ENDPOINT " << *bound << std::endl;
  while (std::fgetc(stdin) != EOF) {
  }
  return 0;
}
