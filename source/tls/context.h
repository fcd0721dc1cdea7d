#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "phoenix/config/v1/tls.pb.h"
#include "source/common/config_errors.h"
#include "source/common/stats.h"
#include "source/matchers/string_matcher.h"
#include "source/network/transport_socket_registry.h"
#include "source/tls/certificate.h"
#include "source/tls/ticket_keys.h"

namespace phoenix::tls {

// Handshakes of one listener or cluster ("listener.<name>.tls." / "cluster.<name>.tls."), and
// why those that failed did.
#define PHX_TLS_STATS(COUNTER, GAUGE, HISTOGRAM)                                          \
  COUNTER(handshake, "TLS handshakes completed")                                          \
  COUNTER(session_reused, "TLS handshakes that resumed a session")                        \
  COUNTER(fail_no_certificate, "Handshakes failed: the peer sent no certificate")         \
  COUNTER(fail_unknown_ca, "Handshakes failed: the peer's certificate has an unknown CA") \
  COUNTER(fail_bad_certificate, "Handshakes failed: the peer's certificate is invalid")   \
  COUNTER(fail_san_mismatch, "Handshakes failed: no SAN of the peer is allowed")          \
  COUNTER(fail_version, "Handshakes failed: no common TLS version")                       \
  COUNTER(fail_cipher, "Handshakes failed: no common cipher")                             \
  COUNTER(fail_timeout, "Handshakes failed: too slow")                                    \
  COUNTER(fail_plaintext, "Handshakes failed: the peer spoke plaintext")                  \
  COUNTER(fail_protocol, "Handshakes failed: a TLS protocol error")                       \
  COUNTER(fail_other, "Handshakes failed for another reason")                             \
  COUNTER(fail_expired_certificate, "Handshakes failed: our own certificate has expired") \
  GAUGE(ecdsa_cert_expires_in_seconds, "Seconds until the ECDSA certificate expires")     \
  GAUGE(rsa_cert_expires_in_seconds, "Seconds until the RSA certificate expires")
struct TlsStats {
  PHX_STATS(TlsStats, PHX_TLS_STATS);
};

// Why a handshake failed; each has its counter and its words in the log.
enum class HandshakeFailure {
  kNoCertificate,
  kUnknownCa,
  kBadCertificate,
  kSanMismatch,
  kVersion,
  kCipher,
  kTimeout,
  kPlaintext,
  kProtocol,
  kOther,
  kExpiredCertificate,  // Ours: a certificate this side would show has expired.
};

// One TLS configuration compiled into an OpenSSL SSL_CTX, plus what the sockets made from it
// check and count: the peer's SANs, the stats, the upstream's server name and its last
// session. Immutable once built (bar the session cache) and shared by every worker; a
// rotated certificate makes a new one, and connections keep the one they started with.
class TlsContext {
 public:
  // Null, with errors added under `path`, when the config or its certificates are bad.
  static std::shared_ptr<const TlsContext> CreateServer(
      const config::v1::DownstreamTlsContext& proto, const network::TransportSocketContext& context,
      const std::string& path, config::ConfigErrors& errors);
  static std::shared_ptr<const TlsContext> CreateClient(
      const config::v1::UpstreamTlsContext& proto, const network::TransportSocketContext& context,
      const std::string& path, config::ConfigErrors& errors);
  ~TlsContext();

  SSL_CTX* ssl_ctx() const { return ctx_.get(); }
  bool is_server() const { return is_server_; }
  // Upstream: the name sent as SNI and (without SAN matchers) checked in the certificate.
  const std::string& sni() const { return sni_; }
  bool verify_host() const { return verify_host_; }
  std::chrono::milliseconds handshake_timeout() const { return handshake_timeout_; }
  // Who is being talked to, for log lines: "listener ingress" / "cluster app".
  const std::string& description() const { return description_; }
  // Null when built without a stats store.
  TlsStats* stats() const { return stats_.get(); }
  const std::string& fingerprint() const { return fingerprint_; }
  const std::vector<CertificateInfo>& certificates() const { return certificates_; }
  // The first URI SAN of its certificates ("" if none): who this side is, for XFCC's By.
  const std::string& local_uri_san() const { return local_uri_san_; }
  // The files its certificates, keys and CA bundles were read from: a change to one of them
  // is a rotation.
  const std::vector<std::string>& files() const { return files_; }
  // Server: seals and opens session tickets; null when tickets are off.
  TicketKeyRing* ticket_keys() const { return ticket_keys_.get(); }

  // Whether `cert` carries a SAN that one of the configured matchers accepts (true when none
  // are configured).
  bool MatchesSubjectAltNames(X509* cert) const;
  void CountFailure(HandshakeFailure failure) const;
  // Upstream session reuse: the newest session a handshake produced, if any.
  void SaveSession(SSL_SESSION* session) const;
  SslSessionPtr LastSession() const;
  // Sets the expiry gauges from the clock.
  void RefreshExpiryGauges() const;
  // Whether one of its own certificates has expired at `now`: it then refuses handshakes that
  // would show one (an expired identity certificate is never served), until a rotation
  // replaces the context.
  bool HasExpiredCertificate(time_t now) const;
  // Logs (at most once a minute per context) that handshakes are refused for that.
  void WarnExpiredCertificate(time_t now) const;

  // The SSL_CTX's owner, from the SSL_CTX (for OpenSSL callbacks).
  static const TlsContext* From(const SSL_CTX* ctx);

 private:
  struct SanMatcher {
    int type;  // GEN_DNS, GEN_URI, GEN_EMAIL, GEN_IPADD
    std::unique_ptr<matchers::StringMatcher> matcher;
  };

  TlsContext() = default;
  bool ConfigureCommon(const config::v1::CommonTlsContext& common, bool server,
                       const network::TransportSocketContext& context, const std::string& path,
                       config::ConfigErrors& errors);
  void AddFile(const config::v1::DataSource& source);
  bool ConfigureValidation(const config::v1::CertificateValidationContext& validation,
                           const std::string& path, config::ConfigErrors& errors);

  SslCtxPtr ctx_;
  bool is_server_ = false;
  std::string sni_;
  bool verify_host_ = false;
  std::chrono::milliseconds handshake_timeout_{10000};
  std::string description_;
  std::unique_ptr<TlsStats> stats_;
  std::string fingerprint_;
  // What peers are verified against (CA bundles, SAN matchers): sessions resume only under it.
  std::string validation_fingerprint_;
  std::vector<CertificateInfo> certificates_;
  std::string local_uri_san_;
  std::vector<std::string> files_;
  std::vector<SanMatcher> san_matchers_;
  // A combined_validation_context made whole: the secret's bundle and the SAN matchers.
  config::v1::CertificateValidationContext combined_validation_;
  std::vector<unsigned char> alpn_wire_;  // Server: offered protocols, length-prefixed.
  std::shared_ptr<TicketKeyRing> ticket_keys_;
  mutable std::atomic<time_t> last_expiry_warning_{0};
  mutable absl::Mutex session_mu_;
  mutable SslSessionPtr last_session_ ABSL_GUARDED_BY(session_mu_);
};

// The SSL ex_data slot (a std::string*) where certificate verification notes which peer it
// refused, for the log line: by then OpenSSL no longer keeps the peer's certificate.
int RefusedPeerIndex();
// The SSL ex_data slot that is set (non-null) when the handshake was refused because the
// context's own certificate has expired, so the failure is counted as that.
int ExpiredCertificateIndex();

}  // namespace phoenix::tls
