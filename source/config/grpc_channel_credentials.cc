#include "source/config/grpc_channel_credentials.h"

#include <grpcpp/grpcpp.h>

#include <fstream>
#include <sstream>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "source/common/strings.h"

namespace phoenix::config {
namespace {

// The PEM bytes of `source`: "" when it is unset; an error when its file cannot be read or
// holds no PEM block.
absl::StatusOr<std::string> ReadPem(const v1::DataSource& source) {
  std::string pem;
  std::string where = "inline_string";
  if (source.has_filename()) {
    std::ifstream file(source.filename(), std::ios::binary);
    if (!file) return absl::NotFoundError(absl::StrCat("cannot read ", source.filename()));
    std::stringstream bytes;
    bytes << file.rdbuf();
    pem = bytes.str();
    where = source.filename();
  } else if (source.has_inline_string()) {
    pem = source.inline_string();
  } else {
    return "";
  }
  if (pem.find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": no PEM block in it"));
  }
  return pem;
}

// The PEMs of `ssl`, read now. On error `field` is the one that failed.
absl::StatusOr<grpc::SslCredentialsOptions> ReadSslCredentials(const v1::SslCredentials& ssl,
                                                               std::string* field) {
  grpc::SslCredentialsOptions options;
  for (auto [name, source, pem] :
       {std::tuple{"root_certs", &ssl.root_certs(), &options.pem_root_certs},
        std::tuple{"private_key", &ssl.private_key(), &options.pem_private_key},
        std::tuple{"cert_chain", &ssl.cert_chain(), &options.pem_cert_chain}}) {
    auto read = ReadPem(*source);
    if (!read.ok()) {
      *field = name;
      return read.status();
    }
    *pem = *std::move(read);
  }
  if (options.pem_private_key.empty() != options.pem_cert_chain.empty()) {
    *field = options.pem_private_key.empty() ? "private_key" : "cert_chain";
    return absl::InvalidArgumentError("a client certificate needs both private_key and cert_chain");
  }
  return options;
}

constexpr const char* kSslPath = ".channel_credentials.ssl_credentials";

}  // namespace

void ValidateChannelCredentials(const v1::GrpcService::GoogleGrpc& google_grpc,
                                const std::string& path, ConfigErrors& errors) {
  if (!google_grpc.has_channel_credentials()) return;
  if (!google_grpc.channel_credentials().has_ssl_credentials()) {
    errors.Add(path + ".channel_credentials", "only ssl_credentials is supported");
    return;
  }
  std::string field;
  auto read = ReadSslCredentials(google_grpc.channel_credentials().ssl_credentials(), &field);
  if (!read.ok())
    errors.Add(absl::StrCat(path, kSslPath, ".", field), StdView(read.status().message()));
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const v1::GrpcService::GoogleGrpc& google_grpc) {
  if (!google_grpc.channel_credentials().has_ssl_credentials()) {
    return grpc::InsecureChannelCredentials();
  }
  std::string field;
  auto options = ReadSslCredentials(google_grpc.channel_credentials().ssl_credentials(), &field);
  if (!options.ok()) {
    return absl::Status(options.status().code(),
                        absl::StrCat("ssl_credentials.", field, ": ", options.status().message()));
  }
  return grpc::SslCredentials(*options);
}

}  // namespace phoenix::config
