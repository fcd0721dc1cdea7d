#include "source/server/certificates.h"

#include <ctime>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "source/common/strings.h"
#include "source/tls/ssl_socket.h"

namespace phoenix::server {
namespace {

const tls::TlsContext* ContextOf(const network::TransportSocketFactory* factory) {
  const auto* ssl = dynamic_cast<const tls::SslSocketFactory*>(factory);
  return ssl != nullptr ? &ssl->context() : nullptr;
}

}  // namespace

std::vector<TlsContextInUse> TlsContextsOf(const config::ConfigSnapshot& snapshot) {
  std::vector<TlsContextInUse> contexts;
  for (const auto& listener : snapshot.listeners) {
    if (listener.filter_chains == nullptr) continue;
    for (const config::FilterChain* chain : listener.filter_chains->chains()) {
      if (const auto* context = ContextOf(chain->transport_socket_factory.get())) {
        contexts.push_back(
            {absl::StrCat("listener ", listener.name, ", chain ", chain->name), context});
      }
    }
  }
  for (const auto& [name, cluster] : snapshot.clusters) {
    if (const auto* context = ContextOf(&cluster->transport_socket_factory())) {
      contexts.push_back({absl::StrCat("cluster ", name), context});
    }
  }
  return contexts;
}

std::vector<std::string> CertificateFilesOf(const config::ConfigSnapshot& snapshot) {
  std::set<std::string> files;
  for (const auto& in_use : TlsContextsOf(snapshot)) {
    files.insert(in_use.context->files().begin(), in_use.context->files().end());
  }
  return {files.begin(), files.end()};
}

std::string CertificatesJson(const config::ConfigSnapshot& snapshot,
                             const std::string& workload_identity_json) {
  time_t now = time(nullptr);
  std::string out = "{\"certificates\":[";
  bool first = true;
  for (const auto& in_use : TlsContextsOf(snapshot)) {
    for (const tls::CertificateInfo& info : in_use.context->certificates()) {
      std::string sans;
      for (const std::string& san : info.subject_alt_names) {
        absl::StrAppend(&sans, sans.empty() ? "" : ",", "\"", JsonEscape(san), "\"");
      }
      absl::StrAppend(&out, first ? "" : ",", "\n{\"owner\":\"", JsonEscape(in_use.owner),
                      "\",\"source\":\"", JsonEscape(info.source), "\",\"subject\":\"",
                      JsonEscape(info.subject), "\",\"subject_alt_names\":[", sans,
                      "],\"serial\":\"", info.serial, "\",\"key_type\":\"", info.key_type,
                      "\",\"not_after\":\"",
                      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromTimeT(info.not_after),
                                       absl::UTCTimeZone()),
                      "\",\"days_left\":", (info.not_after - now) / 86400,
                      ",\"seconds_left\":", static_cast<int64_t>(info.not_after - now), "}");
      first = false;
    }
  }
  absl::StrAppend(&out, "]");
  if (!workload_identity_json.empty()) {
    absl::StrAppend(&out, ",\n\"workload_identity\":", workload_identity_json);
  }
  absl::StrAppend(&out, "}\n");
  return out;
}

void RefreshCertificateGauges(const config::ConfigSnapshot& snapshot) {
  for (const auto& in_use : TlsContextsOf(snapshot)) in_use.context->RefreshExpiryGauges();
}

}  // namespace phoenix::server
