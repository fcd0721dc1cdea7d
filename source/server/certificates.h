#pragma once

#include <string>
#include <vector>

#include "source/config/snapshot.h"
#include "source/tls/context.h"

namespace phoenix::server {

// A TLS context in force and who uses it: "listener ingress, chain tls" / "cluster app".
struct TlsContextInUse {
  std::string owner;
  const tls::TlsContext* context;
};

// The TLS contexts of `snapshot`'s listener filter chains and clusters.
std::vector<TlsContextInUse> TlsContextsOf(const config::ConfigSnapshot& snapshot);
// The certificate, key and CA files they read, for the certificate watcher.
std::vector<std::string> CertificateFilesOf(const config::ConfigSnapshot& snapshot);
// Admin /certs: for each certificate in force, its owner, source, subject, SANs, serial,
// not-after and days left, as JSON.
std::string CertificatesJson(const config::ConfigSnapshot& snapshot,
                             const std::string& workload_identity_json = "");
// Sets each context's expiry gauges from the clock (before /stats renders them).
void RefreshCertificateGauges(const config::ConfigSnapshot& snapshot);

}  // namespace phoenix::server
