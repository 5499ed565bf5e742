// The proxy's TLS identity: a certificate and key from the configuration, or else a pair issued by
// a private certificate authority that argond creates once in the data dir (`ca.crt`, which clients
// trust with NODE_EXTRA_CA_CERTS or sslrootcert; `ca.key` readable by argond alone). The issued
// pair is kept across starts and issued again only when it no longer names the proxy's hosts or is
// about to expire.
//
// Node.js, like browsers, refuses a wildcard over a single label (`*.localhost`), so with its own
// authority the proxy also answers a client that names `<label>.<proxy host>` in SNI with a
// certificate for exactly that name: same key, signed on first use (about 0.1 ms) and kept in a
// bounded cache. Also each certificate's tls-server-end-point hash, which SCRAM-SHA-256-PLUS binds
// the client's proof to.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/error.h"

namespace argon::proxy {

struct TlsOptions {
  std::filesystem::path cert_file;  // both empty: generate into `generated_dir`
  std::filesystem::path key_file;
  std::filesystem::path generated_dir;  // ca.crt, ca.key, proxy.crt, proxy.key
  // subjectAltNames of a generated certificate; a `*.<suffix>` entry also has the proxy issue
  // `<label>.<suffix>` certificates on demand.
  std::vector<std::string> dns_names;
};

class TlsContext {
 public:
  static Result<std::unique_ptr<TlsContext>> create(const TlsOptions& options);
  ~TlsContext();

  boost::asio::ssl::context& context() { return ctx_; }
  // RFC 5929 tls-server-end-point of the certificate `ssl` presented: the certificate hashed with
  // its signature's digest (SHA-256 when that is MD5 or SHA-1).
  std::string end_point_hash(const SSL* ssl) const;
  const std::filesystem::path& cert_file() const { return cert_file_; }
  // The authority that issued it, which clients trust; empty with a configured certificate.
  const std::filesystem::path& ca_file() const { return ca_file_; }
  // The ALPN protocol the handshake chose: "postgresql" (direct TLS, PostgreSQL 17), "http/1.1",
  // or "" when the client offered neither.
  static std::string_view alpn(const SSL* ssl);
  // Certificates issued for single names so far, at most kMaxIssued.
  std::size_t issued_count() const;

  static constexpr std::size_t kMaxIssued = 1024;

 private:
  struct Issuer;
  TlsContext();
  static int on_server_name(SSL* ssl, int* alert, void* arg);
  static int on_alpn(SSL* ssl, const unsigned char** out, unsigned char* outlen,
                     const unsigned char* in, unsigned int inlen, void* arg);
  // The certificate for exactly `host`, or null when `host` is not one label over a suffix.
  X509* certificate_for(std::string_view host);

  boost::asio::ssl::context ctx_;
  std::string end_point_hash_;  // of the configured or generated certificate
  std::filesystem::path cert_file_;
  std::filesystem::path ca_file_;
  std::unique_ptr<Issuer> issuer_;  // null with a configured certificate
};

}  // namespace argon::proxy
