// phoenix-demo-app: the demo "Phoenix app" that Phoenix fronts in tools/demo.sh and tests.
// A deliberately small HTTP/1.1 server (blocking sockets, a thread per connection, keep-alive):
//   GET /              200 HTML page naming the app and its pid
//   GET /crash         the process dies without answering (the failure Phoenix must absorb)
//   GET /generatecert  burns CPU for ?ms= milliseconds (default 200), then 200
//   GET /healthz       200 "ok"
// Like many real frameworks it routes leniently (percent-decoding, merged slashes, dot segments,
// any case), so "//crash" or "/%63rash" reach /crash here unless the proxy in front stops them.
// Usage: phoenix-demo-app --port N [--address 127.0.0.1] [--name NAME]
// (without --port, the port comes from the PORT environment variable, as a supervisor gives it)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

std::string g_name = "app";
constexpr size_t kMaxHeaderBytes = 64 * 1024;

bool SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Percent-decodes, lowercases and drops empty, "." and ".." segments: "//X/../%63rash" -> "/crash".
std::string CanonicalPath(const std::string& raw) {
  std::string decoded;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '%' && i + 2 < raw.size() &&
        std::isxdigit(static_cast<unsigned char>(raw[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(raw[i + 2]))) {
      decoded += static_cast<char>(std::stoi(raw.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      decoded += raw[i];
    }
  }
  std::vector<std::string> segments;
  size_t start = 0;
  while (start <= decoded.size()) {
    size_t end = std::min(decoded.find('/', start), decoded.size());
    std::string seg = Lower(decoded.substr(start, end - start));
    if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segments.push_back(seg);
    }
    start = end + 1;
  }
  std::string out;
  for (const auto& seg : segments) out += "/" + seg;
  return out.empty() ? "/" : out;
}

// Spins on a hash computation until `ms` milliseconds have passed; returns the time taken.
long BurnCpu(long ms) {
  auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start)
        .count();
  };
  volatile uint64_t sink = 0;
  uint64_t h = 1469598103934665603ull;
  while (elapsed() < ms) {
    for (int i = 0; i < 20000; ++i) h = (h ^ static_cast<uint64_t>(i)) * 1099511628211ull;
    sink = sink + h;
  }
  return static_cast<long>(elapsed());
}

std::string Response(int status, const std::string& type, const std::string& body, bool head,
                     bool keep_alive) {
  const char* reason = status == 200 ? "OK" : status == 404 ? "Not Found" : "Bad Request";
  std::string out =
      "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Type: " + type +
      "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nx-app-name: " + g_name + "\r\n";
  out += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  return head ? out : out + body;
}

std::string Route(const std::string& method, const std::string& target, bool keep_alive) {
  size_t q = target.find('?');
  std::string path = CanonicalPath(target.substr(0, q));
  std::string query = q == std::string::npos ? "" : target.substr(q + 1);
  bool head = method == "HEAD";  // Other methods are routed like GET.
  if (path == "/") {
    std::string body = "<!doctype html>\n<html><body><h1>Phoenix app " + g_name + " (pid " +
                       std::to_string(getpid()) +
                       ")</h1>\n<ul><li><a href=\"/generatecert\">/generatecert</a></li>\n"
                       "<li><a href=\"/crash\">/crash</a></li></ul></body></html>\n";
    return Response(200, "text/html", body, head, keep_alive);
  }
  if (path == "/crash") {
    fprintf(stderr, "%s (pid %d): %s %s -> crashing\n", g_name.c_str(), getpid(), method.c_str(),
            target.c_str());
    _exit(1);
  }
  if (path == "/generatecert") {
    long ms = 200;
    size_t p = query.find("ms=");
    if (p != std::string::npos && (p == 0 || query[p - 1] == '&')) {
      ms = std::clamp(std::atol(query.c_str() + p + 3), 0L, 10000L);
    }
    std::string body = "certificate generated in " + std::to_string(BurnCpu(ms)) + " ms\n";
    return Response(200, "text/plain", body, head, keep_alive);
  }
  if (path == "/healthz") return Response(200, "text/plain", "ok\n", head, keep_alive);
  return Response(404, "text/plain", "not found\n", head, keep_alive);
}

void Serve(int fd) {
  std::string buf;
  char chunk[16384];
  auto bad_request = [fd] {
    SendAll(fd, Response(400, "text/plain", "bad request\n", false, false));
  };
  while (true) {
    size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
      if (buf.size() > kMaxHeaderBytes) return bad_request();
      ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0) return;  // Peer closed (or error) between or during requests.
      buf.append(chunk, static_cast<size_t>(n));
    }
    std::string head = buf.substr(0, end + 2);
    buf.erase(0, end + 4);
    // Request line: METHOD SP TARGET SP HTTP/1.x
    size_t eol = head.find("\r\n");
    std::string line = head.substr(0, eol);
    size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
    if (sp1 == std::string::npos || sp1 == 0 || sp2 <= sp1 + 1) return bad_request();
    std::string method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string version = line.substr(sp2 + 1);
    if ((version != "HTTP/1.1" && version != "HTTP/1.0") || target[0] != '/' ||
        target.find(' ') != std::string::npos) {
      return bad_request();
    }
    bool keep_alive = version == "HTTP/1.1";
    long long content_length = 0;
    for (size_t pos = eol + 2; pos < head.size();) {
      size_t next = head.find("\r\n", pos);
      std::string field = head.substr(pos, next - pos);
      pos = next + 2;
      size_t colon = field.find(':');
      if (colon == std::string::npos || colon == 0 || field.find(' ') < colon) return bad_request();
      std::string name = Lower(field.substr(0, colon));
      std::string value = field.substr(colon + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      value.erase(value.find_last_not_of(" \t") + 1);
      if (name == "content-length") {
        if (value.empty() || value.size() > 15 ||
            value.find_first_not_of("0123456789") != std::string::npos) {
          return bad_request();
        }
        content_length = std::stoll(value);
      } else if (name == "transfer-encoding") {
        return bad_request();  // Chunked request bodies are not supported.
      } else if (name == "connection") {
        std::string v = Lower(value);
        if (v.find("close") != std::string::npos) keep_alive = false;
        if (v.find("keep-alive") != std::string::npos && version == "HTTP/1.0") keep_alive = true;
      }
    }
    // Read and discard the request body.
    while (static_cast<long long>(buf.size()) < content_length) {
      content_length -= static_cast<long long>(buf.size());
      buf.clear();
      ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0) return;
      buf.append(chunk, static_cast<size_t>(n));
    }
    buf.erase(0, static_cast<size_t>(content_length));
    if (!SendAll(fd, Route(method, target, keep_alive)) || !keep_alive) return;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string address = "127.0.0.1";
  // A supervisor (phoenix's, or any) gives the port in PORT; --port takes precedence.
  const char* port_env = std::getenv("PORT");
  int port = port_env != nullptr && *port_env != '\0' ? std::atoi(port_env) : -1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--port") {
      port = std::atoi(argv[i + 1]);
    } else if (flag == "--address") {
      address = argv[i + 1];
    } else if (flag == "--name") {
      g_name = argv[i + 1];
    } else {
      port = -2;
      break;
    }
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (argc % 2 != 1 || port < 0 || port > 65535 ||
      inet_pton(AF_INET, address.c_str(), &addr.sin_addr) != 1) {
    fprintf(stderr, "usage: %s --port N [--address 127.0.0.1] [--name NAME]\n", argv[0]);
    return 2;
  }
  // SIGTERM/SIGINT are taken synchronously by the main thread; all other threads block them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  int listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listen_fd, 1024) != 0) {
    perror("phoenix-demo-app: bind/listen");
    return 1;
  }
  socklen_t len = sizeof(addr);
  getsockname(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
  printf("listening on %s:%d\n", address.c_str(), ntohs(addr.sin_port));
  fflush(stdout);

  std::thread acceptor([listen_fd] {
    while (true) {
      int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINVAL || errno == EBADF) return;               // The listener was shut down.
        if (errno != EINTR && errno != ECONNABORTED) usleep(10000);  // e.g. EMFILE: back off.
        continue;
      }
      int nodelay = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof(nodelay));
      std::thread([fd] {
        Serve(fd);
        close(fd);
      }).detach();
    }
  });
  int sig = 0;
  sigwait(&stop_signals, &sig);
  printf("%s: got signal %d, exiting\n", g_name.c_str(), sig);
  fflush(stdout);
  shutdown(listen_fd, SHUT_RDWR);  // Wakes the acceptor's accept().
  acceptor.join();
  close(listen_fd);
  return 0;
}
