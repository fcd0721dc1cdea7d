#include "source/server/admin.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "source/common/strings.h"
#include "source/http/codec.h"
#include "source/http/http1_codec.h"
#include "source/network/tcp_connection.h"

namespace phoenix::server {

namespace {

// Decodes one application/x-www-form-urlencoded component.
std::string FormDecode(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out.push_back(' ');
    } else if (in[i] == '%' && i + 2 < in.size() && absl::ascii_isxdigit(in[i + 1]) &&
               absl::ascii_isxdigit(in[i + 2])) {
      out.push_back(static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> ParseAdminQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> params;
  for (absl::string_view part : absl::StrSplit(AbslView(query), '&', absl::SkipEmpty())) {
    std::string_view p = StdView(part);
    size_t eq = p.find('=');
    params.emplace_back(FormDecode(p.substr(0, eq)),
                        eq == std::string_view::npos ? "" : FormDecode(p.substr(eq + 1)));
  }
  return params;
}

// One admin client connection: parse one request, answer it, close.
class AdminServer::AdminConnection : public network::ConnectionCallbacks,
                                     public http::ServerConnectionCallbacks,
                                     public http::RequestDecoder {
 public:
  AdminConnection(AdminServer& server, std::unique_ptr<network::TcpConnection> connection)
      : server_(server), connection_(std::move(connection)), codec_(*connection_, *this, limits_) {
    connection_->SetCallbacks(this);
    codec_.Shutdown();
  }

  void OnData(const char* data, size_t length) override { codec_.Dispatch(data, length); }
  void OnEvent(network::ConnectionEvent) override { Done(); }
  // http::ServerConnectionCallbacks
  void OnRequestBegin() override {}
  http::RequestDecoder& NewStream(http::ResponseEncoder& encoder) override {
    encoder_ = &encoder;
    return *this;
  }
  void OnProtocolError(int, std::string_view, bool) override {
    // The codec has answered; nothing more to say on this connection.
    connection_->CloseAfterFlush();
    Done();
  }
  // http::RequestDecoder
  void DecodeHeaders(http::RequestHeadersPtr headers, bool end_stream) override {
    request_ = std::move(headers);
    if (end_stream) Respond();
  }
  void DecodeData(std::string_view, bool end_stream) override {
    if (end_stream) Respond();
  }
  void DecodeTrailers(http::HeaderMap) override { Respond(); }

 private:
  void Respond() {
    if (request_ == nullptr) return;
    Send(server_.Handle(*request_));
  }

  void Send(const AdminResponse& response) {
    http::ResponseHeaders headers;
    headers.status = response.status;
    headers.headers.Add("content-type", response.content_type);
    headers.headers.Add("content-length", absl::StrCat(response.body.size()));
    headers.headers.Add("cache-control", "no-cache");
    encoder_->EncodeHeaders(headers, response.body.empty());
    if (!response.body.empty()) encoder_->EncodeData(response.body, true);
    connection_->CloseAfterFlush();
    Done();
  }

  void Done() {
    server_.dispatcher_.Defer(
        [server = &server_, self = this] { server->connections_.erase(self); });
  }

  AdminServer& server_;
  std::unique_ptr<network::TcpConnection> connection_;
  http::CodecLimits limits_;
  http::Http1ServerCodec codec_;
  http::ResponseEncoder* encoder_ = nullptr;
  http::RequestHeadersPtr request_;
};

AdminServer::AdminServer(Dispatcher& dispatcher) : dispatcher_(dispatcher) {}

AdminServer::~AdminServer() { Close(); }

void AdminServer::AddHandler(const std::string& path, const std::string& method, Handler handler) {
  handlers_[path] = {method, std::move(handler)};
}

std::string AdminServer::Listen(const sockaddr* address) {
  handle_ = new uv_tcp_t;
  uv_tcp_init(dispatcher_.loop(), handle_);
  handle_->data = this;
  int rc = uv_tcp_bind(handle_, address, 0);
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(handle_), 128, [](uv_stream_t* s, int status) {
      if (status == 0 && s->data != nullptr) static_cast<AdminServer*>(s->data)->OnAccept();
    });
  }
  if (rc != 0) {
    Close();
    return uv_strerror(rc);
  }
  return "";
}

void AdminServer::Close() {
  connections_.clear();
  if (handle_ != nullptr) {
    handle_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(handle_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    handle_ = nullptr;
  }
}

void AdminServer::OnAccept() {
  uv_tcp_t* handle = network::TcpConnection::NewHandle(dispatcher_.loop());
  if (uv_accept(reinterpret_cast<uv_stream_t*>(handle_), reinterpret_cast<uv_stream_t*>(handle)) !=
      0) {
    network::TcpConnection::CloseUnusedHandle(handle);
    return;
  }
  auto connection = std::make_unique<AdminConnection>(
      *this, network::TcpConnection::FromAccepted(dispatcher_, handle, 1 << 20,
                                                  transport_socket_factory_.Create()));
  AdminConnection* raw = connection.get();
  connections_[raw] = std::move(connection);
}

AdminResponse AdminServer::Handle(const http::RequestHeaders& request) {
  std::string path(request.PathWithoutQuery());
  auto it = handlers_.find(path);
  if (it == handlers_.end()) {
    std::string body = "admin endpoints:\n";
    for (const auto& [p, h] : handlers_) absl::StrAppend(&body, "  ", h.first, " ", p, "\n");
    // "/" and "/help" ask for exactly this list.
    bool asked =
        (path == "/" || path == "/help") && (request.method == "GET" || request.method == "HEAD");
    return {asked ? 200 : 404, "text/plain", body};
  }
  if (request.method != it->second.first &&
      !(request.method == "HEAD" && it->second.first == "GET")) {
    return {405, "text/plain", absl::StrCat("use ", it->second.first, "\n")};
  }
  return it->second.second(request);
}

}  // namespace phoenix::server
