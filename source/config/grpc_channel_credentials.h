#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "phoenix/config/v1/bootstrap.pb.h"
#include "source/common/config_errors.h"

namespace grpc {
class ChannelCredentials;
}  // namespace grpc

namespace phoenix::config {

// The credentials of the ADS client's channel to the control plane, from a GrpcService's
// google_grpc.channel_credentials (Envoy's shape): plaintext, or TLS with the PEMs of
// ssl_credentials. The one place they are made, so a later source of in-memory PEMs (a
// certificate the control plane issues) replaces only this.

// Checks `google_grpc`'s credentials at `path` (its field path): each file readable and PEM,
// a private key and a certificate chain together.
void ValidateChannelCredentials(const v1::GrpcService::GoogleGrpc& google_grpc,
                                const std::string& path, ConfigErrors& errors);

// Reads the PEMs now (the files as they are at this connect) and makes the credentials. The
// error names the field and the file.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const v1::GrpcService::GoogleGrpc& google_grpc);

}  // namespace phoenix::config
