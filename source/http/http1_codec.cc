#include "source/http/http1_codec.h"

#include <cstring>

#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/types/span.h"
#include "source/common/strings.h"

namespace phoenix::http {
namespace {

Http1Parser* From(llhttp_t* parser) { return static_cast<Http1Parser*>(parser->data); }

// llhttp's name of `method`, with its length known for the common ones (no strlen).
std::string_view MethodName(uint8_t method) {
  switch (method) {
    case HTTP_GET:
      return "GET";
    case HTTP_POST:
      return "POST";
    case HTTP_HEAD:
      return "HEAD";
    case HTTP_PUT:
      return "PUT";
    default:
      return llhttp_method_name(static_cast<llhttp_method_t>(method));
  }
}

// Whether `text` is `lowercase` in any case (ASCII), for literals of at most 16 characters.
bool EqualsLowercase(std::string_view text, std::string_view lowercase) {
  char lower[16];
  if (text.size() != lowercase.size() || text.size() > sizeof(lower)) return false;
  if (text == lowercase) return true;  // Usually sent in lowercase already.
  CopyLowercase(text.data(), text.size(), lower);
  return std::string_view(lower, text.size()) == lowercase;
}

inline std::string_view TrimOws(std::string_view s) {
  // Most values start and end with a visible character: nothing to trim.
  auto visible = [](char c) { return static_cast<unsigned char>(c) > ' '; };
  if (!s.empty() && visible(s.front()) && visible(s.back())) return s;
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

// A head (or a trailer block) serialized into one per-thread buffer and written with one
// Connection::Write.
// The size is known before the first byte is copied, so each piece is a plain memcpy.
class HeadWriter {
 public:
  // `max_size` bounds the bytes that will be added.
  explicit HeadWriter(size_t max_size) : begin_(Buffer(max_size)), p_(begin_) {}
  void Add(std::string_view piece) {
    CopyBytes(p_, piece.data(), piece.size());
    p_ += piece.size();
  }
  void AddHeaders(const HeaderMap& headers) {
    for (const auto& [name, value] : headers) {
      CopyBytes(p_, name.data(), name.size());
      p_ += name.size();
      std::memcpy(p_, ": ", 2);
      p_ += 2;
      CopyBytes(p_, value.data(), value.size());
      p_ += value.size();
      std::memcpy(p_, "\r\n", 2);
      p_ += 2;
    }
  }
  // What AddHeaders() adds.
  static size_t HeadersSize(const HeaderMap& headers) {
    size_t size = 0;
    for (const auto& [name, value] : headers) size += name.size() + value.size() + 4;
    return size;
  }
  // Ends the head and writes it.
  void Finish(network::Connection& connection) {
    std::memcpy(p_, "\r\n", 2);
    p_ += 2;
    connection.Write(std::string_view(begin_, p_ - begin_));
  }

 private:
  static char* Buffer(size_t size) {
    struct Scratch {
      std::unique_ptr<char[]> data;
      size_t capacity = 0;
    };
    thread_local Scratch scratch;
    size += 2;  // The blank line.
    if (size > scratch.capacity) {
      scratch.capacity = std::max<size_t>(size, 4096);
      scratch.data = std::make_unique<char[]>(scratch.capacity);
    }
    return scratch.data.get();
  }

  char* begin_;
  char* p_;
};

// "HTTP/1.1 200 OK\r\n" for the common statuses without formatting, else built in `buffer`.
std::string_view StatusLine(int status, char (&buffer)[64]) {
  switch (status) {
    case 200:
      return "HTTP/1.1 200 OK\r\n";
    case 204:
      return "HTTP/1.1 204 No Content\r\n";
    case 304:
      return "HTTP/1.1 304 Not Modified\r\n";
    case 404:
      return "HTTP/1.1 404 Not Found\r\n";
    default: {
      std::string_view reason = ReasonPhrase(status);
      int n = snprintf(buffer, sizeof(buffer), "HTTP/1.1 %d %.*s\r\n", status,
                       static_cast<int>(reason.size()), reason.data());
      return std::string_view(buffer, std::min<size_t>(n, sizeof(buffer) - 1));
    }
  }
}

// Writes a body piece, chunk-framed if `chunked`; `end_stream` closes a chunked body.
void WriteBody(network::Connection& connection, bool chunked, std::string_view data,
               bool end_stream) {
  if (!chunked) {
    if (!data.empty()) connection.Write(data);
    return;
  }
  if (data.empty()) {
    if (end_stream) connection.Write("0\r\n\r\n");
    return;
  }
  char size_line[24];
  int n = snprintf(size_line, sizeof(size_line), "%zx\r\n", data.size());
  std::string_view slices[] = {std::string_view(size_line, n), data,
                               end_stream ? "\r\n0\r\n\r\n" : "\r\n"};
  connection.Write(slices, 3);
}

// The last chunk of a chunked body, carrying trailers.
void WriteTrailers(network::Connection& connection, const HeaderMap& trailers) {
  constexpr std::string_view kLastChunk = "0\r\n";
  HeadWriter out(kLastChunk.size() + HeadWriter::HeadersSize(trailers));
  out.Add(kLastChunk);
  out.AddHeaders(trailers);
  out.Finish(connection);
}

// Removes from `headers` the fields that the Connection values name (RFC 9110 7.6.1). The
// hop-by-hop ones are gone already, and the common values name nothing else.
void DropFieldsNamedByConnection(absl::Span<const std::string_view> connection_values,
                                 HeaderMap& headers) {
  absl::InlinedVector<std::string_view, 4> named;
  for (std::string_view connection : connection_values) {
    if (EqualsLowercase(connection, "keep-alive") || EqualsLowercase(connection, "close")) {
      continue;
    }
    for (absl::string_view token : absl::StrSplit(AbslView(connection), ',')) {
      std::string_view t = TrimOws(StdView(token));
      if (t.empty() || EqualsLowercase(t, "close")) continue;  // Names no field.
      if (t.size() <= 17) {  // The longest well-known name: lowercase it to classify it.
        char lower[17];
        CopyLowercase(t.data(), t.size(), lower);
        if (IsHopByHop(ClassifyHeader(std::string_view(lower, t.size())))) continue;
      }
      named.push_back(t);
    }
  }
  if (named.empty()) return;
  headers.RemoveIf([&](std::string_view name) {
    for (std::string_view n : named) {
      if (absl::EqualsIgnoreCase(AbslView(n), AbslView(name))) return true;
    }
    return false;
  });
}

const CodecLimits& UpstreamLimits() {
  static const CodecLimits limits{.max_request_headers_bytes = 96 * 1024,
                                  .max_headers_count = 200,
                                  .max_request_uri_bytes = 96 * 1024};
  return limits;
}

}  // namespace

// The llhttp callback table lives in a class static so the callbacks can reach the
// protected handlers.
struct Http1ParserCallbacks {
  static int MessageBegin(llhttp_t* p) { return Access(p)->OnMessageBegin(); }
  static int Url(llhttp_t* p, const char* at, size_t n) { return Access(p)->OnUrl(at, n); }
  static int Status(llhttp_t* p, const char* at, size_t n) { return Access(p)->OnStatus(at, n); }
  static int HeaderField(llhttp_t* p, const char* at, size_t n) {
    return Access(p)->OnHeaderField(at, n);
  }
  static int HeaderValue(llhttp_t* p, const char* at, size_t n) {
    return Access(p)->OnHeaderValue(at, n);
  }
  static int HeaderValueComplete(llhttp_t* p) { return Access(p)->OnHeaderValueComplete(); }
  static int HeadersComplete(llhttp_t* p) { return Access(p)->OnHeadersComplete(); }
  static int Body(llhttp_t* p, const char* at, size_t n) { return Access(p)->OnBody(at, n); }
  static int MessageComplete(llhttp_t* p) { return Access(p)->OnMessageComplete(); }

  static Http1Parser* Access(llhttp_t* p) { return From(p); }
};

Http1Parser::Http1Parser(llhttp_type_t type, const CodecLimits& limits) : limits_(limits) {
  llhttp_init(&parser_, type, Settings());
  parser_.data = this;
}

const llhttp_settings_t* Http1Parser::Settings() {
  static const llhttp_settings_t settings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_message_begin = &Http1ParserCallbacks::MessageBegin;
    s.on_url = &Http1ParserCallbacks::Url;
    s.on_status = &Http1ParserCallbacks::Status;
    s.on_header_field = &Http1ParserCallbacks::HeaderField;
    s.on_header_value = &Http1ParserCallbacks::HeaderValue;
    s.on_header_value_complete = &Http1ParserCallbacks::HeaderValueComplete;
    s.on_headers_complete = &Http1ParserCallbacks::HeadersComplete;
    s.on_body = &Http1ParserCallbacks::Body;
    s.on_message_complete = &Http1ParserCallbacks::MessageComplete;
    return s;
  }();
  return &settings;
}

bool Http1Parser::CountBytes(size_t length) {
  header_bytes_ += length;
  return header_bytes_ <= limits_.max_request_headers_bytes;
}

int Http1Parser::Fail(int status, const char* details) {
  error_status_ = status;
  error_details_ = details;
  return -1;
}

int Http1Parser::OnHeaderField(const char* at, size_t length) {
  if (!CountBytes(length)) return Fail(431, "headers too large");
  HeadState& h = head_;
  h.Extend(HeadState::Piece::kField, h.field, std::string_view(at, length));
  return 0;
}

int Http1Parser::OnHeaderValue(const char* at, size_t length) {
  if (!CountBytes(length)) return Fail(431, "headers too large");
  HeadState& h = head_;
  h.Extend(HeadState::Piece::kValue, h.value, std::string_view(at, length));
  return 0;
}

int Http1Parser::OnHeaderValueComplete() {
  HeadState& h = head_;
  std::string_view name = h.field;
  std::string_view value = TrimOws(h.value);
  h.field = h.value = std::string_view();
  h.open = HeadState::Piece::kNone;
  if (name.empty()) return Fail(400, "empty header name");  // llhttp lets ": v" through.
  if (h.fields.size() + 1 > limits_.max_headers_count) return Fail(431, "too many headers");
  if (!IsValidFieldValue(value)) return Fail(400, "invalid header value");
  // llhttp takes an empty Transfer-Encoding as no framing at all, and lets a Content-Length
  // frame the body instead: a parser differential. It names no coding, so it is malformed.
  if (value.empty() && absl::EqualsIgnoreCase(AbslView(name), "transfer-encoding")) {
    return Fail(400, "empty transfer-encoding");
  }
  h.fields.push_back({name, value});
  return 0;
}

void Http1Parser::HeadState::Reset() {
  fields.clear();
  url = field = value = std::string_view();
  open = Piece::kNone;
  spill.Clear();
}

void Http1Parser::HeadState::Spill(const char* begin, const char* end) {
  auto in_chunk = [&](std::string_view piece) {
    auto at = reinterpret_cast<uintptr_t>(piece.data());
    return !piece.empty() && at >= reinterpret_cast<uintptr_t>(begin) &&
           at < reinterpret_cast<uintptr_t>(end);
  };
  auto keep = [&](std::string_view& piece) {
    if (in_chunk(piece)) piece = spill.Copy(piece);
  };
  keep(url);
  keep(field);
  keep(value);
  for (Field& f : fields) {
    keep(f.name);
    keep(f.value);
  }
}

llhttp_errno_t Http1Parser::ParseChunk(const char* data, size_t length) {
  llhttp_errno_t err = llhttp_execute(&parser_, data, length);
  if (err == HPE_OK) head_.Spill(data, data + length);
  return err;
}

std::string_view Http1Parser::UpgradeField() const {
  for (const auto& f : head_.fields) {
    if (EqualsLowercase(f.name, "upgrade")) return f.value;
  }
  return {};
}

void Http1Parser::TakeHeaders(HeaderMap& out, HostFields* hosts) {
  auto& fields = head_.fields;
  size_t bytes = 0;
  for (const auto& f : fields) bytes += f.name.size() + f.value.size();
  char* p = bytes == 0 ? nullptr : out.arena().Allocate(bytes);
  // Connection-specific headers: the hop-by-hop ones, and any that Connection names.
  absl::InlinedVector<std::string_view, 2> connection_values;
  for (const auto& f : fields) {
    CopyLowercase(f.name.data(), f.name.size(), p);
    std::string_view name(p, f.name.size());
    p += name.size();
    WellKnownHeader known = ClassifyHeader(name);
    if (known == WellKnownHeader::kHost && hosts != nullptr) {
      if (hosts->count++ == 0) hosts->first = f.value;
      continue;
    }
    if (known == WellKnownHeader::kConnection) connection_values.push_back(f.value);
    if (IsHopByHop(known)) continue;
    CopyBytes(p, f.value.data(), f.value.size());
    std::string_view value(p, f.value.size());
    p += value.size();
    out.AddStored(name, value, known);
  }
  fields.clear();
  DropFieldsNamedByConnection(connection_values, out);
}

void Http1Parser::ResetMessage() {
  head_.Reset();
  header_bytes_ = 0;
  in_trailers_ = false;
}

// ---------------------------------------------------------------------------------------
// Server codec

std::string_view ProtocolName(Protocol protocol) {
  switch (protocol) {
    case Protocol::kHttp10:
      return "HTTP/1.0";
    case Protocol::kHttp11:
      return "HTTP/1.1";
    case Protocol::kHttp2:
      return "HTTP/2";
  }
  return "HTTP/1.1";
}

Http1ServerCodec::Http1ServerCodec(network::Connection& connection,
                                   ServerConnectionCallbacks& callbacks, const CodecLimits& limits)
    : Http1Parser(HTTP_REQUEST, limits), connection_(connection), callbacks_(callbacks) {}

void Http1ServerCodec::SendLocalError(int status) {
  failed_ = true;
  keep_alive_ = false;
  decoder_ = nullptr;
  if (response_started_) return;
  response_started_ = true;
  // A short generic answer; the details stay in the proxy's own log.
  std::string body = absl::StrCat(AbslView(ReasonPhrase(status)), "\n");
  absl::AsciiStrToLower(&body);
  connection_.Write(absl::StrCat("HTTP/1.1 ", status, " ", AbslView(ReasonPhrase(status)),
                                 "\r\ncontent-type: text/plain\r\ncontent-length: ", body.size(),
                                 "\r\nconnection: close\r\n\r\n", body));
}

void Http1ServerCodec::ProtocolError(int status, std::string_view details) {
  bool answered = !response_started_;
  SendLocalError(status);
  callbacks_.OnProtocolError(status, details, answered);
}

void Http1ServerCodec::ResetStream() {
  failed_ = true;
  keep_alive_ = false;
  decoder_ = nullptr;
}

void Http1ServerCodec::Dispatch(const char* data, size_t length) {
  if (failed_) return;
  if (tunnel_) {
    // After the 101 the client speaks the new protocol: its bytes are the stream's data.
    if (decoder_ != nullptr) decoder_->DecodeData(std::string_view(data, length), false);
    return;
  }
  if (paused_) {
    pending_.append(data, length);
    // A client pipelining far ahead of us is throttled, not buffered without bound.
    if (pending_.size() > 64 * 1024) connection_.ReadDisable(true);
    return;
  }
  Execute(data, length);
}

const char* Http1ServerCodec::ScanHead(const char* data, size_t length) {
  // llhttp joins obs-fold continuation lines silently, and accepts a bare LF as the line that
  // ends the head; RFC 9112 lets a server reject both, and we do: each is a classic
  // request-smuggling ingredient (another parser may split the head elsewhere).
  if (head_scan_done_ || length == 0) return nullptr;
  const char* end = data + length;
  const char* p = data;
  if (last_was_lf_) {
    last_was_lf_ = false;
    if (*p == ' ' || *p == '\t') return "obs-fold in request head";
    if (*p == '\n') return "bare LF in request head";
    if (*p == '\r') {
      head_scan_done_ = true;  // End of the head.
      return nullptr;
    }
  }
  // Each line feed must end a CRLF, and the byte after it must not fold the line.
  while ((p = static_cast<const char*>(memchr(p, '\n', end - p))) != nullptr) {
    bool crlf = p > data ? p[-1] == '\r' : last_was_cr_;
    if (!crlf) return "bare LF in request head";
    if (++p == end) {
      last_was_lf_ = true;
      return nullptr;
    }
    if (*p == ' ' || *p == '\t') return "obs-fold in request head";
    if (*p == '\n') return "bare LF in request head";
    if (*p == '\r') {
      head_scan_done_ = true;
      return nullptr;
    }
  }
  last_was_cr_ = end[-1] == '\r';
  return nullptr;
}

void Http1ServerCodec::Execute(const char* data, size_t length) {
  // The parser stops after every request, so each request's head gets its own obs-fold
  // scan, also when a pipelined one was answered while its bytes were being parsed.
  llhttp_errno_t err;
  while (true) {
    if (const char* malformed = ScanHead(data, length)) {
      ProtocolError(400, malformed);
      return;
    }
    err = ParseChunk(data, length);
    if (err == HPE_OK) return;
    const char* stop = llhttp_get_error_pos(&parser_);
    if (err == HPE_PAUSED_UPGRADE && upgrade_.empty() && !tunnel_) {
      // An upgrade we do not carry was served as a plain request: llhttp stops after it
      // anyway, and the connection goes on with HTTP.
      llhttp_resume_after_upgrade(&parser_);
      length -= stop - data;
      data = stop;
      if (length == 0) return;
      continue;
    }
    if (err != HPE_PAUSED) break;
    if (tunnel_) {
      // Answered 101 while its head was being parsed: the rest is the new protocol's.
      if (decoder_ != nullptr && stop < data + length) {
        decoder_->DecodeData(std::string_view(stop, data + length - stop), false);
      }
      return;
    }
    if (response_complete_ && keep_alive_ && !failed_) {
      // Answered already: go on with the next request at once.
      llhttp_resume(&parser_);
      length -= stop - data;
      data = stop;
      if (length == 0) return;
      continue;
    }
    pending_.assign(stop, data + length - stop);
    paused_ = true;
    return;
  }
  // Our own callbacks set a status (414, 431, ...); llhttp's errors are all 400.
  int status = error_details_ == nullptr ? 400 : error_status_;
  const char* details = error_details_ == nullptr ? llhttp_errno_name(err) : error_details_;
  ProtocolError(status, details);
}

void Http1ServerCodec::ResumeDispatch() {
  // A connection that ends after its response parses nothing more (a refused upgrade's
  // client may already be speaking the new protocol).
  if (!paused_ || failed_ || !keep_alive_) return;
  paused_ = false;
  llhttp_resume(&parser_);
  connection_.ReadDisable(false);
  std::string data = std::move(pending_);
  pending_.clear();
  if (!data.empty()) Execute(data.data(), data.size());
}

int Http1ServerCodec::OnMessageBegin() {
  ResetMessage();
  in_message_ = true;
  request_complete_ = false;
  response_started_ = false;
  response_complete_ = false;
  callbacks_.OnRequestBegin();
  return 0;
}

int Http1ServerCodec::OnUrl(const char* at, size_t length) {
  HeadState& h = head_;
  if (h.url.size() + length > limits_.max_request_uri_bytes) return Fail(414, "uri too long");
  if (!CountBytes(length)) return Fail(431, "headers too large");
  h.Extend(HeadState::Piece::kUrl, h.url, std::string_view(at, length));
  return 0;
}

bool Http1ServerCodec::SplitTarget(RequestHeaders& request) {
  std::string_view url = head_.url;
  if (url.starts_with("/")) {
    request.path.assign(url.data(), url.size());
    return true;
  }
  if (url == "*" && request.method == "OPTIONS") {
    request.path = "*";
    return true;
  }
  // absolute-form: scheme://authority[/path]. The authority in the target wins over Host.
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return false;
  std::string scheme = absl::AsciiStrToLower(AbslView(url.substr(0, scheme_end)));
  if (scheme != "http" && scheme != "https") return false;
  std::string_view rest = url.substr(scheme_end + 3);
  size_t path_start = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, path_start);
  if (authority.empty() || authority.find('@') != std::string_view::npos) return false;
  request.authority = std::string(authority);
  if (path_start == std::string_view::npos) {
    request.path = "/";
  } else if (rest[path_start] == '?') {
    request.path = absl::StrCat("/", AbslView(rest.substr(path_start)));
  } else {
    request.path = std::string(rest.substr(path_start));
  }
  return true;
}

int Http1ServerCodec::OnHeadersComplete() {
  if (in_trailers_) return 0;
  if (parser_.http_major != 1 || parser_.http_minor > 1) {
    return Fail(400, "unsupported HTTP version");
  }
  auto request = std::make_unique<RequestHeaders>();
  std::string_view method = MethodName(parser_.method);
  request->method.assign(method.data(), method.size());
  request->protocol = parser_.http_minor == 0 ? Protocol::kHttp10 : Protocol::kHttp11;
  http_minor_ = parser_.http_minor;
  head_request_ = parser_.method == HTTP_HEAD;
  // CONNECT tunnels are not proxied. Of the upgrades, WebSocket is carried (when its route
  // allows it, which the connection manager decides); any other is served as a plain request,
  // its Upgrade and Connection fields dropped as hop-by-hop.
  if (parser_.method == HTTP_CONNECT) return Fail(400, "CONNECT not supported");
  bool websocket = IsWebSocketUpgrade();
  HostFields hosts;
  TakeHeaders(request->headers, &hosts);
  if (hosts.count > 1) return Fail(400, "multiple host headers");
  if (hosts.count == 1) request->authority.assign(hosts.first.data(), hosts.first.size());
  if (hosts.count == 0 && http_minor_ == 1) return Fail(400, "missing host header");
  if (!SplitTarget(*request)) return Fail(400, "invalid request target");
  keep_alive_ = keep_alive_ && llhttp_should_keep_alive(&parser_);

  request_has_body_ = (parser_.flags & F_CHUNKED) != 0 ||
                      ((parser_.flags & F_CONTENT_LENGTH) != 0 && parser_.content_length > 0);
  if (const std::string_view* expect = request->headers.Get(WellKnownHeader::kExpect)) {
    if (!absl::EqualsIgnoreCase(AbslView(*expect), "100-continue")) {
      return Fail(417, "unsupported expect");
    }
    request->headers.Remove("expect");
    // The proxy answers 100-continue itself, as Envoy does; the upstream sees a plain request.
    if (request_has_body_ && http_minor_ == 1) connection_.Write("HTTP/1.1 100 Continue\r\n\r\n");
  }
  in_trailers_ = true;  // Header callbacks from now on are trailers.
  request_complete_ = !request_has_body_;
  if (websocket) {
    // The request goes on as the tunnel's data once the response is a 101; until then the
    // client's bytes are held (see OnMessageComplete), never sent to an upstream that may
    // still be reading HTTP.
    request->upgrade = "websocket";
    upgrade_ = request->upgrade;
    request_complete_ = false;
  }
  decoder_ = &callbacks_.NewStream(*this);
  decoder_->DecodeHeaders(std::move(request), !request_has_body_ && !websocket);
  return 0;
}

bool Http1ServerCodec::IsWebSocketUpgrade() const {
  // llhttp's upgrade flag: an Upgrade field and "upgrade" among the Connection tokens.
  if (parser_.upgrade == 0 || parser_.method != HTTP_GET || parser_.http_minor != 1) return false;
  bool has_body = (parser_.flags & F_CHUNKED) != 0 ||
                  ((parser_.flags & F_CONTENT_LENGTH) != 0 && parser_.content_length > 0);
  return !has_body && EqualsLowercase(UpgradeField(), "websocket");
}

int Http1ServerCodec::OnBody(const char* at, size_t length) {
  if (decoder_ != nullptr) decoder_->DecodeData(std::string_view(at, length), false);
  return 0;
}

int Http1ServerCodec::OnMessageComplete() {
  if (!upgrade_.empty() || tunnel_) {
    // The end of an upgrade's head. The stream stays open: what follows waits in pending_
    // for the response (a 101 passes it on as data, anything else drops it).
    head_.Reset();
    return HPE_PAUSED;
  }
  in_message_ = false;
  head_scan_done_ = false;
  last_was_lf_ = false;
  last_was_cr_ = false;
  request_complete_ = true;
  HeaderMap trailers;
  TakeHeaders(trailers, nullptr);
  head_.Reset();
  if (request_has_body_ && decoder_ != nullptr) {
    if (!trailers.empty()) {
      decoder_->DecodeTrailers(std::move(trailers));
    } else {
      decoder_->DecodeData(std::string_view(), true);
    }
  }
  // One request at a time: stop here. Execute() goes on at once if the response is done
  // already; otherwise the pipelined bytes wait for it, and a closing connection parses
  // nothing more.
  return HPE_PAUSED;
}

void Http1ServerCodec::EncodeHeaders(const ResponseHeaders& headers, bool end_stream) {
  response_started_ = true;
  int status = headers.status;
  response_has_body_ = !(head_request_ || status == 204 || status == 304 || status < 200);
  response_chunked_ = false;
  char status_buffer[64];
  std::string_view status_line = StatusLine(status, status_buffer);
  // The status line, the fields, and at most two framing fields of our own.
  HeadWriter out(status_line.size() + HeadWriter::HeadersSize(headers.headers) + 64 +
                 upgrade_.size());
  out.Add(status_line);
  out.AddHeaders(headers.headers);
  if (!upgrade_.empty()) {
    std::string upgrade = std::move(upgrade_);
    upgrade_.clear();
    if (status == 101 && !end_stream) {
      // Switched: the upstream's Upgrade and Connection were hop-by-hop, these are ours.
      out.Add("connection: upgrade\r\nupgrade: ");
      out.Add(upgrade);
      out.Add("\r\n");
      out.Finish(connection_);
      response_has_body_ = true;  // Raw, unframed: the tunnel ends with the connection.
      keep_alive_ = false;
      StartTunnel();
      return;
    }
    // Refused: the client may already be speaking the new protocol, which must never be
    // parsed as HTTP. The response is the connection's last.
    keep_alive_ = false;
  }
  bool has_length = headers.headers.Get(WellKnownHeader::kContentLength) != nullptr;
  if (response_has_body_) {
    if (end_stream) {
      if (!has_length) out.Add("content-length: 0\r\n");
    } else if (!has_length) {
      if (http_minor_ >= 1) {
        out.Add("transfer-encoding: chunked\r\n");
        response_chunked_ = true;
      } else {
        keep_alive_ = false;  // HTTP/1.0 without a length: the close ends the body.
      }
    }
  }
  if (!request_complete_) keep_alive_ = false;
  if (!keep_alive_) {
    out.Add("connection: close\r\n");
  } else if (http_minor_ == 0) {
    out.Add("connection: keep-alive\r\n");
  }
  out.Finish(connection_);
  if (end_stream) ResponseComplete();
}

void Http1ServerCodec::StartTunnel() {
  tunnel_ = true;
  paused_ = false;
  std::string held = std::move(pending_);
  pending_.clear();
  // Reading may have stopped while the held bytes grew (see Dispatch).
  connection_.ReadDisable(false);
  if (!held.empty() && decoder_ != nullptr) decoder_->DecodeData(held, false);
}

void Http1ServerCodec::EncodeData(std::string_view data, bool end_stream) {
  if (response_has_body_) WriteBody(connection_, response_chunked_, data, end_stream);
  if (end_stream) ResponseComplete();
}

void Http1ServerCodec::EncodeTrailers(const HeaderMap& trailers) {
  if (response_has_body_ && response_chunked_) WriteTrailers(connection_, trailers);
  ResponseComplete();
}

void Http1ServerCodec::ResponseComplete() {
  response_complete_ = true;
  decoder_ = nullptr;  // The stream is over; any rest of its request body is dropped.
  if (!request_complete_) keep_alive_ = false;
}

// ---------------------------------------------------------------------------------------
// Client codec

Http1ClientCodec::Http1ClientCodec(network::Connection& connection,
                                   ClientConnectionCallbacks& callbacks)
    : Http1Parser(HTTP_RESPONSE, UpstreamLimits()),
      connection_(connection),
      callbacks_(callbacks) {}

RequestEncoder& Http1ClientCodec::NewStream(ResponseDecoder& decoder) {
  decoder_ = &decoder;
  llhttp_init(&parser_, HTTP_RESPONSE, Settings());
  parser_.data = this;
  ResetMessage();
  head_request_ = false;
  request_chunked_ = false;
  request_complete_ = false;
  response_complete_ = false;
  informational_ = false;
  keep_alive_ = true;
  errored_ = false;
  upgrade_request_ = false;
  upgrade_type_.clear();
  tunnel_ = false;
  return *this;
}

void Http1ClientCodec::EncodeHeaders(const RequestHeaders& headers, bool end_stream) {
  head_request_ = headers.method == "HEAD";
  constexpr std::string_view kVersionAndHost = " HTTP/1.1\r\nhost: ";
  constexpr std::string_view kChunked = "transfer-encoding: chunked\r\n";
  constexpr std::string_view kUpgrade = "connection: upgrade\r\nupgrade: ";
  upgrade_request_ = !headers.upgrade.empty();
  upgrade_type_ = headers.upgrade;
  HeadWriter out(headers.method.size() + 1 + headers.path.size() + kVersionAndHost.size() +
                 headers.authority.size() + 2 + HeadWriter::HeadersSize(headers.headers) +
                 kChunked.size() + kUpgrade.size() + headers.upgrade.size() + 2);
  out.Add(headers.method);
  out.Add(" ");
  out.Add(headers.path);
  out.Add(kVersionAndHost);
  out.Add(headers.authority);
  out.Add("\r\n");
  if (headers.headers.Get(WellKnownHeader::kTe) != nullptr) {
    // An HTTP/2 client's "te: trailers" concerns its own hop (RFC 9110 7.6.1).
    HeaderMap without_te = headers.headers;
    without_te.Remove("te");
    out.AddHeaders(without_te);
  } else {
    out.AddHeaders(headers.headers);
  }
  if (upgrade_request_) {
    // What follows the head is the tunnel's, once the upstream answers 101: unframed.
    out.Add(kUpgrade);
    out.Add(headers.upgrade);
    out.Add("\r\n");
  } else if (!end_stream && headers.headers.Get(WellKnownHeader::kContentLength) == nullptr) {
    out.Add(kChunked);
    request_chunked_ = true;
  }
  out.Finish(connection_);
  request_complete_ = end_stream;
}

void Http1ClientCodec::EncodeData(std::string_view data, bool end_stream) {
  if (upgrade_request_) {
    // Raw, and only inside the tunnel: an upstream that refused the upgrade would read bytes
    // sent before its answer as HTTP. (The server codec holds the client's bytes until the
    // 101, so none come earlier.)
    if (tunnel_ && !data.empty()) connection_.Write(data);
    if (end_stream) request_complete_ = true;
    return;
  }
  WriteBody(connection_, request_chunked_, data, end_stream);
  if (end_stream) request_complete_ = true;
}

void Http1ClientCodec::EncodeTrailers(const HeaderMap& trailers) {
  if (request_chunked_) WriteTrailers(connection_, trailers);
  request_complete_ = true;
}

void Http1ClientCodec::Dispatch(const char* data, size_t length) {
  if (errored_) return;
  if (tunnel_) {
    if (!response_complete_) decoder_->DecodeData(std::string_view(data, length), false);
    return;
  }
  if (response_complete_) {
    // Bytes after a complete response: the connection is out of sync; never reuse it.
    keep_alive_ = false;
    return;
  }
  llhttp_errno_t err = ParseChunk(data, length);
  if (tunnel_ && (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE)) {
    PassTunnelRest(data, length);
    return;
  }
  if (err == HPE_OK || err == HPE_PAUSED) return;
  errored_ = true;
  keep_alive_ = false;
  callbacks_.OnProtocolError(error_details_ == nullptr ? llhttp_errno_name(err) : error_details_);
}

void Http1ClientCodec::PassTunnelRest(const char* data, size_t length) {
  const char* stop = llhttp_get_error_pos(&parser_);
  if (stop != nullptr && stop >= data && stop < data + length && !response_complete_) {
    decoder_->DecodeData(std::string_view(stop, data + length - stop), false);
  }
}

bool Http1ClientCodec::OnConnectionClosed() {
  keep_alive_ = false;
  if (tunnel_) {
    // The upstream closed the tunnel: that is its end of the stream.
    if (!response_complete_) {
      response_complete_ = true;
      decoder_->DecodeData(std::string_view(), true);
    }
    return true;
  }
  if (errored_ || response_complete_) return true;
  // A response delimited by the close completes here; anything else was cut short.
  llhttp_finish(&parser_);
  return response_complete_;
}

int Http1ClientCodec::OnHeadersComplete() {
  if (in_trailers_) return 0;
  int status = parser_.status_code;
  // llhttp takes any number as a status; an HTTP status has three digits.
  if (status < 100 || status > 999) return Fail(502, "invalid status code");
  if (status == 101 && upgrade_request_) {
    // The upgrade the request asked for (llhttp's flag: Upgrade and Connection: upgrade).
    if (parser_.upgrade == 0 || !EqualsLowercase(UpgradeField(), upgrade_type_)) {
      return Fail(502, "101 without the requested upgrade");
    }
    tunnel_ = true;
    keep_alive_ = false;  // Never reused: the connection now belongs to the tunnel.
    auto response = std::make_unique<ResponseHeaders>();
    response->status = status;
    TakeHeaders(response->headers, nullptr);
    in_trailers_ = true;
    decoder_->DecodeHeaders(std::move(response), false);
    return 0;
  }
  if (status < 200) {
    // 1xx interim responses are swallowed (a 101 nobody asked for is an error). They have no
    // body, whatever their fields say: 1 tells llhttp so.
    if (status == 101) return Fail(502, "upgrade not requested");
    informational_ = true;
    ResetMessage();
    return 1;
  }
  informational_ = false;
  auto response = std::make_unique<ResponseHeaders>();
  response->status = status;
  TakeHeaders(response->headers, nullptr);
  bool no_body = head_request_ || status == 204 || status == 304 ||
                 ((parser_.flags & F_CONTENT_LENGTH) != 0 && parser_.content_length == 0 &&
                  (parser_.flags & F_CHUNKED) == 0);
  in_trailers_ = true;
  // Complete before its decoder hears the end, so the pool keeps the connection.
  if (no_body) EndResponse();
  decoder_->DecodeHeaders(std::move(response), no_body);
  // 1 tells llhttp the response has no body: the answer to HEAD, and 204 and 304 even with
  // a Content-Length or Transfer-Encoding (RFC 9112 6.3).
  return head_request_ || status == 204 || status == 304 ? 1 : 0;
}

int Http1ClientCodec::OnBody(const char* at, size_t length) {
  // The last piece of a Content-Length body ends the response: the end travels with the
  // data rather than as an empty call of its own through the router and the filters.
  bool last = (parser_.flags & F_CONTENT_LENGTH) != 0 && (parser_.flags & F_CHUNKED) == 0 &&
              parser_.content_length == 0;
  if (last) EndResponse();
  decoder_->DecodeData(std::string_view(at, length), last);
  return 0;
}

void Http1ClientCodec::EndResponse() {
  response_complete_ = true;
  keep_alive_ = keep_alive_ && llhttp_should_keep_alive(&parser_);
}

int Http1ClientCodec::OnMessageComplete() {
  if (informational_) {
    informational_ = false;
    return 0;
  }
  if (tunnel_) {
    head_.Reset();
    return HPE_PAUSED;  // The 101's head ended; Dispatch passes the rest on as data.
  }
  bool already_ended = response_complete_;  // By a bodiless head or a last body piece.
  if (!already_ended) EndResponse();
  HeaderMap trailers;
  TakeHeaders(trailers, nullptr);
  head_.Reset();
  if (!already_ended) {
    if (!trailers.empty()) {
      decoder_->DecodeTrailers(std::move(trailers));
    } else {
      decoder_->DecodeData(std::string_view(), true);
    }
  }
  return HPE_PAUSED;  // One response per request; anything after it is not ours.
}

}  // namespace phoenix::http
