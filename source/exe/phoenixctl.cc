// phoenixctl: the command line of phoenix-cp's admin service (apply, diff, validate, get,
// status, audit). See source/cli/options.cc for the usage.
#include <iostream>
#include <string>
#include <vector>

#include "grpc/support/log.h"
#include "source/cli/admin_client.h"
#include "source/cli/commands.h"
#include "source/cli/options.h"

namespace {
// gRPC's own log lines (a failed TLS handshake, say): AdminClient::Explain says it in one.
void DropGrpcLog(gpr_log_func_args*) {}
}  // namespace

int main(int argc, char** argv) {
  using namespace phoenix::cli;
  gpr_set_log_function(DropGrpcLog);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 1 && args[0] == "--version") {
    std::cout << "phoenixctl " << PHOENIX_VERSION << "\n";
    return kExitOk;
  }
  auto options = ParseArgs(args);
  if (!options.ok()) {
    std::cerr << "phoenixctl: " << options.status().message() << "\n" << kUsage;
    return kExitUsage;
  }
  if (options->command == "help") {
    std::cout << kUsage;
    return kExitOk;
  }
  std::string token;
  if (!options->token_file.empty()) {
    auto read = AdminClient::ReadToken(options->token_file);
    if (!read.ok()) {
      std::cerr << "phoenixctl: " << read.status().message() << " (--token-file)\n";
      return kExitUsage;
    }
    token = *read;
  }
  ClientTlsFiles tls{options->ca, options->client_cert, options->client_key};
  auto credentials = AdminClient::Credentials(tls);
  if (!credentials.ok()) {
    std::cerr << "phoenixctl: " << credentials.status().message() << "\n";
    return kExitUsage;
  }
  AdminClient client(options->server, token, tls, *std::move(credentials));
  return RunCommand(*options, client, std::cout, std::cerr);
}
