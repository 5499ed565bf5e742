// The CLI's HTTP client over TLS against a local HTTPS server with a certificate issued as the
// proxy's is (TlsContext's own authority): the certificate is verified (refused until trusted), the
// host name sent (SNI) and checked, and the exchange works once the authority is trusted through
// SSL_CERT_FILE, as with any OpenSSL tool.
#include "cli/http_client.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdlib>
#include <thread>

#include "proxy/tls_context.h"

namespace argon::cli {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace fs = std::filesystem;

// Serves `count` HTTPS requests, answering each with the request's target as JSON.
class TlsServer {
 public:
  explicit TlsServer(int count) {
    std::string tmpl = (fs::temp_directory_path() / "argon-tls-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    auto tls = proxy::TlsContext::create({.generated_dir = dir_, .dns_names = {"localhost"}});
    EXPECT_TRUE(tls) << (tls ? "" : tls.error().message);
    tls_ = std::move(*tls);
    acceptor_.open(asio::ip::tcp::v4());
    acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    thread_ = std::thread([this, count] {
      for (int i = 0; i < count; ++i) {
        beast::ssl_stream<asio::ip::tcp::socket> stream(acceptor_.accept(), tls_->context());
        beast::error_code ec;
        stream.handshake(asio::ssl::stream_base::server, ec);
        if (ec) continue;  // the client refused the certificate
        beast::flat_buffer buffer;
        http::request<http::string_body> req;
        http::read(stream, buffer, req, ec);
        if (ec) continue;
        http::response<http::string_body> res{http::status::ok, 11};
        res.body() = "{\"target\":\"" + std::string(req.target()) + "\",\"host\":\"" +
                     std::string(req[http::field::host]) + "\"}";
        res.prepare_payload();
        http::write(stream, res, ec);
        stream.shutdown(ec);
      }
    });
  }
  ~TlsServer() {
    thread_.join();
    fs::remove_all(dir_);
  }
  int port() const { return acceptor_.local_endpoint().port(); }
  fs::path cert() const { return tls_->ca_file(); }  // what a client trusts

 private:
  fs::path dir_;
  std::unique_ptr<proxy::TlsContext> tls_;
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_{io_};
  std::thread thread_;
};

TEST(HttpClientTest, HttpsVerifiesTheCertificateAndItsHostName) {
  TlsServer server(3);
  ::unsetenv("SSL_CERT_FILE");
  auto untrusted = HttpClient::make(fmt::format("https://localhost:{}/api/v2", server.port()));
  ASSERT_TRUE(untrusted);
  auto refused = untrusted->request("GET", "/projects", "", {});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(refused.error().message.find("certificate verify failed"), std::string::npos)
      << refused.error().message;

  ::setenv("SSL_CERT_FILE", server.cert().c_str(), 1);
  auto trusted = HttpClient::make(fmt::format("https://localhost:{}/api/v2/", server.port()));
  ASSERT_TRUE(trusted);
  auto r = trusted->request("GET", "/projects?limit=1", "", {});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "{\"target\":\"/api/v2/projects?limit=1\",\"host\":\"localhost\"}");

  // The certificate names localhost (and loopback addresses): another name for the same server
  // fails the host-name check (*.localhost resolves to loopback through libnss-myhostname).
  auto by_ip = HttpClient::make(fmt::format("https://other.localhost:{}/api/v2", server.port()));
  ASSERT_TRUE(by_ip);
  auto mismatch = by_ip->request("GET", "/projects", "", {});
  ::unsetenv("SSL_CERT_FILE");
  ASSERT_FALSE(mismatch);
  EXPECT_EQ(mismatch.error().code, ErrorCode::kUnavailable);
}

TEST(HttpClientTest, RefusesWhatIsNotAnHttpUrl) {
  for (const char* bad : {"", "localhost:8420", "ftp://example.com/api/v2", "http://"}) {
    auto c = HttpClient::make(bad);
    ASSERT_FALSE(c) << bad;
    EXPECT_EQ(c.error().code, ErrorCode::kBadRequest);
  }
}

}  // namespace
}  // namespace argon::cli
