#include "source/server/readiness_probe.h"

#include <netinet/in.h>

#include "absl/strings/str_cat.h"

namespace phoenix::server {

struct ReadinessProbe::Socket {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  ReadinessProbe* owner = nullptr;  // Null once the probe is done or gone.
  std::string request;
  char buffer[1024];
};

ReadinessProbe::ReadinessProbe(Dispatcher& dispatcher, uint32_t port, std::string http_path,
                               std::chrono::milliseconds timeout, Callback done)
    : http_path_(std::move(http_path)),
      done_(std::move(done)),
      timeout_(dispatcher.CreateTimer([this] { Finish(false, "timed out"); })) {
  timeout_->Enable(timeout);
  socket_ = new Socket;
  socket_->owner = this;
  uv_tcp_init(dispatcher.loop(), &socket_->tcp);
  socket_->tcp.data = socket_;
  socket_->connect.data = socket_;
  socket_->write.data = socket_;
  sockaddr_in address;
  uv_ip4_addr("127.0.0.1", static_cast<int>(port), &address);
  int rc =
      uv_tcp_connect(&socket_->connect, &socket_->tcp, reinterpret_cast<const sockaddr*>(&address),
                     [](uv_connect_t* request, int status) {
                       auto* s = static_cast<Socket*>(request->data);
                       if (s->owner != nullptr) s->owner->OnConnected(status);
                     });
  if (rc != 0) {
    // Reported from the loop, as every other outcome is, never from inside the constructor.
    timeout_->Enable(std::chrono::milliseconds(0));
  }
}

ReadinessProbe::~ReadinessProbe() {
  if (socket_ != nullptr) {
    socket_->owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&socket_->tcp),
             [](uv_handle_t* h) { delete static_cast<Socket*>(h->data); });
    socket_ = nullptr;
  }
}

void ReadinessProbe::Finish(bool ready, std::string detail) {
  if (!done_) return;
  timeout_->Disable();
  if (socket_ != nullptr) {
    socket_->owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&socket_->tcp),
             [](uv_handle_t* h) { delete static_cast<Socket*>(h->data); });
    socket_ = nullptr;
  }
  Callback done = std::move(done_);
  done_ = nullptr;
  done(ready, std::move(detail));  // May destroy this.
}

void ReadinessProbe::OnConnected(int status) {
  if (status != 0) {
    Finish(false, absl::StrCat("connect: ", uv_strerror(status)));
    return;
  }
  if (http_path_.empty()) {
    Finish(true, "");
    return;
  }
  socket_->request = absl::StrCat("GET ", http_path_,
                                  " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: phoenix-supervisor"
                                  "\r\nConnection: close\r\n\r\n");
  uv_buf_t buf = uv_buf_init(socket_->request.data(), socket_->request.size());
  uv_write(&socket_->write, reinterpret_cast<uv_stream_t*>(&socket_->tcp), &buf, 1,
           [](uv_write_t* request, int status) {
             auto* s = static_cast<Socket*>(request->data);
             if (s->owner != nullptr && status != 0) {
               s->owner->Finish(false, absl::StrCat("write: ", uv_strerror(status)));
             }
           });
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&socket_->tcp),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* s = static_cast<Socket*>(h->data);
        *buf = uv_buf_init(s->buffer, sizeof(s->buffer));
      },
      [](uv_stream_t* stream, ssize_t n, const uv_buf_t* buf) {
        auto* s = static_cast<Socket*>(stream->data);
        if (s->owner != nullptr) s->owner->OnRead(n, buf->base);
      });
}

void ReadinessProbe::OnRead(ssize_t n, const char* data) {
  if (n > 0) response_.append(data, static_cast<size_t>(n));
  // "HTTP/1.1 200" is all it takes.
  if (response_.size() >= 12) {
    bool http = response_.starts_with("HTTP/1.");
    char first = response_[9];
    if (http && first == '2') {
      Finish(true, "");
    } else {
      Finish(false, absl::StrCat("GET ", http_path_, " answered '",
                                 http ? response_.substr(9, 3) : "not HTTP", "'"));
    }
    return;
  }
  if (n < 0) Finish(false, "closed before answering");
}

}  // namespace phoenix::server
