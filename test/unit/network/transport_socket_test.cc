#include "source/network/transport_socket.h"

#include <sys/socket.h>
#include <uv.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "source/common/dispatcher.h"
#include "source/network/raw_buffer_socket.h"
#include "source/network/tcp_connection.h"

namespace phoenix::network {
namespace {

using std::chrono_literals::operator""ms;

// Records what a transport socket yields to its connection.
class RecordingTransportCallbacks : public TransportSocketCallbacks {
 public:
  void OnPlaintext(const char* data, size_t length) override {
    plaintext.append(data, length);
    plaintext_at = data;
  }
  void WriteToSocket(const std::string_view* slices, size_t count) override {
    for (size_t i = 0; i < count; ++i) socket_bytes.append(slices[i]);
    slices_at = slices;
  }
  void RaiseEvent(ConnectionEvent event) override { events.push_back(event); }
  const std::string& peer_address() const override { return peer; }

  std::string peer = "192.0.2.1:4321";
  std::string plaintext;
  const char* plaintext_at = nullptr;
  std::string socket_bytes;
  const std::string_view* slices_at = nullptr;
  std::vector<ConnectionEvent> events;
};

class RawBufferSocketTest : public ::testing::Test {
 protected:
  void SetUp() override { socket_->SetCallbacks(&callbacks_); }

  RawBufferSocketFactory factory_;
  TransportSocketPtr socket_ = factory_.Create();
  RecordingTransportCallbacks callbacks_;
};

TEST_F(RawBufferSocketTest, HandsSocketBytesOnAsTheSameMemory) {
  const char bytes[] = "GET / HTTP/1.1\r\n";
  socket_->OnSocketData(bytes, sizeof(bytes) - 1);
  EXPECT_EQ(callbacks_.plaintext, "GET / HTTP/1.1\r\n");
  EXPECT_EQ(callbacks_.plaintext_at, bytes);
  EXPECT_TRUE(callbacks_.socket_bytes.empty());
}

TEST_F(RawBufferSocketTest, HandsWritesOnAsTheSameSlices) {
  std::string_view slices[] = {"HTTP/1.1 200 OK\r\n", "\r\n", "body"};
  socket_->Write(slices, 3);
  EXPECT_EQ(callbacks_.socket_bytes, "HTTP/1.1 200 OK\r\n\r\nbody");
  EXPECT_EQ(callbacks_.slices_at, slices);
  EXPECT_TRUE(callbacks_.plaintext.empty());
}

TEST_F(RawBufferSocketTest, ReadyOnConnectAndSilentOnClose) {
  socket_->OnConnected();
  EXPECT_EQ(callbacks_.events, std::vector<ConnectionEvent>{ConnectionEvent::kConnected});
  socket_->OnCleanClose();
  EXPECT_TRUE(callbacks_.socket_bytes.empty());
  EXPECT_EQ(callbacks_.events.size(), 1u);
}

TEST_F(RawBufferSocketTest, NegotiatesNothingAndKnowsNoPeer) {
  EXPECT_EQ(socket_->ApplicationProtocol(), "");
  EXPECT_EQ(socket_->tls_info(), nullptr);
  EXPECT_FALSE(factory_.ImplementsSecureTransport());
  EXPECT_NE(factory_.Create().get(), factory_.Create().get());
}

// A toy secure transport shaped like a memory-BIO TLS socket, to show that TcpConnection
// leaves every byte to its transport: the client says "hello" on connect, the server answers
// "welcome" from inside a read, and each side raises kConnected once its handshake is done.
// After that every byte is "encrypted" (+1). A clean close says "bye" in clear.
class ToySecureSocket : public TransportSocket {
 public:
  explicit ToySecureSocket(bool client) : client_(client) {}

  void SetCallbacks(TransportSocketCallbacks* callbacks) override { callbacks_ = callbacks; }
  void OnConnected() override { Send("hello"); }
  void OnSocketData(const char* data, size_t length) override {
    received_.append(data, length);
    if (!ready_) {
      std::string_view expected = client_ ? "welcome" : "hello";
      if (received_.size() < expected.size()) return;
      if (!received_.starts_with(expected)) {
        callbacks_->RaiseEvent(ConnectionEvent::kRemoteClose);  // Handshake failure.
        return;
      }
      received_.erase(0, expected.size());
      if (!client_) Send("welcome");
      ready_ = true;
      callbacks_->RaiseEvent(ConnectionEvent::kConnected);
    }
    if (received_.empty()) return;
    std::string plaintext = Shift(received_, -1);
    received_.clear();
    callbacks_->OnPlaintext(plaintext.data(), plaintext.size());
  }
  void Write(const std::string_view* slices, size_t count) override {
    std::string ciphertext;
    for (size_t i = 0; i < count; ++i) ciphertext += Shift(slices[i], 1);
    Send(ciphertext);
  }
  void OnCleanClose() override { Send("bye"); }
  std::string_view ApplicationProtocol() const override { return {}; }

 private:
  static std::string Shift(std::string_view bytes, int by) {
    std::string out(bytes);
    for (char& c : out) c = static_cast<char>(c + by);
    return out;
  }
  void Send(std::string_view bytes) { callbacks_->WriteToSocket(&bytes, 1); }

  const bool client_;
  bool ready_ = false;
  std::string received_;
  TransportSocketCallbacks* callbacks_ = nullptr;
};

// What one end of a connection hears, plus what the test does about it.
class Peer : public ConnectionCallbacks {
 public:
  void OnData(const char* bytes, size_t length) override {
    data.append(bytes, length);
    if (on_data) on_data();
  }
  void OnEvent(ConnectionEvent event) override {
    events.push_back(event);
    if (on_event) on_event(event);
  }

  void Write(std::string_view bytes) { static_cast<Connection&>(*connection).Write(bytes); }

  std::string data;
  std::vector<ConnectionEvent> events;
  std::function<void()> on_data;
  std::function<void(ConnectionEvent)> on_event;
  std::unique_ptr<TcpConnection> connection;
};

// Two TcpConnections on one loop over real loopback TCP: `client_` connects to a listener
// whose accepted connection becomes `server_`.
class TcpConnectionTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    listener_ = new uv_tcp_t;
    uv_tcp_init(dispatcher_.loop(), listener_);
    listener_->data = this;
    sockaddr_storage any{};
    uv_ip4_addr("127.0.0.1", 0, reinterpret_cast<sockaddr_in*>(&any));
    ASSERT_EQ(uv_tcp_bind(listener_, reinterpret_cast<sockaddr*>(&any), 0), 0);
    int length = sizeof(address_);
    uv_tcp_getsockname(listener_, reinterpret_cast<sockaddr*>(&address_), &length);
    ASSERT_EQ(uv_listen(reinterpret_cast<uv_stream_t*>(listener_), 8,
                        [](uv_stream_t* stream, int status) {
                          ASSERT_EQ(status, 0);
                          static_cast<TcpConnectionTransportTest*>(stream->data)->Accept();
                        }),
              0);
  }

  void TearDown() override {
    client_.connection.reset();
    server_.connection.reset();
    uv_close(reinterpret_cast<uv_handle_t*>(listener_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    dispatcher_.Exit();
    dispatcher_.Run();
  }

  void Accept() {
    uv_tcp_t* handle = TcpConnection::NewHandle(dispatcher_.loop());
    ASSERT_EQ(uv_accept(reinterpret_cast<uv_stream_t*>(listener_),
                        reinterpret_cast<uv_stream_t*>(handle)),
              0);
    server_.connection =
        TcpConnection::FromAccepted(dispatcher_, handle, 1 << 20, server_transport_());
    server_.connection->SetCallbacks(&server_);
  }

  void Connect(TransportSocketPtr transport, std::chrono::milliseconds timeout = 5000ms) {
    client_.connection =
        TcpConnection::Connect(dispatcher_, reinterpret_cast<const sockaddr*>(&address_), timeout,
                               1 << 20, &client_, std::move(transport));
  }

  // A raw TCP client that sends `words` once connected.
  void ConnectRawClientSaying(std::string words) {
    client_.on_event = [this, words](ConnectionEvent event) {
      if (event == ConnectionEvent::kConnected) client_.Write(words);
    };
    Connect(std::make_unique<RawBufferSocket>());
  }

  // Runs the loop until `done` holds; false if it still does not after 5 seconds.
  bool RunUntil(const std::function<bool()>& done) {
    bool expired = false;
    auto deadline = dispatcher_.CreateTimer([&expired] { expired = true; });
    deadline->Enable(5000ms);
    while (!done() && !expired) uv_run(dispatcher_.loop(), UV_RUN_ONCE);
    return done();
  }

  RealTimeSource time_source_;
  Dispatcher dispatcher_{time_source_};
  uv_tcp_t* listener_ = nullptr;
  sockaddr_storage address_{};
  std::function<TransportSocketPtr()> server_transport_;
  Peer client_;
  Peer server_;
};

TEST_F(TcpConnectionTransportTest, HandshakeThenEncryptedExchangeBothWays) {
  server_transport_ = [] { return std::make_unique<ToySecureSocket>(/*client=*/false); };
  client_.on_event = [this](ConnectionEvent event) {
    if (event == ConnectionEvent::kConnected) client_.Write("ping");
  };
  server_.on_data = [this] {
    if (server_.data == "ping") server_.Write("pong");
  };
  Connect(std::make_unique<ToySecureSocket>(/*client=*/true));
  ASSERT_TRUE(RunUntil([this] { return client_.data == "pong"; })) << client_.data;
  EXPECT_EQ(server_.data, "ping");
  // Each side heard kConnected once, when its handshake was done.
  EXPECT_EQ(client_.events, std::vector<ConnectionEvent>{ConnectionEvent::kConnected});
  EXPECT_EQ(server_.events, std::vector<ConnectionEvent>{ConnectionEvent::kConnected});
}

TEST_F(TcpConnectionTransportTest, TransportAnswersFromAReadAndSpeaksLastOnCleanClose) {
  server_transport_ = [] { return std::make_unique<ToySecureSocket>(/*client=*/false); };
  server_.on_event = [this](ConnectionEvent event) {
    if (event != ConnectionEvent::kConnected) return;
    server_.Write("hi");
    server_.connection->CloseAfterFlush();
  };
  ConnectRawClientSaying("hello");
  ASSERT_TRUE(RunUntil([this] { return client_.events.size() == 2; }));
  EXPECT_EQ(client_.data, "welcomeijbye");  // Handshake, "hi" encrypted, close_notify.
  EXPECT_EQ(client_.events[1], ConnectionEvent::kRemoteClose);
}

TEST_F(TcpConnectionTransportTest, TransportFailureClosesTheConnection) {
  server_transport_ = [] { return std::make_unique<ToySecureSocket>(/*client=*/false); };
  ConnectRawClientSaying("howdy");
  ASSERT_TRUE(RunUntil([this] { return client_.events.size() == 2; }));
  EXPECT_EQ(server_.events, std::vector<ConnectionEvent>{ConnectionEvent::kRemoteClose});
  EXPECT_TRUE(server_.connection->closed());
  EXPECT_EQ(client_.events[1], ConnectionEvent::kRemoteClose);
}

TEST_F(TcpConnectionTransportTest, ConnectTimeoutCoversTheHandshake) {
  server_transport_ = [] { return std::make_unique<RawBufferSocket>(); };  // Never answers.
  Connect(std::make_unique<ToySecureSocket>(/*client=*/true), 100ms);
  ASSERT_TRUE(RunUntil([this] { return !client_.events.empty(); }));
  EXPECT_EQ(client_.events, std::vector<ConnectionEvent>{ConnectionEvent::kConnectTimeout});
  EXPECT_EQ(server_.data, "hello");
}

// Counts its turns and writes what it was given.
class CountingWriter : public DeferredWriter {
 public:
  explicit CountingWriter(Connection& connection) : connection_(connection) {}
  void WriteDeferred() override {
    ++calls;
    if (!next.empty()) connection_.Write(next);
    next.clear();
    if (!then.empty()) {  // Asks for another turn while it writes.
      next = std::move(then);
      then.clear();
      connection_.WriteSoon(this);
    }
  }
  int calls = 0;
  std::string next;
  std::string then;

 private:
  Connection& connection_;
};

// Raw TCP both ways; once the client is connected, a test acts on its connection with a
// CountingWriter for it.
class DeferredWriterTest : public TcpConnectionTransportTest {
 protected:
  void ConnectThen(std::function<void(Connection&, CountingWriter&)> act) {
    server_transport_ = [] { return std::make_unique<RawBufferSocket>(); };
    client_.on_event = [this, act](ConnectionEvent event) {
      if (event != ConnectionEvent::kConnected) return;
      writer_ = std::make_unique<CountingWriter>(*client_.connection);
      act(*client_.connection, *writer_);
    };
    Connect(std::make_unique<RawBufferSocket>());
  }

  // Runs until the server has as many bytes as `data`, then checks them and the writer's turns.
  void ExpectServerGets(std::string_view data, int calls) {
    ASSERT_TRUE(RunUntil([&] { return server_.data.size() >= data.size(); })) << server_.data;
    EXPECT_EQ(server_.data, data);
    EXPECT_EQ(writer_->calls, calls);
  }

  std::unique_ptr<CountingWriter> writer_;
};

TEST_F(DeferredWriterTest, WritesOnceBeforeTheFlush) {
  ConnectThen([](Connection& connection, CountingWriter& writer) {
    connection.Write("a");
    writer.next = "b";
    connection.WriteSoon(&writer);
    connection.WriteSoon(&writer);  // Still once.
    connection.Write("c");
    EXPECT_EQ(writer.calls, 0);  // Not before the iteration's end.
  });
  ExpectServerGets("acb", 1);
}

TEST_F(DeferredWriterTest, WriterAskingAgainWhileItWritesGetsAnotherTurn) {
  ConnectThen([](Connection& connection, CountingWriter& writer) {
    writer.next = "1";
    writer.then = "2";
    connection.WriteSoon(&writer);
  });
  ExpectServerGets("12", 2);
}

TEST_F(DeferredWriterTest, CancelledWriterIsNotCalled) {
  ConnectThen([](Connection& connection, CountingWriter& writer) {
    writer.next = "never";
    connection.WriteSoon(&writer);
    connection.WriteSoon(nullptr);
    connection.Write("x");
  });
  ExpectServerGets("x", 0);
}

// The transport's last words (TLS: close_notify) come after what the writer had to say.
TEST_F(TcpConnectionTransportTest, DeferredWriterWritesBeforeTheTransportsLastWords) {
  server_transport_ = [] { return std::make_unique<ToySecureSocket>(/*client=*/false); };
  std::unique_ptr<CountingWriter> writer;
  server_.on_event = [&](ConnectionEvent event) {
    if (event != ConnectionEvent::kConnected) return;
    writer = std::make_unique<CountingWriter>(*server_.connection);
    writer->next = "hi";
    server_.connection->WriteSoon(writer.get());
    server_.connection->CloseAfterFlush();
  };
  ConnectRawClientSaying("hello");
  ASSERT_TRUE(RunUntil([this] { return client_.events.size() == 2; }));
  EXPECT_EQ(client_.data, "welcomeijbye");  // Handshake, "hi" encrypted, close_notify.
  EXPECT_EQ(writer->calls, 1);
}

}  // namespace
}  // namespace phoenix::network
