#include "source/config/redact.h"

#include "phoenix/config/v1/tls.pb.h"

namespace phoenix::config {
namespace {

constexpr char kRedacted[] = "[redacted]";

void Redact(v1::TlsCertificate* certificate) {
  if (certificate->private_key().has_inline_string()) {
    certificate->mutable_private_key()->set_inline_string(kRedacted);
  }
}

void Redact(v1::CommonTlsContext* common) {
  for (auto& certificate : *common->mutable_tls_certificates()) Redact(&certificate);
}

// A transport socket's typed_config, if it is a TLS context.
void Redact(v1::TransportSocket* socket) {
  auto* any = socket->mutable_typed_config();
  if (any->Is<v1::DownstreamTlsContext>()) {
    v1::DownstreamTlsContext context;
    if (!any->UnpackTo(&context)) return;
    Redact(context.mutable_common_tls_context());
    any->PackFrom(context);
  } else if (any->Is<v1::UpstreamTlsContext>()) {
    v1::UpstreamTlsContext context;
    if (!any->UnpackTo(&context)) return;
    Redact(context.mutable_common_tls_context());
    any->PackFrom(context);
  }
}

}  // namespace

void RedactPrivateKeys(v1::Bootstrap* bootstrap) {
  auto* resources = bootstrap->mutable_static_resources();
  for (auto& secret : *resources->mutable_secrets()) {
    if (secret.has_tls_certificate()) Redact(secret.mutable_tls_certificate());
  }
  for (auto& listener : *resources->mutable_listeners()) {
    for (auto& chain : *listener.mutable_filter_chains()) {
      Redact(chain.mutable_transport_socket());
    }
    if (listener.has_default_filter_chain()) {
      Redact(listener.mutable_default_filter_chain()->mutable_transport_socket());
    }
  }
  for (auto& cluster : *resources->mutable_clusters()) Redact(cluster.mutable_transport_socket());
}

}  // namespace phoenix::config
