#include "source/tls/ssl_socket.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "source/common/free_list.h"
#include "source/common/logging.h"
#include "source/network/transport_socket_registry.h"

namespace phoenix::tls {

// The BIO under every SslSocket: reads come from the bytes the connection is handing in,
// writes go straight to the connection.
struct SslSocketBio {
  static int Read(BIO* bio, char* out, int length) {
    auto* socket = static_cast<SslSocket*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    if (socket->input_length_ == 0) {
      BIO_set_retry_read(bio);
      return -1;
    }
    size_t n = std::min(static_cast<size_t>(length), socket->input_length_);
    memcpy(out, socket->input_, n);
    socket->input_ += n;
    socket->input_length_ -= n;
    return static_cast<int>(n);
  }

  static int Write(BIO* bio, const char* data, int length) {
    auto* socket = static_cast<SslSocket*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    std::string_view bytes(data, static_cast<size_t>(length));
    socket->wrote_to_socket_ = true;
    socket->callbacks_->WriteToSocket(&bytes, 1);
    return length;
  }

  static long Control(BIO*, int command, long, void*) { return command == BIO_CTRL_FLUSH ? 1 : 0; }

  static BIO_METHOD* Method() {
    static BIO_METHOD* method = [] {
      BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "phoenix");
      BIO_meth_set_read(m, Read);
      BIO_meth_set_write(m, Write);
      BIO_meth_set_ctrl(m, Control);
      return m;
    }();
    return method;
  }
};

namespace {

// Plaintext decrypted from one batch of socket bytes is handed on in one piece when it fits.
constexpr size_t kPlaintextBufferBytes = 96 * 1024;
constexpr size_t kMaxRecordBytes = 16 * 1024;
thread_local char plaintext_buffer[kPlaintextBufferBytes];
// Plaintext held past this is sealed at once rather than at the end of the iteration.
constexpr size_t kSealNowBytes = 4 * kMaxRecordBytes;

constexpr char kPlaintextToTlsPortResponse[] =
    "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 39\r\n"
    "connection: close\r\n\r\nThis port speaks HTTPS, not plain HTTP.\n";
// A fatal unexpected_message alert, for bytes that OpenSSL gave up on without a word.
constexpr char kUnexpectedMessageAlert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x0a};

HandshakeFailure Classify(SSL* ssl, unsigned long error) {
  if (SSL_get_ex_data(ssl, ExpiredCertificateIndex()) != nullptr) {
    return HandshakeFailure::kExpiredCertificate;
  }
  if (ERR_GET_LIB(error) != ERR_LIB_SSL) return HandshakeFailure::kOther;
  switch (ERR_GET_REASON(error)) {
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
      return HandshakeFailure::kPlaintext;
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      return HandshakeFailure::kNoCertificate;
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
      return HandshakeFailure::kUnknownCa;
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
      return HandshakeFailure::kBadCertificate;
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
      switch (SSL_get_verify_result(ssl)) {
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
          return HandshakeFailure::kUnknownCa;
        case X509_V_ERR_APPLICATION_VERIFICATION:
        case X509_V_ERR_HOSTNAME_MISMATCH:
          return HandshakeFailure::kSanMismatch;
        default:
          return HandshakeFailure::kBadCertificate;
      }
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_WRONG_SSL_VERSION:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_VERSION_TOO_HIGH:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
      return HandshakeFailure::kVersion;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_GROUPS:
    case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
    case SSL_R_NO_CIPHERS_AVAILABLE:
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
      return HandshakeFailure::kCipher;
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_UNKNOWN_PROTOCOL:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_RECORD_LENGTH_MISMATCH:
    case SSL_R_LENGTH_MISMATCH:
    case SSL_R_UNEXPECTED_MESSAGE:
    case SSL_R_UNEXPECTED_RECORD:
    case SSL_R_BAD_PACKET_LENGTH:
      return HandshakeFailure::kProtocol;
    default:
      return HandshakeFailure::kOther;
  }
}

const char* Describe(HandshakeFailure failure) {
  switch (failure) {
    case HandshakeFailure::kNoCertificate:
      return "no client certificate";
    case HandshakeFailure::kUnknownCa:
      return "certificate from an unknown CA";
    case HandshakeFailure::kBadCertificate:
      return "bad certificate";
    case HandshakeFailure::kSanMismatch:
      return "certificate SAN not allowed";
    case HandshakeFailure::kVersion:
      return "no common TLS version";
    case HandshakeFailure::kCipher:
      return "no common cipher";
    case HandshakeFailure::kTimeout:
      return "handshake timed out";
    case HandshakeFailure::kPlaintext:
      return "plain HTTP sent to a TLS port";
    case HandshakeFailure::kProtocol:
      return "not TLS";
    case HandshakeFailure::kOther:
      return "handshake failed";
    case HandshakeFailure::kExpiredCertificate:
      return "our own certificate has expired";
  }
  return "handshake failed";
}

// Refusals of certificates are what security teams look for; noise from scanners is not.
bool IsCertificateRefusal(HandshakeFailure failure) {
  return failure == HandshakeFailure::kNoCertificate || failure == HandshakeFailure::kUnknownCa ||
         failure == HandshakeFailure::kBadCertificate || failure == HandshakeFailure::kSanMismatch;
}

}  // namespace

SslSocket::SslSocket(std::shared_ptr<const TlsContext> context) : context_(std::move(context)) {}

SslSocket::~SslSocket() {
  if (destroyed_ != nullptr) *destroyed_ = true;
}

void SslSocket::SetCallbacks(network::TransportSocketCallbacks* callbacks) {
  callbacks_ = callbacks;
  ssl_.reset(SSL_new(context_->ssl_ctx()));
  BIO* bio = BIO_new(SslSocketBio::Method());
  BIO_set_data(bio, this);
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl_.get(), bio, bio);
  SSL_set_ex_data(ssl_.get(), RefusedPeerIndex(), &refused_peer_);
  if (context_->is_server()) {
    SSL_set_accept_state(ssl_.get());
    return;
  }
  SSL_set_connect_state(ssl_.get());
  if (!context_->sni().empty()) {
    SSL_set_tlsext_host_name(ssl_.get(), context_->sni().c_str());
    if (context_->verify_host()) SSL_set1_host(ssl_.get(), context_->sni().c_str());
  }
  // A session made with a client certificate that has since expired is not offered: the
  // full handshake then refuses to show that certificate.
  SslSessionPtr session = context_->LastSession();
  if (session != nullptr && !context_->HasExpiredCertificate(time(nullptr))) {
    SSL_set_session(ssl_.get(), session.get());
  }
}

void SslSocket::OnConnected() {
  bool destroyed = false;
  destroyed_ = &destroyed;
  Handshake(destroyed);
  if (!destroyed) destroyed_ = nullptr;
}

void SslSocket::OnSocketData(const char* data, size_t length) {
  if (failed_) return;
  bool destroyed = false;
  destroyed_ = &destroyed;
  input_ = data;
  input_length_ = length;
  if (handshake_done_ || Handshake(destroyed)) ReadPlaintext(destroyed);
  if (destroyed) return;
  destroyed_ = nullptr;
  input_ = nullptr;
  input_length_ = 0;
}

bool SslSocket::Handshake(const bool& destroyed) {
  ERR_clear_error();
  int rc = SSL_do_handshake(ssl_.get());
  if (rc == 1) {
    OnHandshakeDone();
    return !destroyed && !failed_;
  }
  int error = SSL_get_error(ssl_.get(), rc);
  if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) return false;
  Fail("handshake");
  return false;
}

void SslSocket::OnHandshakeDone() {
  handshake_done_ = true;
  if (TlsStats* stats = context_->stats()) {
    stats->handshake.Inc();
    if (SSL_session_reused(ssl_.get())) stats->session_reused.Inc();
  }
  DescribeSession(ssl_.get(), context_->local_uri_san(), &info_);
  Flush();  // What was written before the handshake finished.
  callbacks_->RaiseEvent(network::ConnectionEvent::kConnected);
}

void SslSocket::ReadPlaintext(const bool& destroyed) {
  size_t filled = 0;
  while (true) {
    if (kPlaintextBufferBytes - filled < kMaxRecordBytes) {
      callbacks_->OnPlaintext(plaintext_buffer, filled);
      if (destroyed || failed_) return;
      filled = 0;
    }
    ERR_clear_error();
    int n = SSL_read(ssl_.get(), plaintext_buffer + filled,
                     static_cast<int>(kPlaintextBufferBytes - filled));
    if (n > 0) {
      filled += static_cast<size_t>(n);
      continue;
    }
    int error = SSL_get_error(ssl_.get(), n);
    if (filled > 0) {
      callbacks_->OnPlaintext(plaintext_buffer, filled);
      if (destroyed || failed_) return;
    }
    if (error == SSL_ERROR_WANT_READ) return;
    if (error == SSL_ERROR_ZERO_RETURN) {  // close_notify: the peer is done.
      failed_ = true;
      callbacks_->RaiseEvent(network::ConnectionEvent::kRemoteClose);
      return;
    }
    Fail("read");
    return;
  }
}

void SslSocket::Fail(const char* where) {
  failed_ = true;
  unsigned long error = ERR_peek_last_error();
  char reason[256] = "";
  if (error != 0) ERR_error_string_n(error, reason, sizeof(reason));
  ERR_clear_error();
  if (!handshake_done_) {
    HandshakeFailure failure = Classify(ssl_.get(), error);
    context_->CountFailure(failure);
    std::string detail = reason;
    if (failure == HandshakeFailure::kSanMismatch || failure == HandshakeFailure::kUnknownCa ||
        failure == HandshakeFailure::kBadCertificate) {
      long verify = SSL_get_verify_result(ssl_.get());
      if (verify != X509_V_OK) detail = X509_verify_cert_error_string(verify);
      if (verify == X509_V_ERR_APPLICATION_VERIFICATION) detail = "no SAN on the allow-list";
      if (!refused_peer_.empty()) absl::StrAppend(&detail, "; peer ", refused_peer_);
    }
    bool peer_alert =
        ERR_GET_LIB(error) == ERR_LIB_SSL && ERR_GET_REASON(error) >= SSL_AD_REASON_OFFSET;
    if (peer_alert) {
      PHX_LOG(kWarn, "tls: ", context_->description(), ": ", callbacks_->peer_address(),
              " refused the handshake (", reason, ")");
    } else if (IsCertificateRefusal(failure)) {
      PHX_LOG(kWarn, "tls: ", context_->description(), ": refused ", callbacks_->peer_address(),
              ": ", Describe(failure), " (", detail, ")");
    } else {
      PHX_LOG(kDebug, "tls: ", context_->description(), ": ", callbacks_->peer_address(), ": ",
              Describe(failure), " (", detail, ")");
    }
    if (failure == HandshakeFailure::kPlaintext) {
      std::string_view response = kPlaintextToTlsPortResponse;
      callbacks_->WriteToSocket(&response, 1);
    } else if (!wrote_to_socket_) {
      std::string_view alert(kUnexpectedMessageAlert, sizeof(kUnexpectedMessageAlert));
      callbacks_->WriteToSocket(&alert, 1);
    }
  } else {
    PHX_LOG(kDebug, "tls: ", context_->description(), ": ", callbacks_->peer_address(), ": ", where,
            " failed (", reason, ")");
  }
  callbacks_->RaiseEvent(network::ConnectionEvent::kRemoteClose);
}

void SslSocket::Write(const std::string_view* slices, size_t count) {
  if (failed_) return;
  if (outgoing_.empty()) outgoing_ = BufferPool::Acquire();
  for (size_t i = 0; i < count; ++i) outgoing_.append(slices[i]);
  // Sealed at the end of the iteration (Flush), or now once it makes several full records.
  if (handshake_done_ && outgoing_.size() >= kSealNowBytes) Flush();
}

void SslSocket::Flush() {
  if (outgoing_.empty() || !handshake_done_) return;  // Held until there are keys.
  std::string plaintext = std::move(outgoing_);
  outgoing_ = std::string();
  if (!failed_) WritePlaintext(plaintext.data(), plaintext.size());
  BufferPool::Release(std::move(plaintext));
}

void SslSocket::WritePlaintext(const char* data, size_t length) {
  if (length == 0) return;
  ERR_clear_error();
  size_t written = 0;
  if (SSL_write_ex(ssl_.get(), data, length, &written) != 1) {
    failed_ = true;
    ERR_clear_error();
  }
}

void SslSocket::OnCleanClose() {
  if (!handshake_done_ || failed_) return;
  ERR_clear_error();
  SSL_shutdown(ssl_.get());  // Sends close_notify; we do not wait for the peer's.
  ERR_clear_error();
}

void SslSocket::OnConnectTimeout() {
  if (handshake_done_ || failed_) return;
  failed_ = true;
  context_->CountFailure(HandshakeFailure::kTimeout);
  PHX_LOG(kDebug, "tls: ", context_->description(), ": ", callbacks_->peer_address(), ": ",
          Describe(HandshakeFailure::kTimeout));
}

std::string_view SslSocket::ApplicationProtocol() const {
  const unsigned char* protocol = nullptr;
  unsigned int length = 0;
  if (ssl_ != nullptr) SSL_get0_alpn_selected(ssl_.get(), &protocol, &length);
  return std::string_view(reinterpret_cast<const char*>(protocol), length);
}

namespace {

// The factory for `typed_config`, which must hold a `Proto`: a listener's (where) or a
// cluster's TLS context, compiled by `create`.
template <typename Proto, typename Create>
network::TransportSocketFactoryPtr BuildFactory(const google::protobuf::Any& typed_config,
                                                const network::TransportSocketContext& context,
                                                const char* where, Create create,
                                                const std::string& path,
                                                config::ConfigErrors& errors) {
  Proto proto;
  if (!typed_config.Is<Proto>() || !typed_config.UnpackTo(&proto)) {
    errors.Add(path, absl::StrCat(SslSocket::kName, " on a ", where, " takes typed_config of type ",
                                  Proto::descriptor()->full_name()));
    return nullptr;
  }
  std::shared_ptr<const TlsContext> tls = create(proto, context, path, errors);
  if (tls == nullptr) return nullptr;
  return std::make_shared<SslSocketFactory>(std::move(tls));
}

}  // namespace

void RegisterTlsTransportSocket() {
  network::TransportSocketRegistry::Register(
      SslSocket::kName,
      [](const google::protobuf::Any& typed_config, const network::TransportSocketContext& context,
         const std::string& path, config::ConfigErrors& errors) {
        if (context.side == network::TransportSocketSide::kDownstream) {
          return BuildFactory<config::v1::DownstreamTlsContext>(
              typed_config, context, "listener", &TlsContext::CreateServer, path, errors);
        }
        return BuildFactory<config::v1::UpstreamTlsContext>(
            typed_config, context, "cluster", &TlsContext::CreateClient, path, errors);
      });
}

}  // namespace phoenix::tls
