// The proxy's generated TLS identity: a local authority created once, and a certificate issued from
// it that a client verifies against ca.crt for the proxy host, its wildcard and the loopback
// addresses.
#include "proxy/tls_context.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

namespace argon::proxy {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

X509Ptr load(const fs::path& p) {
  FILE* f = fopen(p.c_str(), "r");
  if (!f) return nullptr;
  X509Ptr c(PEM_read_X509(f, nullptr, nullptr, nullptr));
  fclose(f);
  return c;
}

// What a verifying client does: chain `leaf` to `ca` for `host` (a name or an IP address).
bool verifies(const fs::path& ca, const fs::path& leaf, const std::string& host) {
  X509Ptr root = load(ca);
  X509Ptr cert = load(leaf);
  if (!root || !cert) return false;
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, root.get());
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, cert.get(), nullptr);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx);
  X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
  if (host.find_first_not_of("0123456789.:") == std::string::npos) {
    X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
  }
  const bool ok = X509_verify_cert(ctx) == 1;
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return ok;
}

// A TLS handshake over a socket pair, the client verifying as Node.js does: the chain to `ca`
// and `host`, sent in SNI, against the certificate's names (no wildcard over one label).
bool handshake_verifies(TlsContext& server, const fs::path& ca, const std::string& host) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return false;
  SSL* s = SSL_new(server.context().native_handle());
  SSL_set_fd(s, fds[0]);
  std::thread accept([s] { SSL_accept(s); });
  SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_load_verify_locations(cctx, ca.c_str(), nullptr);
  SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, nullptr);
  SSL* c = SSL_new(cctx);
  SSL_set_fd(c, fds[1]);
  SSL_set_tlsext_host_name(c, host.c_str());
  SSL_set_hostflags(c,
                    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_SINGLE_LABEL_SUBDOMAINS);
  SSL_set1_host(c, host.c_str());
  const bool ok = SSL_connect(c) == 1 && SSL_get_verify_result(c) == X509_V_OK;
  ::shutdown(fds[1], SHUT_RDWR);
  accept.join();
  SSL_free(c);
  SSL_CTX_free(cctx);
  SSL_free(s);
  ::close(fds[0]);
  ::close(fds[1]);
  return ok;
}

class TlsContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "argon-tls-XXXXXX").string();
    root_ = ::mkdtemp(tmpl.data());
    options_.generated_dir = root_ / "tls";
    options_.dns_names = {"localhost", "*.localhost"};
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path tls(const char* name) const { return root_ / "tls" / name; }

  fs::path root_;
  TlsOptions options_;
};

TEST_F(TlsContextTest, TheProxyCertificateChainsToTheLocalAuthority) {
  auto t = TlsContext::create(options_);
  ASSERT_TRUE(t) << t.error().message;
  struct stat st {};
  ASSERT_EQ(::stat(tls("ca.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(tls("proxy.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  for (const char* host : {"localhost", "127.0.0.1", "::1"}) {
    EXPECT_TRUE(verifies(tls("ca.crt"), tls("proxy.crt"), host)) << host;
  }
  EXPECT_FALSE(verifies(tls("ca.crt"), tls("proxy.crt"), "example.com"));
  // The authority signs; the proxy's certificate does not.
  EXPECT_FALSE(verifies(tls("proxy.crt"), tls("proxy.crt"), "localhost"));

  // Over a handshake, a name one label under the proxy host gets a certificate of its own.
  for (const char* host :
       {"localhost", "ep-cool-darkness-123456.localhost", "api.localhost", "EP-Upper.LocalHost"}) {
    EXPECT_TRUE(handshake_verifies(**t, tls("ca.crt"), host)) << host;
  }
  for (const char* host : {"a.b.localhost", "example.com", "-x.localhost", "x_y.localhost"}) {
    EXPECT_FALSE(handshake_verifies(**t, tls("ca.crt"), host)) << host;
  }
  EXPECT_EQ((*t)->issued_count(), 3u);  // ep-cool-darkness-123456, api, ep-upper
}

TEST_F(TlsContextTest, CertificatesIssuedForNamesAreBounded) {
  auto t = TlsContext::create(options_);
  ASSERT_TRUE(t) << t.error().message;
  const std::size_t n = TlsContext::kMaxIssued + 50;
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_TRUE(handshake_verifies(**t, tls("ca.crt"), "ep-" + std::to_string(i) + ".localhost"));
  }
  EXPECT_EQ((*t)->issued_count(), TlsContext::kMaxIssued);
  // The first names were evicted and are issued again on demand.
  EXPECT_TRUE(handshake_verifies(**t, tls("ca.crt"), "ep-0.localhost"));
}

TEST_F(TlsContextTest, ARestartKeepsBothAndANewHostReissuesFromTheSameAuthority) {
  ASSERT_TRUE(TlsContext::create(options_));
  const std::string ca = slurp(tls("ca.crt"));
  const std::string cert = slurp(tls("proxy.crt"));
  ASSERT_TRUE(TlsContext::create(options_));
  EXPECT_EQ(slurp(tls("ca.crt")), ca);
  EXPECT_EQ(slurp(tls("proxy.crt")), cert);

  options_.dns_names = {"db.example.internal", "*.db.example.internal"};
  ASSERT_TRUE(TlsContext::create(options_));
  EXPECT_EQ(slurp(tls("ca.crt")), ca);
  EXPECT_NE(slurp(tls("proxy.crt")), cert);
  EXPECT_TRUE(verifies(tls("ca.crt"), tls("proxy.crt"), "ep-x.db.example.internal"));
}

TEST_F(TlsContextTest, AnEarlierSelfSignedCertificateIsReplaced) {
  // What argond generated before it had an authority: proxy.crt/.key and no ca.crt.
  ASSERT_TRUE(TlsContext::create(options_));
  fs::remove(tls("ca.crt"));
  fs::remove(tls("ca.key"));
  ASSERT_TRUE(TlsContext::create(options_));
  EXPECT_TRUE(verifies(tls("ca.crt"), tls("proxy.crt"), "localhost"));
}

TEST_F(TlsContextTest, AConfiguredCertificateWinsAndNoAuthorityIsCreated) {
  ASSERT_TRUE(TlsContext::create(options_));
  const fs::path own = root_ / "own";
  fs::create_directories(own);
  fs::copy_file(tls("proxy.crt"), own / "server.crt");
  fs::copy_file(tls("proxy.key"), own / "server.key");
  TlsOptions configured;
  configured.cert_file = own / "server.crt";
  configured.key_file = own / "server.key";
  configured.generated_dir = own / "tls";
  auto t = TlsContext::create(configured);
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ((*t)->cert_file(), own / "server.crt");
  EXPECT_FALSE(fs::exists(own / "tls"));

  configured.key_file.clear();
  auto half = TlsContext::create(configured);
  ASSERT_FALSE(half);
  EXPECT_NE(half.error().message.find("--proxy-tls-key"), std::string::npos);
}

TEST_F(TlsContextTest, ADamagedAuthoritySaysWhatToDo) {
  ASSERT_TRUE(TlsContext::create(options_));
  { std::ofstream(tls("ca.key"), std::ios::trunc) << "not a key"; }
  fs::remove(tls("proxy.crt"));
  auto t = TlsContext::create(options_);
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message.find("remove both"), std::string::npos) << t.error().message;
}

}  // namespace
}  // namespace argon::proxy
