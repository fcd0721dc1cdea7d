#include "source/tls/context.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "source/common/duration.h"
#include "source/common/logging.h"

namespace phoenix::tls {
namespace {

// Mozilla's "intermediate" TLS 1.2 suites, without the finite-field DHE ones (only X25519 and
// P-256 are offered as groups), and its TLS 1.3 suites in its order: AES-128-GCM first, which
// OpenSSL's default order puts after AES-256-GCM.
constexpr char kIntermediateCiphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr char kTls13Suites[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr char kDefaultGroups[] = "X25519:P-256";
constexpr char kHttp11[] = "http/1.1";
constexpr char kHttp2[] = "h2";

int ContextIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// Checks the peer's SANs once OpenSSL has verified its chain, so that a mismatch fails the
// handshake with an alert rather than a connection that is dropped afterwards.
int VerifyCallback(int preverify_ok, X509_STORE_CTX* store) {
  auto* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  if (preverify_ok == 1 && X509_STORE_CTX_get_error_depth(store) == 0) {
    const TlsContext* context = TlsContext::From(SSL_get_SSL_CTX(ssl));
    if (context == nullptr ||
        context->MatchesSubjectAltNames(X509_STORE_CTX_get_current_cert(store))) {
      return 1;
    }
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
    preverify_ok = 0;
  }
  if (preverify_ok != 1) {
    auto* refused = static_cast<std::string*>(SSL_get_ex_data(ssl, RefusedPeerIndex()));
    X509* leaf = X509_STORE_CTX_get0_cert(store);
    if (refused != nullptr && leaf != nullptr && refused->empty()) {
      CertificateInfo info = DescribeCertificate(leaf, "");
      *refused = info.subject;
      for (const std::string& san : info.subject_alt_names) {
        if (san.rfind("URI:", 0) == 0) absl::StrAppend(refused, " ", san);
      }
    }
  }
  return preverify_ok;
}

// An expired identity certificate is never served: a rotation that did not happen must not
// turn into peers accepting a dead identity. True (and the SSL marked, for the failure's
// counter) when a certificate of `context` has expired. Any expired one refuses, even when the
// context also holds a valid one of the other key type: OpenSSL picks which to show later.
bool RefuseForExpiredCertificate(SSL* ssl, const TlsContext* context) {
  time_t now = time(nullptr);
  if (!context->HasExpiredCertificate(now)) return false;
  SSL_set_ex_data(ssl, ExpiredCertificateIndex(), const_cast<TlsContext*>(context));
  context->WarnExpiredCertificate(now);
  return true;
}

// Server: every ClientHello, resumptions included (a resumed session would go on living on the
// expired certificate; OpenSSL's cert_cb does not run for those).
int ExpiryClientHelloCallback(SSL* ssl, int* alert, void* arg) {
  if (!RefuseForExpiredCertificate(ssl, static_cast<const TlsContext*>(arg))) {
    return SSL_CLIENT_HELLO_SUCCESS;
  }
  *alert = SSL_AD_INTERNAL_ERROR;
  return SSL_CLIENT_HELLO_ERROR;
}

// Client: when the server asks for our certificate (SslSocket offers no session to resume
// once it has expired, so every handshake that would use it comes here).
int ExpiryCertCallback(SSL* ssl, void* arg) {
  return RefuseForExpiredCertificate(ssl, static_cast<const TlsContext*>(arg)) ? 0 : 1;
}

int TicketKeyCallback(SSL* ssl, unsigned char key_name[16], unsigned char* iv,
                      EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int encrypt) {
  const TlsContext* context = TlsContext::From(SSL_get_SSL_CTX(ssl));
  if (context == nullptr || context->ticket_keys() == nullptr) return 0;
  return context->ticket_keys()->Process(key_name, iv, cipher, mac, encrypt);
}

// A ticket whose peer certificate has expired since, or that has no peer certificate where
// one is required, is not resumed (a full handshake shows a certificate again): an identity
// lives no longer than its certificate, resumption or not.
SSL_TICKET_RETURN TicketDecryptedCallback(SSL* ssl, SSL_SESSION* session, const unsigned char*,
                                          size_t, SSL_TICKET_STATUS status, void*) {
  switch (status) {
    case SSL_TICKET_SUCCESS:
    case SSL_TICKET_SUCCESS_RENEW: {
      X509* peer = SSL_SESSION_get0_peer(session);
      if (peer != nullptr && X509_cmp_current_time(X509_get0_notAfter(peer)) <= 0) {
        return SSL_TICKET_RETURN_IGNORE_RENEW;
      }
      if (peer == nullptr && (SSL_get_verify_mode(ssl) & SSL_VERIFY_FAIL_IF_NO_PEER_CERT) != 0) {
        return SSL_TICKET_RETURN_IGNORE_RENEW;
      }
      return status == SSL_TICKET_SUCCESS ? SSL_TICKET_RETURN_USE : SSL_TICKET_RETURN_USE_RENEW;
    }
    case SSL_TICKET_FATAL_ERR_MALLOC:
    case SSL_TICKET_FATAL_ERR_OTHER:
      return SSL_TICKET_RETURN_ABORT;
    default:  // None, empty, not decryptable: a full handshake.
      return SSL_TICKET_RETURN_IGNORE_RENEW;
  }
}

int NewSessionCallback(SSL* ssl, SSL_SESSION* session) {
  const TlsContext* context = TlsContext::From(SSL_get_SSL_CTX(ssl));
  if (context == nullptr) return 0;
  // A copy: OpenSSL marks the connection's own session unusable when the connection ends
  // without close_notify, as pooled upstream connections may.
  context->SaveSession(SSL_SESSION_dup(session));
  return 0;
}

int VersionOf(config::v1::TlsParameters::TlsProtocol protocol, int fallback) {
  switch (protocol) {
    case config::v1::TlsParameters::TLSv1_2:
      return TLS1_2_VERSION;
    case config::v1::TlsParameters::TLSv1_3:
      return TLS1_3_VERSION;
    default:
      return fallback;
  }
}

std::string Sha256Hex(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), static_cast<size_t>(length)));
}

// The secret named `name` of the wanted kind, or null with an error under `path`.
const config::v1::Secret* FindSecret(const network::TransportSocketContext& context,
                                     const std::string& name, config::v1::Secret::TypeCase type,
                                     const std::string& path, config::ConfigErrors& errors) {
  const config::v1::Secret* secret = nullptr;
  if (context.secrets != nullptr) {
    auto it = context.secrets->find(name);
    if (it != context.secrets->end()) secret = &it->second;
  }
  if (secret == nullptr) {
    errors.Add(path + ".name", absl::StrCat("unknown secret '", name, "'"));
    return nullptr;
  }
  if (secret->type_case() != type) {
    errors.Add(path + ".name",
               absl::StrCat("secret '", name, "' is not a ",
                            type == config::v1::Secret::kTlsCertificate ? "tls_certificate"
                                                                        : "validation_context"));
    return nullptr;
  }
  return secret;
}

}  // namespace

TlsContext::~TlsContext() = default;

const TlsContext* TlsContext::From(const SSL_CTX* ctx) {
  return static_cast<const TlsContext*>(SSL_CTX_get_ex_data(ctx, ContextIndex()));
}

void TlsContext::AddFile(const config::v1::DataSource& source) {
  if (source.specifier_case() == config::v1::DataSource::kFilename) {
    files_.push_back(source.filename());
  }
}

bool TlsContext::ConfigureValidation(const config::v1::CertificateValidationContext& validation,
                                     const std::string& path, config::ConfigErrors& errors) {
  bool ok = true;
  if (validation.has_trusted_ca()) {
    AddFile(validation.trusted_ca());
    std::string pem;
    auto store = LoadTrustedCa(validation.trusted_ca(), &pem);
    if (!store.ok()) {
      errors.Add(path + ".trusted_ca", std::string(store.status().message()));
      ok = false;
    } else {
      SSL_CTX_set_cert_store(ctx_.get(), store->release());
      fingerprint_ += pem;
      validation_fingerprint_ += pem;
    }
  }
  for (int i = 0; i < validation.match_typed_subject_alt_names_size(); ++i) {
    const auto& proto = validation.match_typed_subject_alt_names(i);
    std::string mpath = absl::StrCat(path, ".match_typed_subject_alt_names[", i, "]");
    SanMatcher matcher;
    switch (proto.san_type()) {
      case config::v1::SubjectAltNameMatcher::DNS:
        matcher.type = GEN_DNS;
        break;
      case config::v1::SubjectAltNameMatcher::URI:
        matcher.type = GEN_URI;
        break;
      case config::v1::SubjectAltNameMatcher::EMAIL:
        matcher.type = GEN_EMAIL;
        break;
      case config::v1::SubjectAltNameMatcher::IP_ADDRESS:
        matcher.type = GEN_IPADD;
        break;
      default:
        errors.Add(mpath + ".san_type", "give DNS, URI, EMAIL or IP_ADDRESS");
        ok = false;
        continue;
    }
    matcher.matcher =
        std::make_unique<matchers::StringMatcher>(proto.matcher(), mpath + ".matcher", errors);
    san_matchers_.push_back(std::move(matcher));
  }
  return ok;
}

bool TlsContext::ConfigureCommon(const config::v1::CommonTlsContext& common, bool server,
                                 const network::TransportSocketContext& context,
                                 const std::string& path, config::ConfigErrors& errors) {
  size_t errors_before = errors.errors().size();
  ctx_.reset(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()));
  SSL_CTX_set_ex_data(ctx_.get(), ContextIndex(), this);
  // OpenSSL 3 refuses client-initiated renegotiation by default; this refuses all of it.
  SSL_CTX_set_options(ctx_.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ctx_.get(), SSL_MODE_RELEASE_BUFFERS);

  const auto& params = common.tls_params();
  std::string ppath = path + ".tls_params";
  for (auto [field, value] :
       {std::pair{"tls_minimum_protocol_version", params.tls_minimum_protocol_version()},
        std::pair{"tls_maximum_protocol_version", params.tls_maximum_protocol_version()}}) {
    if (value == config::v1::TlsParameters::TLSv1_0 ||
        value == config::v1::TlsParameters::TLSv1_1) {
      errors.Add(absl::StrCat(ppath, ".", field), "Phoenix speaks TLS 1.2 and 1.3 only");
    }
  }
  int min_version = VersionOf(params.tls_minimum_protocol_version(), TLS1_2_VERSION);
  int max_version = VersionOf(params.tls_maximum_protocol_version(), TLS1_3_VERSION);
  if (min_version > max_version) {
    errors.Add(ppath + ".tls_minimum_protocol_version", "above tls_maximum_protocol_version");
  }
  SSL_CTX_set_min_proto_version(ctx_.get(), min_version);
  SSL_CTX_set_max_proto_version(ctx_.get(), max_version);
  std::string ciphers = params.cipher_suites().empty() ? kIntermediateCiphers
                                                       : absl::StrJoin(params.cipher_suites(), ":");
  if (SSL_CTX_set_cipher_list(ctx_.get(), ciphers.c_str()) != 1) {
    errors.Add(ppath + ".cipher_suites", "no cipher suite OpenSSL knows");
  }
  SSL_CTX_set_ciphersuites(ctx_.get(), kTls13Suites);
  std::string groups =
      params.ecdh_curves().empty() ? kDefaultGroups : absl::StrJoin(params.ecdh_curves(), ":");
  if (SSL_CTX_set1_groups_list(ctx_.get(), groups.c_str()) != 1) {
    errors.Add(ppath + ".ecdh_curves", absl::StrCat("unknown group in '", groups, "'"));
  }
  ERR_clear_error();

  // Certificates: inline ones, then named ones.
  std::vector<std::pair<std::string, config::v1::TlsCertificate>> certs;
  for (int i = 0; i < common.tls_certificates_size(); ++i) {
    certs.emplace_back(absl::StrCat(path, ".tls_certificates[", i, "]"),
                       common.tls_certificates(i));
  }
  for (int i = 0; i < common.tls_certificate_sds_secret_configs_size(); ++i) {
    std::string spath = absl::StrCat(path, ".tls_certificate_sds_secret_configs[", i, "]");
    if (const auto* secret =
            FindSecret(context, common.tls_certificate_sds_secret_configs(i).name(),
                       config::v1::Secret::kTlsCertificate, spath, errors)) {
      certs.emplace_back(spath, secret->tls_certificate());
    }
  }
  if (!server && certs.size() > 1) {
    errors.Add(path + ".tls_certificates", "an upstream connection shows one client certificate");
  }
  std::set<std::string> key_types;
  for (const auto& [cpath, proto] : certs) {
    AddFile(proto.certificate_chain());
    AddFile(proto.private_key());
    auto loaded = LoadCertificate(proto);
    if (!loaded.ok()) {
      errors.Add(cpath, std::string(loaded.status().message()));
      continue;
    }
    std::string key_family = loaded->info.key_type.substr(0, loaded->info.key_type.find(' '));
    if (!key_types.insert(key_family).second) {
      errors.Add(cpath, absl::StrCat("a second ", key_family,
                                     " certificate: give at most one per key type"));
      continue;
    }
    if (SSL_CTX_use_cert_and_key(ctx_.get(), loaded->leaf.get(), loaded->key.get(),
                                 loaded->chain.get(), 1) != 1) {
      ERR_clear_error();
      errors.Add(cpath, "OpenSSL refused this certificate and key");
      continue;
    }
    fingerprint_ += loaded->pem;
    for (const std::string& san : loaded->info.subject_alt_names) {
      if (local_uri_san_.empty() && san.rfind("URI:", 0) == 0) local_uri_san_ = san.substr(4);
    }
    certificates_.push_back(std::move(loaded->info));
  }
  if (!certificates_.empty() && server) {
    SSL_CTX_set_client_hello_cb(ctx_.get(), ExpiryClientHelloCallback, this);
  } else if (!certificates_.empty()) {
    SSL_CTX_set_cert_cb(ctx_.get(), ExpiryCertCallback, this);
  }

  std::string vpath;
  const config::v1::CertificateValidationContext* validation = nullptr;
  if (common.has_validation_context()) {
    validation = &common.validation_context();
    vpath = path + ".validation_context";
  } else if (common.has_validation_context_sds_secret_config()) {
    vpath = path + ".validation_context_sds_secret_config";
    if (const auto* secret =
            FindSecret(context, common.validation_context_sds_secret_config().name(),
                       config::v1::Secret::kValidationContext, vpath, errors)) {
      validation = &secret->validation_context();
    }
  } else if (common.has_combined_validation_context()) {
    // The named secret's CA bundle, with this context's own SAN matchers on top.
    const auto& combined = common.combined_validation_context();
    vpath = path + ".combined_validation_context";
    if (combined.default_validation_context().has_trusted_ca()) {
      errors.Add(vpath + ".default_validation_context.trusted_ca",
                 "the CA bundle comes from validation_context_sds_secret_config");
    }
    if (combined.validation_context_sds_secret_config().name().empty()) {
      errors.Add(vpath + ".validation_context_sds_secret_config.name",
                 "name the CA bundle's secret");
    } else if (const auto* secret =
                   FindSecret(context, combined.validation_context_sds_secret_config().name(),
                              config::v1::Secret::kValidationContext,
                              vpath + ".validation_context_sds_secret_config", errors)) {
      combined_validation_.set_allocated_trusted_ca(
          new config::v1::DataSource(secret->validation_context().trusted_ca()));
      for (const auto& matcher :
           combined.default_validation_context().match_typed_subject_alt_names()) {
        *combined_validation_.add_match_typed_subject_alt_names() = matcher;
      }
      validation = &combined_validation_;
    }
  }
  if (validation != nullptr) {
    ConfigureValidation(*validation, vpath, errors);
    for (const auto& matcher : validation->match_typed_subject_alt_names()) {
      validation_fingerprint_ += matcher.SerializeAsString();
    }
  }

  for (int i = 0; i < common.alpn_protocols_size(); ++i) {
    const std::string& protocol = common.alpn_protocols(i);
    if (protocol != kHttp11 && protocol != kHttp2) {
      errors.Add(absl::StrCat(path, ".alpn_protocols[", i, "]"),
                 absl::StrCat("'", protocol, "' is not spoken: only h2 and http/1.1"));
    }
  }
  return errors.errors().size() == errors_before;
}

std::shared_ptr<const TlsContext> TlsContext::CreateServer(
    const config::v1::DownstreamTlsContext& proto, const network::TransportSocketContext& context,
    const std::string& path, config::ConfigErrors& errors) {
  std::shared_ptr<TlsContext> tls(new TlsContext());
  tls->is_server_ = true;
  tls->description_ = absl::StrCat("listener ", context.stat_name);
  const auto& common = proto.common_tls_context();
  std::string cpath = path + ".common_tls_context";
  if (!tls->ConfigureCommon(common, /*server=*/true, context, cpath, errors)) return nullptr;
  if (tls->certificates_.empty()) {
    errors.Add(cpath + ".tls_certificates", "a listener's TLS context needs a certificate");
    return nullptr;
  }
  SSL_CTX* ctx = tls->ctx_.get();
  // The server's order decides (AES-GCM first), except that a client preferring ChaCha20
  // (no AES hardware) gets it: scanners rate a client-chosen order as a finding.
  SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
  bool has_validation = common.has_validation_context() ||
                        common.has_validation_context_sds_secret_config() ||
                        common.has_combined_validation_context();
  bool require = proto.require_client_certificate().value();
  if (require && !has_validation) {
    errors.Add(path + ".require_client_certificate",
               "needs a validation_context to check client certificates against");
    return nullptr;
  }
  if (has_validation) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (require ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                       VerifyCallback);
  }
  // ALPN: the server's preference among what the client offers; http/1.1 by default.
  std::vector<std::string> protocols(common.alpn_protocols().begin(),
                                     common.alpn_protocols().end());
  if (protocols.empty()) protocols.push_back(kHttp11);
  for (const std::string& protocol : protocols) {
    tls->alpn_wire_.push_back(static_cast<unsigned char>(protocol.size()));
    tls->alpn_wire_.insert(tls->alpn_wire_.end(), protocol.begin(), protocol.end());
  }
  SSL_CTX_set_alpn_select_cb(
      ctx,
      [](SSL*, const unsigned char** out, unsigned char* out_length, const unsigned char* in,
         unsigned int in_length, void* arg) {
        auto* wire = static_cast<std::vector<unsigned char>*>(arg);
        unsigned char* selected = nullptr;
        if (SSL_select_next_proto(&selected, out_length, wire->data(), wire->size(), in,
                                  in_length) != OPENSSL_NPN_NEGOTIATED) {
          return SSL_TLSEXT_ERR_NOACK;
        }
        *out = selected;
        return SSL_TLSEXT_ERR_OK;
      },
      &tls->alpn_wire_);
  // Sessions resume by ticket only: no server-side cache to share between workers.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  // A session resumes only under the trust it was verified with: a changed CA bundle (a root
  // rotated out), SAN allow-list or client-certificate requirement makes its peer show a
  // certificate again.
  std::string id_context = Sha256Hex(absl::StrCat(context.stat_name, "\n", require ? "1" : "0",
                                                  "\n", tls->validation_fingerprint_))
                               .substr(0, SSL_MAX_SID_CTX_LENGTH);
  SSL_CTX_set_session_id_context(ctx, reinterpret_cast<const unsigned char*>(id_context.data()),
                                 id_context.size());
  if (proto.disable_stateless_session_resumption()) {
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
  } else {
    auto rotation = proto.has_session_ticket_key_rotation()
                        ? ToMilliseconds(proto.session_ticket_key_rotation())
                        : std::chrono::milliseconds(3600 * 1000);
    if (rotation.count() < 1000) {
      errors.Add(path + ".session_ticket_key_rotation", "must be at least 1s");
      return nullptr;
    }
    tls->ticket_keys_ = TicketKeyRing::ForListener(
        context.stat_name, std::chrono::duration_cast<std::chrono::seconds>(rotation));
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, TicketKeyCallback);
    SSL_CTX_set_session_ticket_cb(ctx, nullptr, TicketDecryptedCallback, nullptr);
    SSL_CTX_set_num_tickets(ctx, 1);
  }
  if (proto.has_session_timeout()) {
    SSL_CTX_set_timeout(ctx, ToMilliseconds(proto.session_timeout()).count() / 1000);
  } else {
    SSL_CTX_set_timeout(ctx, 7200);
  }
  if (proto.has_handshake_timeout()) {
    tls->handshake_timeout_ = ToMilliseconds(proto.handshake_timeout());
    if (tls->handshake_timeout_.count() <= 0) {
      errors.Add(path + ".handshake_timeout", "must be positive");
      return nullptr;
    }
  }
  if (context.stats != nullptr) {
    tls->stats_ = std::make_unique<TlsStats>(StatsScope(*context.stats, "listener.")
                                                 .Labelled("listener_name", context.stat_name)
                                                 .Nested("tls"));
  }
  tls->fingerprint_ = Sha256Hex(tls->fingerprint_);
  tls->RefreshExpiryGauges();
  return tls;
}

std::shared_ptr<const TlsContext> TlsContext::CreateClient(
    const config::v1::UpstreamTlsContext& proto, const network::TransportSocketContext& context,
    const std::string& path, config::ConfigErrors& errors) {
  std::shared_ptr<TlsContext> tls(new TlsContext());
  tls->description_ = absl::StrCat("cluster ", context.stat_name);
  const auto& common = proto.common_tls_context();
  std::string cpath = path + ".common_tls_context";
  if (!tls->ConfigureCommon(common, /*server=*/false, context, cpath, errors)) return nullptr;
  SSL_CTX* ctx = tls->ctx_.get();
  tls->sni_ = proto.sni();
  bool has_validation = common.has_validation_context() ||
                        common.has_validation_context_sds_secret_config() ||
                        common.has_combined_validation_context();
  bool has_trusted_ca =
      (common.has_validation_context() && common.validation_context().has_trusted_ca()) ||
      common.has_validation_context_sds_secret_config() || common.has_combined_validation_context();
  if (proto.insecure_skip_verify()) {
    if (has_validation) {
      errors.Add(path + ".insecure_skip_verify", "contradicts the validation context given");
      return nullptr;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  } else {
    if (!has_trusted_ca) SSL_CTX_set_default_verify_paths(ctx);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, VerifyCallback);
    // Without SAN matchers the certificate must at least be for the name we asked for.
    tls->verify_host_ = tls->san_matchers_.empty() && !tls->sni_.empty();
  }
  const std::vector<std::string> alpn =
      common.alpn_protocols().empty() ? context.default_alpn
                                      : std::vector<std::string>(common.alpn_protocols().begin(),
                                                                 common.alpn_protocols().end());
  if (!alpn.empty()) {
    std::vector<unsigned char> wire;
    for (const std::string& protocol : alpn) {
      wire.push_back(static_cast<unsigned char>(protocol.size()));
      wire.insert(wire.end(), protocol.begin(), protocol.end());
    }
    SSL_CTX_set_alpn_protos(ctx, wire.data(), wire.size());
  }
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, NewSessionCallback);
  if (context.stats != nullptr) {
    tls->stats_ = std::make_unique<TlsStats>(StatsScope(*context.stats, "cluster.")
                                                 .Labelled("cluster_name", context.stat_name)
                                                 .Nested("tls"));
  }
  tls->fingerprint_ = Sha256Hex(tls->fingerprint_);
  tls->RefreshExpiryGauges();
  return tls;
}

bool TlsContext::MatchesSubjectAltNames(X509* cert) const {
  if (san_matchers_.empty()) return true;
  GENERAL_NAMES* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  bool matched = false;
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names) && !matched; ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    const ASN1_STRING* value = nullptr;
    switch (name->type) {
      case GEN_DNS:
        value = name->d.dNSName;
        break;
      case GEN_URI:
        value = name->d.uniformResourceIdentifier;
        break;
      case GEN_EMAIL:
        value = name->d.rfc822Name;
        break;
      default:
        continue;  // IP SANs are matched as text below only when printable; skip others.
    }
    std::string_view text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                          ASN1_STRING_length(value));
    for (const SanMatcher& matcher : san_matchers_) {
      if (matcher.type == name->type && matcher.matcher->Match(text)) {
        matched = true;
        break;
      }
    }
  }
  GENERAL_NAMES_free(names);
  return matched;
}

void TlsContext::CountFailure(HandshakeFailure failure) const {
  if (stats_ == nullptr) return;
  switch (failure) {
    case HandshakeFailure::kNoCertificate:
      stats_->fail_no_certificate.Inc();
      break;
    case HandshakeFailure::kUnknownCa:
      stats_->fail_unknown_ca.Inc();
      break;
    case HandshakeFailure::kBadCertificate:
      stats_->fail_bad_certificate.Inc();
      break;
    case HandshakeFailure::kSanMismatch:
      stats_->fail_san_mismatch.Inc();
      break;
    case HandshakeFailure::kVersion:
      stats_->fail_version.Inc();
      break;
    case HandshakeFailure::kCipher:
      stats_->fail_cipher.Inc();
      break;
    case HandshakeFailure::kTimeout:
      stats_->fail_timeout.Inc();
      break;
    case HandshakeFailure::kPlaintext:
      stats_->fail_plaintext.Inc();
      break;
    case HandshakeFailure::kProtocol:
      stats_->fail_protocol.Inc();
      break;
    case HandshakeFailure::kOther:
      stats_->fail_other.Inc();
      break;
    case HandshakeFailure::kExpiredCertificate:
      stats_->fail_expired_certificate.Inc();
      break;
  }
}

void TlsContext::SaveSession(SSL_SESSION* session) const {
  absl::MutexLock lock(&session_mu_);
  last_session_.reset(session);
}

SslSessionPtr TlsContext::LastSession() const {
  absl::MutexLock lock(&session_mu_);
  if (last_session_ == nullptr) return nullptr;
  SSL_SESSION_up_ref(last_session_.get());
  return SslSessionPtr(last_session_.get());
}

void TlsContext::RefreshExpiryGauges() const {
  if (stats_ == nullptr) return;
  time_t now = time(nullptr);
  for (const CertificateInfo& info : certificates_) {
    int64_t seconds = static_cast<int64_t>(info.not_after - now);
    if (info.key_type.rfind("RSA", 0) == 0) {
      stats_->rsa_cert_expires_in_seconds.Set(seconds);
    } else if (info.key_type.rfind("ECDSA", 0) == 0) {
      stats_->ecdsa_cert_expires_in_seconds.Set(seconds);
    }
  }
}

bool TlsContext::HasExpiredCertificate(time_t now) const {
  for (const CertificateInfo& info : certificates_) {
    if (now > info.not_after) return true;
  }
  return false;
}

void TlsContext::WarnExpiredCertificate(time_t now) const {
  time_t last = last_expiry_warning_.load(std::memory_order_relaxed);
  if (now - last < 60 ||
      !last_expiry_warning_.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
    return;
  }
  for (const CertificateInfo& info : certificates_) {
    if (now <= info.not_after) continue;
    PHX_LOG(kWarn, "tls: ", description_, ": refusing handshakes: our certificate ", info.subject,
            " (serial ", info.serial, ", from ", info.source, ") expired ", now - info.not_after,
            "s ago; replace it");
  }
}

int ExpiredCertificateIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int RefusedPeerIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

}  // namespace phoenix::tls
