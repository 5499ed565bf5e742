#include "proxy/tls_context.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>

#include "common/file_util.h"

namespace argon::proxy {

namespace fs = std::filesystem;

namespace {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};

std::string bio_string(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

// A self-signed P-256 certificate valid for ten years, naming `dns_names` and 127.0.0.1.
Status generate(const fs::path& cert_path, const fs::path& key_path,
                const std::vector<std::string>& dns_names) {
  std::unique_ptr<EVP_PKEY, PkeyFree> key(EVP_EC_gen("P-256"));
  std::unique_ptr<X509, X509Free> cert(X509_new());
  if (!key || !cert) return fail(ErrorCode::kInternal, "cannot generate the proxy's TLS key");
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 10L * 365 * 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Argon"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Argon proxy (self-signed)"),
                             -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  std::string san;
  for (const auto& n : dns_names) san += "DNS:" + n + ",";
  san += "IP:127.0.0.1,IP:::1";
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert.get(), cert.get(), nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, san.c_str());
  if (!ext) return fail(ErrorCode::kInternal, "cannot build the proxy certificate's names", san);
  X509_add_ext(cert.get(), ext, -1);
  X509_EXTENSION_free(ext);
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
    return fail(ErrorCode::kInternal, "cannot sign the proxy's TLS certificate");
  }
  std::unique_ptr<BIO, BioFree> key_bio(BIO_new(BIO_s_mem()));
  std::unique_ptr<BIO, BioFree> cert_bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  PEM_write_bio_X509(cert_bio.get(), cert.get());
  // Key first: a certificate without its key would be useless on the next start.
  ARGON_RETURN_IF_ERROR(write_file_atomic(key_path, bio_string(key_bio.get()), 0600));
  ARGON_RETURN_IF_ERROR(write_file_atomic(cert_path, bio_string(cert_bio.get()), 0644));
  return {};
}

Result<std::string> certificate_end_point_hash(const fs::path& cert_path) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_file(cert_path.c_str(), "r"));
  if (!bio)
    return fail(ErrorCode::kInternal,
                fmt::format("cannot read TLS certificate {}", cert_path.string()));
  std::unique_ptr<X509, X509Free> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert)
    return fail(ErrorCode::kInternal,
                fmt::format("{} is not a PEM certificate", cert_path.string()));
  int md_nid = NID_undef;
  if (X509_get_signature_info(cert.get(), &md_nid, nullptr, nullptr, nullptr) == 0)
    md_nid = NID_undef;
  const EVP_MD* md = nullptr;
  if (md_nid != NID_md5 && md_nid != NID_sha1 && md_nid != NID_undef)
    md = EVP_get_digestbynid(md_nid);
  if (!md) md = EVP_sha256();
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert.get(), md, out, &len) == 0)
    return fail(ErrorCode::kInternal, "cannot hash the TLS certificate");
  return std::string(reinterpret_cast<char*>(out), len);
}

}  // namespace

Result<std::unique_ptr<TlsContext>> TlsContext::create(const TlsOptions& options) {
  fs::path cert = options.cert_file;
  fs::path key = options.key_file;
  if (cert.empty() != key.empty()) {
    return fail(ErrorCode::kBadRequest,
                "give both --proxy-tls-cert and --proxy-tls-key, or neither");
  }
  if (cert.empty()) {
    cert = options.generated_dir / "proxy.crt";
    key = options.generated_dir / "proxy.key";
    std::error_code ec;
    if (!fs::exists(cert, ec) || !fs::exists(key, ec)) {
      fs::create_directories(options.generated_dir, ec);
      ARGON_RETURN_IF_ERROR(generate(cert, key, options.dns_names));
      spdlog::info("proxy: generated a self-signed TLS certificate {}", cert.string());
    }
  }
  std::unique_ptr<TlsContext> t(new TlsContext());
  boost::system::error_code ec;
  t->ctx_.set_options(boost::asio::ssl::context::default_workarounds |
                      boost::asio::ssl::context::no_sslv2 | boost::asio::ssl::context::no_sslv3 |
                      boost::asio::ssl::context::no_tlsv1 | boost::asio::ssl::context::no_tlsv1_1);
  // One read per record instead of header then body; no session tickets (libpq does not resume).
  SSL_CTX_set_read_ahead(t->ctx_.native_handle(), 1);
  SSL_CTX_set_num_tickets(t->ctx_.native_handle(), 0);
  t->ctx_.use_certificate_chain_file(cert.string(), ec);
  if (ec)
    return fail(ErrorCode::kBadRequest,
                fmt::format("cannot load TLS certificate {}: {}", cert.string(), ec.message()));
  t->ctx_.use_private_key_file(key.string(), boost::asio::ssl::context::pem, ec);
  if (ec)
    return fail(ErrorCode::kBadRequest,
                fmt::format("cannot load TLS key {}: {}", key.string(), ec.message()));
  if (SSL_CTX_check_private_key(t->ctx_.native_handle()) != 1) {
    return fail(ErrorCode::kBadRequest, fmt::format("TLS key {} does not match certificate {}",
                                                    key.string(), cert.string()));
  }
  auto hash = certificate_end_point_hash(cert);
  if (!hash) return std::unexpected(hash.error());
  t->end_point_hash_ = std::move(*hash);
  t->cert_file_ = cert;
  return t;
}

}  // namespace argon::proxy
