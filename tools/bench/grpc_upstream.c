// The gRPC server of tools/bench/h2.sh --grpc: answers every call on h2c (prior knowledge)
// as a gRPC unary success, with what a gRPC server sends and nothing else: once the
// request is read whole, HEADERS (:status 200, content-type: application/grpc), one empty
// message (DATA, 5 zero bytes) and the trailers (grpc-status: 0). One thread and epoll;
// per connection and wake-up, one write with every frame nghttp2 has ready, so a reply's
// three frames leave together, as nghttp2-based servers and, typically, gRPC's own write
// them.
// It exists because the bench needs an upstream that costs the CPU it shares with h2load
// less than the proxies cost theirs: nginx as the gRPC server writes each reply twice
// (HEADERS, then DATA and trailers) and saturated that CPU first.
// Build: cc -O2 -o grpc_upstream grpc_upstream.c -lnghttp2
// Usage: grpc_upstream PORT  (on 127.0.0.1; SETTINGS_MAX_CONCURRENT_STREAMS 128, as nginx)
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { kMaxEvents = 256, kReadSize = 65536, kMaxStreams = 128 };

// One client connection: its socket, nghttp2 session and the bytes a write left over.
typedef struct Conn {
  int fd;
  nghttp2_session* session;
  uint8_t* out;
  size_t out_len, out_cap;
  int want_write;  // EPOLLOUT is armed: the socket took less than was ready
} Conn;

static int epfd;

#define NV(name, value)                                                       \
  {                                                                           \
    (uint8_t*)(name), (uint8_t*)(value), sizeof(name) - 1, sizeof(value) - 1, \
        NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE          \
  }
static const nghttp2_nv kHeaders[] = {NV(":status", "200"), NV("content-type", "application/grpc")};
static const nghttp2_nv kTrailers[] = {NV("grpc-status", "0")};

// The reply's one message (not compressed, length 0: 5 zero bytes), then the trailers.
// source->fd counts the bytes still to send, in case the peer's window takes fewer.
static ssize_t ReadReply(nghttp2_session* session, int32_t stream_id, uint8_t* buf, size_t length,
                         uint32_t* flags, nghttp2_data_source* source, void* user_data) {
  (void)user_data;
  size_t n = length < (size_t)source->fd ? length : (size_t)source->fd;
  memset(buf, 0, n);
  source->fd -= (int)n;
  if (source->fd == 0) {
    *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    if (nghttp2_submit_trailer(session, stream_id, kTrailers, 1) != 0) {
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
  }
  return (ssize_t)n;
}

// A request is whole at its END_STREAM (on HEADERS or on its last DATA): answer it.
static int OnFrameRecv(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
  (void)user_data;
  if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
      !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
    return 0;
  }
  nghttp2_data_provider reply = {.source.fd = 5, .read_callback = ReadReply};
  if (nghttp2_submit_response(session, frame->hd.stream_id, kHeaders, 2, &reply) != 0) {
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  return 0;
}

static void CloseConn(Conn* c) {
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  nghttp2_session_del(c->session);
  free(c->out);
  free(c);
}

// Appends everything nghttp2 has ready to c->out and writes as much as the socket takes.
// Returns -1 when the connection is to be closed.
static int Flush(Conn* c) {
  for (;;) {
    const uint8_t* data;
    ssize_t n = nghttp2_session_mem_send(c->session, &data);
    if (n < 0) return -1;
    if (n == 0) break;
    if (c->out_len + (size_t)n > c->out_cap) {
      size_t cap = c->out_cap ? c->out_cap : 16384;
      while (cap < c->out_len + (size_t)n) cap *= 2;
      uint8_t* out = realloc(c->out, cap);
      if (out == NULL) return -1;
      c->out = out, c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, (size_t)n);
    c->out_len += (size_t)n;
  }
  size_t sent = 0;
  while (sent < c->out_len) {
    ssize_t n = write(c->fd, c->out + sent, c->out_len - sent);
    if (n > 0) {
      sent += (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      break;
    } else {
      return -1;
    }
  }
  memmove(c->out, c->out + sent, c->out_len - sent);
  c->out_len -= sent;
  int want_write = c->out_len > 0;
  if (want_write != c->want_write) {
    struct epoll_event ev = {.events = EPOLLIN | (want_write ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) return -1;
    c->want_write = want_write;
  }
  if (c->out_len == 0 && !nghttp2_session_want_read(c->session) &&
      !nghttp2_session_want_write(c->session)) {
    return -1;  // e.g. after a GOAWAY, once it is out
  }
  return 0;
}

static void Accept(int lfd, nghttp2_session_callbacks* callbacks) {
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    Conn* c = calloc(1, sizeof(*c));
    nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kMaxStreams}};
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (c == NULL || nghttp2_session_server_new(&c->session, callbacks, c) != 0) {
      free(c);
      close(fd);
      continue;
    }
    c->fd = fd;
    // As nginx: streams get the default 64 KiB window, the connection the largest one.
    if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, settings, 1) != 0 ||
        nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0,
                                              NGHTTP2_MAX_WINDOW_SIZE) != 0 ||
        epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0 || Flush(c) != 0) {
      CloseConn(c);
    }
  }
}

// Reads what the socket has (up to EAGAIN), feeds it to nghttp2, then writes once.
static void Serve(Conn* c, uint32_t events) {
  static uint8_t buf[kReadSize];
  if (events & EPOLLIN) {
    for (;;) {
      ssize_t n = read(c->fd, buf, sizeof(buf));
      if (n > 0) {
        if (nghttp2_session_mem_recv(c->session, buf, (size_t)n) != n) {
          Flush(c);  // a GOAWAY nghttp2 may have queued, best effort
          CloseConn(c);
          return;
        }
        if ((size_t)n < sizeof(buf)) break;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      if (n == 0) Flush(c);  // the peer only half-closed: what is ready still goes out
      CloseConn(c);
      return;
    }
  } else if (events & (EPOLLERR | EPOLLHUP)) {
    CloseConn(c);
    return;
  }
  if (Flush(c) != 0) CloseConn(c);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s PORT\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in addr = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)atoi(argv[1])),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (lfd < 0 || bind(lfd, (struct sockaddr*)&addr, sizeof(addr)) != 0 || listen(lfd, 4096) != 0) {
    perror("grpc_upstream: listen");
    return 1;
  }
  epfd = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) != 0) {
    perror("grpc_upstream: epoll");
    return 1;
  }
  nghttp2_session_callbacks* callbacks;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, OnFrameRecv);
  struct epoll_event events[kMaxEvents];
  for (;;) {
    int n = epoll_wait(epfd, events, kMaxEvents, -1);
    if (n < 0 && errno != EINTR) {
      perror("grpc_upstream: epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; i++) {
      if (events[i].data.ptr == NULL) {
        Accept(lfd, callbacks);
      } else {
        Serve(events[i].data.ptr, events[i].events);
      }
    }
  }
}
