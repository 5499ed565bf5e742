// The proxy's TLS identity: a certificate and key from the configuration, or a self-signed pair
// generated on first start and kept in the data dir (so clients that pin it keep working). Also the
// certificate's tls-server-end-point hash, which SCRAM-SHA-256-PLUS binds the client's proof to.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"

namespace argon::proxy {

struct TlsOptions {
  std::filesystem::path cert_file;  // both empty: generate into `generated_dir`
  std::filesystem::path key_file;
  std::filesystem::path generated_dir;
  std::vector<std::string> dns_names;  // subjectAltNames of a generated certificate
};

class TlsContext {
 public:
  static Result<std::unique_ptr<TlsContext>> create(const TlsOptions& options);

  boost::asio::ssl::context& context() { return ctx_; }
  // RFC 5929 tls-server-end-point: the certificate hashed with its signature's digest (SHA-256 when
  // that is MD5 or SHA-1).
  const std::string& end_point_hash() const { return end_point_hash_; }
  const std::filesystem::path& cert_file() const { return cert_file_; }

 private:
  TlsContext() : ctx_(boost::asio::ssl::context::tls_server) {}
  boost::asio::ssl::context ctx_;
  std::string end_point_hash_;
  std::filesystem::path cert_file_;
};

}  // namespace argon::proxy
