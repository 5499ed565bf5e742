// The client's stream once closed: OpenSSL holds the socket's descriptor number, and after the
// close that number may already be another client's connection (accepted on another thread), so a
// late read or write must fail without reaching OpenSSL.
#include "proxy/client_stream.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <thread>

#include "proxy/tls_context.h"

namespace argon::proxy {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;

// Runs `op` on `io` to its end; true when it ended with an exception.
bool throws(asio::io_context& io, asio::awaitable<void> op) {
  bool failed = false;
  asio::co_spawn(io, std::move(op), [&](std::exception_ptr e) { failed = e != nullptr; });
  io.restart();
  io.run();
  return failed;
}

TEST(ClientStreamTest, AClosedTlsStreamNeverTouchesItsOldDescriptorNumber) {
  std::string tmpl = (fs::temp_directory_path() / "argon-stream-XXXXXX").string();
  const fs::path root = ::mkdtemp(tmpl.data());
  TlsOptions options;
  options.generated_dir = root / "tls";
  options.dns_names = {"localhost"};
  auto tls = TlsContext::create(options);
  ASSERT_TRUE(tls) << tls.error().message;

  asio::io_context io;
  tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = acceptor.local_endpoint().port();
  // The client: a TLS handshake, then it only waits.
  int client_fd = -1;
  SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
  SSL* client = SSL_new(cctx);
  std::thread connect([&] {
    client_fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(client_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    SSL_set_fd(client, client_fd);
    EXPECT_EQ(SSL_connect(client), 1);
  });
  ClientStream stream(acceptor.accept());
  EXPECT_FALSE(throws(io, stream.start_tls((*tls)->context().native_handle())));
  connect.join();
  ASSERT_TRUE(stream.encrypted());

  const int old_fd = SSL_get_fd(stream.ssl());
  stream.close();
  // The number is free again: the next descriptor opened takes it, as an accept on another loop
  // would.
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
  EXPECT_EQ(pair[0], old_fd) << "the test relies on the lowest free number being reused";
  ::fcntl(pair[0], F_SETFL, O_NONBLOCK);  // a read through the old number fails instead of hanging

  const std::string text = "late";
  EXPECT_TRUE(throws(io, stream.write(text)));
  char buf[64];
  EXPECT_TRUE(throws(
      io, [&]() -> asio::awaitable<void> { co_await stream.read_some(asio::buffer(buf)); }()));
  ::fcntl(pair[1], F_SETFL, O_NONBLOCK);
  EXPECT_EQ(::read(pair[1], buf, sizeof buf), -1) << "bytes reached the descriptor's new owner";
  EXPECT_EQ(errno, EAGAIN);

  ::close(pair[0]);
  ::close(pair[1]);
  SSL_free(client);
  SSL_CTX_free(cctx);
  ::close(client_fd);
  fs::remove_all(root);
}

}  // namespace
}  // namespace argon::proxy
