#pragma once

#include <llhttp.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/container/inlined_vector.h"
#include "source/common/free_list.h"
#include "source/http/codec.h"
#include "source/network/connection.h"

namespace phoenix::http {

// llhttp plumbing shared by both directions: accumulates header fields, enforces size and
// count limits, validates field values, strips connection-specific headers.
class Http1Parser {
 protected:
  friend struct Http1ParserCallbacks;  // The llhttp C callbacks.

  Http1Parser(llhttp_type_t type, const CodecLimits& limits);
  virtual ~Http1Parser() = default;

  // llhttp callbacks. Return 0 to continue, -1 to fail (error_status_ says how).
  virtual int OnMessageBegin() { return 0; }
  virtual int OnUrl(const char* at, size_t length) { return 0; }
  virtual int OnStatus(const char* at, size_t length) { return 0; }
  virtual int OnHeadersComplete() = 0;
  virtual int OnBody(const char* at, size_t length) = 0;
  virtual int OnMessageComplete() = 0;

  int OnHeaderField(const char* at, size_t length);
  int OnHeaderValue(const char* at, size_t length);
  int OnHeaderValueComplete();
  // `details` must be a string literal.
  int Fail(int status, const char* details);
  // The Host fields of a request head, which TakeHeaders() keeps out of the map.
  struct HostFields {
    size_t count = 0;
    std::string_view first;  // Valid until the head state is reset.
  };
  // Moves the collected fields into `out` (names lowercased, one arena allocation), dropping
  // hop-by-hop ones and those named in Connection. Content-Length is kept: it is end-to-end
  // framing information. With `hosts`, Host fields are counted there instead of added.
  void TakeHeaders(HeaderMap& out, HostFields* hosts);
  void ResetMessage();
  bool CountBytes(size_t length);
  // Runs llhttp on `data`; a head still incomplete afterwards copies what it holds of
  // `data`, whose bytes are gone once this returns.
  llhttp_errno_t ParseChunk(const char* data, size_t length);
  // The value of the head's first Upgrade field ("" if none); call before TakeHeaders().
  std::string_view UpgradeField() const;

  static const llhttp_settings_t* Settings();

  // The head (or trailer block) being parsed. Target, names and values are views into the
  // bytes being parsed: a head that arrives in one read is never copied piece by piece;
  // ParseChunk() moves what is left into `spill` when a read ends mid-head. Part of the
  // codec, which an idle keep-alive connection does not keep, so it costs an idle
  // connection nothing and a request no allocation.
  struct HeadState {
    enum class Piece { kNone, kUrl, kField, kValue };
    struct Field {
      std::string_view name;  // As received (not lowercased yet).
      std::string_view value;
    };
    absl::InlinedVector<Field, 16> fields;
    std::string_view url;
    std::string_view field;     // The current field's name.
    std::string_view value;     // The current field's value.
    Piece open = Piece::kNone;  // Which piece llhttp's next span of the same kind extends.
    HeaderArena spill;

    // llhttp hands a piece over as one span, or as several when it crosses reads.
    void Extend(Piece kind, std::string_view& piece, std::string_view span) {
      piece = open == kind && !piece.empty() ? spill.Join({piece, span}) : span;
      open = kind;
    }
    // Copies every piece that lies in [begin, end) into `spill`.
    void Spill(const char* begin, const char* end);
    // Ready for the next head.
    void Reset();
  };

  llhttp_t parser_;
  const CodecLimits& limits_;
  HeadState head_;
  size_t header_bytes_ = 0;
  bool in_trailers_ = false;
  int error_status_ = 400;
  const char* error_details_ = nullptr;
};

// HTTP/1.1 server side of a downstream connection: one stream at a time, so the codec is
// also that stream's encoder. Pipelined requests are held back until the response to the
// current one is complete.
class Http1ServerCodec : public Http1Parser,
                         public ServerConnection,
                         public ResponseEncoder,
                         public Stream {
 public:
  PHX_FREE_LIST_ALLOCATED(Http1ServerCodec)

  Http1ServerCodec(network::Connection& connection, ServerConnectionCallbacks& callbacks,
                   const CodecLimits& limits);

  // ServerConnection
  Protocol protocol() const override {
    return http_minor_ == 0 ? Protocol::kHttp10 : Protocol::kHttp11;
  }
  void Dispatch(const char* data, size_t length) override;
  void ResumeDispatch() override;
  void Shutdown() override { keep_alive_ = false; }
  bool keep_alive() const override { return keep_alive_; }
  bool idle() const override { return !in_message_ && pending_.empty(); }
  bool discardable() const override { return idle() && !failed_ && decoder_ == nullptr; }
  void SendLocalError(int status) override;

  // ResponseEncoder
  void EncodeHeaders(const ResponseHeaders& headers, bool end_stream) override;
  void EncodeData(std::string_view data, bool end_stream) override;
  void EncodeTrailers(const HeaderMap& trailers) override;
  Stream& stream() override { return *this; }

  // Stream
  void SetCallbacks(StreamCallbacks* callbacks) override {}
  // HTTP/1 cannot reset one exchange: the connection takes no more requests.
  void ResetStream() override;
  void ReadDisable(bool disable) override { connection_.ReadDisable(disable); }

  bool response_started() const { return response_started_; }
  bool response_complete() const { return response_complete_; }

 private:
  int OnMessageBegin() override;
  int OnUrl(const char* at, size_t length) override;
  int OnHeadersComplete() override;
  int OnBody(const char* at, size_t length) override;
  int OnMessageComplete() override;
  void Execute(const char* data, size_t length);
  // Checks the head's bytes as they come, before llhttp: an error description for an
  // obs-fold or a bare LF, else null.
  const char* ScanHead(const char* data, size_t length);
  void ResponseComplete();
  bool SplitTarget(RequestHeaders& request);
  // Whether the head being completed asks for a WebSocket upgrade this codec can carry
  // (RFC 6455 4.1): GET over HTTP/1.1, "Upgrade: websocket", "Connection: upgrade", no body.
  bool IsWebSocketUpgrade() const;
  // The current stream's held bytes (and all that follow) belong to the new protocol now.
  void StartTunnel();
  // The request is malformed: answer `status` unless a response is under way, then report.
  void ProtocolError(int status, std::string_view details);

  network::Connection& connection_;
  ServerConnectionCallbacks& callbacks_;
  RequestDecoder* decoder_ = nullptr;  // The current stream's, until its response is done.
  std::string pending_;  // Bytes after a complete request, parsed once its response is done.
  bool paused_ = false;
  bool in_message_ = false;
  bool request_complete_ = false;
  bool request_has_body_ = false;
  bool head_request_ = false;
  int http_minor_ = 1;
  bool response_started_ = false;
  bool response_complete_ = false;
  bool response_chunked_ = false;
  bool response_has_body_ = true;
  bool keep_alive_ = true;
  bool failed_ = false;
  bool head_scan_done_ = false;
  bool last_was_lf_ = false;
  bool last_was_cr_ = false;  // The previous chunk of the head ended with CR.
  // The current request asks to switch to this protocol ("websocket"); its response decides:
  // 101 starts the tunnel, anything else closes the connection after it.
  std::string upgrade_;
  // After a 101: the client's bytes are passed on raw as request data, the response's are
  // written raw, until either side ends the stream.
  bool tunnel_ = false;
};

// Serves a listener's connections with HTTP/1.1.
class Http1ServerCodecFactory : public ServerCodecFactory {
 public:
  explicit Http1ServerCodecFactory(const CodecLimits& limits) : limits_(limits) {}
  std::unique_ptr<ServerConnection> Create(network::Connection& connection,
                                           ServerConnectionCallbacks& callbacks) const override {
    return std::make_unique<Http1ServerCodec>(connection, callbacks, limits_);
  }

 private:
  CodecLimits limits_;
};

// HTTP/1.1 client side of an upstream connection: one request at a time, so the codec is
// also that stream's encoder.
class Http1ClientCodec : public Http1Parser,
                         public ClientConnection,
                         public RequestEncoder,
                         public Stream {
 public:
  Http1ClientCodec(network::Connection& connection, ClientConnectionCallbacks& callbacks);

  // ClientConnection
  Protocol protocol() const override { return Protocol::kHttp11; }
  RequestEncoder& NewStream(ResponseDecoder& decoder) override;
  void Dispatch(const char* data, size_t length) override;
  bool OnConnectionClosed() override;
  bool reusable() const override {
    return response_complete_ && request_complete_ && keep_alive_ && !tunnel_;
  }
  bool requests_complete() const override { return request_complete_; }

  // RequestEncoder
  void EncodeHeaders(const RequestHeaders& headers, bool end_stream) override;
  void EncodeData(std::string_view data, bool end_stream) override;
  void EncodeTrailers(const HeaderMap& trailers) override;
  Stream& stream() override { return *this; }

  // Stream: HTTP/1 resets an exchange by closing the connection.
  void SetCallbacks(StreamCallbacks* callbacks) override {}
  void ResetStream() override {
    keep_alive_ = false;
    connection_.Close();
  }
  void ReadDisable(bool disable) override { connection_.ReadDisable(disable); }

  bool response_complete() const { return response_complete_; }

 private:
  int OnStatus(const char* at, size_t length) override { return 0; }
  int OnHeadersComplete() override;
  int OnBody(const char* at, size_t length) override;
  int OnMessageComplete() override;
  // The response is complete (before its decoder hears the end, so a pool that takes the
  // connection back sees it reusable).
  void EndResponse();
  // Passes what follows the 101's head in `data` (llhttp stopped at it) on as data.
  void PassTunnelRest(const char* data, size_t length);

  network::Connection& connection_;
  ClientConnectionCallbacks& callbacks_;
  ResponseDecoder* decoder_ = nullptr;
  bool head_request_ = false;
  bool request_chunked_ = false;
  bool request_complete_ = false;
  bool response_complete_ = false;
  bool informational_ = false;
  bool keep_alive_ = true;
  bool errored_ = false;
  // The request asked for an upgrade (RequestHeaders::upgrade); a 101 to it starts the tunnel:
  // from then on every byte either way is data, and the connection is never reused.
  bool upgrade_request_ = false;
  std::string upgrade_type_;
  bool tunnel_ = false;
};

}  // namespace phoenix::http
