#include "proxy/tls_context.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <ctime>

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

using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

constexpr long kYear = 365L * 24 * 3600;

// Adds the extension `nid` with OpenSSL's config syntax (`value`), issued by `issuer`.
Status add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
  if (!ext) return fail(ErrorCode::kInternal, "cannot build a certificate extension", value);
  const int added = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (added != 1) return fail(ErrorCode::kInternal, "cannot add a certificate extension", value);
  return {};
}

PkeyPtr new_key() { return PkeyPtr(EVP_EC_gen("P-256")); }

using Extensions = std::vector<std::pair<int, std::string>>;

// A P-256 certificate for `common_name` and `key`, valid from an hour ago for `years`, signed by
// `issuer` with `issuer_key` (itself when `issuer` is null).
Result<X509Ptr> make_certificate(const char* common_name, int years, EVP_PKEY* key, X509* issuer,
                                 EVP_PKEY* issuer_key, const Extensions& extensions) {
  X509Ptr cert(X509_new());
  if (!key || !cert) return fail(ErrorCode::kInternal, "cannot generate a TLS key");
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) {
    return fail(ErrorCode::kInternal, "no random bytes for a certificate serial");
  }
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), years * kYear);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Argon"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name), -1, -1, 0);
  if (!issuer) issuer = cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer));
  for (const auto& [nid, value] : extensions) {
    ARGON_RETURN_IF_ERROR(add_extension(cert.get(), issuer, nid, value));
  }
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) {
    return fail(ErrorCode::kInternal, "cannot sign a TLS certificate");
  }
  return cert;
}

// A server certificate's extensions, for `san` ("DNS:a,IP:b").
Extensions server_extensions(const std::string& san) {
  return {{NID_subject_alt_name, san},
          {NID_basic_constraints, "CA:FALSE"},
          {NID_key_usage, "critical,digitalSignature"},
          {NID_ext_key_usage, "serverAuth"},
          {NID_authority_key_identifier, "keyid:always"}};
}

std::string pem(const X509* cert) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  return bio_string(bio.get());
}

std::string pem(EVP_PKEY* key) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  return bio_string(bio.get());
}

X509Ptr read_certificate(const fs::path& path) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return nullptr;
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

PkeyPtr read_key(const fs::path& path) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return nullptr;
  return PkeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

// The data dir's certificate authority (ca.crt, and ca.key readable only by argond), created on
// first use: valid for twenty years, for signing the proxy's certificate and nothing else.
Status load_or_create_ca(const fs::path& dir, X509Ptr& ca, PkeyPtr& ca_key) {
  const fs::path cert_path = dir / "ca.crt";
  const fs::path key_path = dir / "ca.key";
  std::error_code ec;
  if (fs::exists(cert_path, ec) && fs::exists(key_path, ec)) {
    ca = read_certificate(cert_path);
    ca_key = read_key(key_path);
    if (!ca || !ca_key || X509_check_private_key(ca.get(), ca_key.get()) != 1) {
      return fail(ErrorCode::kBadRequest,
                  fmt::format("{} and {} are not a certificate and its key; remove both to have "
                              "argond create a new authority (clients must then trust the new one)",
                              cert_path.string(), key_path.string()));
    }
    return {};
  }
  ca_key = new_key();
  auto made = make_certificate("Argon local CA", 20, ca_key.get(), nullptr, ca_key.get(),
                               {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                                {NID_key_usage, "critical,keyCertSign,cRLSign"},
                                {NID_subject_key_identifier, "hash"}});
  if (!made) return std::unexpected(made.error());
  ca = std::move(*made);
  // Key first: a certificate without its key would be useless on the next start.
  ARGON_RETURN_IF_ERROR(write_file_atomic(key_path, pem(ca_key.get()), 0600));
  ARGON_RETURN_IF_ERROR(write_file_atomic(cert_path, pem(ca.get()), 0644));
  spdlog::info("proxy: created a local certificate authority {}", cert_path.string());
  return {};
}

// The proxy's certificate from the data dir's authority, for `dns_names` and the loopback
// addresses, valid for ten years.
Status issue_proxy_certificate(const fs::path& dir, const fs::path& cert_path,
                               const fs::path& key_path,
                               const std::vector<std::string>& dns_names) {
  X509Ptr ca;
  PkeyPtr ca_key;
  ARGON_RETURN_IF_ERROR(load_or_create_ca(dir, ca, ca_key));
  std::string san;
  for (const auto& n : dns_names) san += "DNS:" + n + ",";
  san += "IP:127.0.0.1,IP:::1";
  PkeyPtr key = new_key();
  auto cert = make_certificate("Argon proxy", 10, key.get(), ca.get(), ca_key.get(),
                               server_extensions(san));
  if (!cert) return std::unexpected(cert.error());
  ARGON_RETURN_IF_ERROR(write_file_atomic(key_path, pem(key.get()), 0600));
  ARGON_RETURN_IF_ERROR(write_file_atomic(cert_path, pem(cert->get()), 0644));
  spdlog::info("proxy: issued the proxy's TLS certificate {} from {}", cert_path.string(),
               (dir / "ca.crt").string());
  return {};
}

// Whether the generated certificate at `cert_path` can stay: issued by the authority beside it
// (not the self-signed one of earlier versions), naming every one of `dns_names`, and valid for
// at least another 30 days.
bool generated_certificate_current(const fs::path& dir, const fs::path& cert_path,
                                   const std::vector<std::string>& dns_names) {
  X509Ptr cert = read_certificate(cert_path);
  X509Ptr ca = read_certificate(dir / "ca.crt");
  if (!cert || !ca) return false;
  if (X509_check_issued(ca.get(), cert.get()) != X509_V_OK) return false;
  PkeyPtr ca_public(X509_get_pubkey(ca.get()));
  if (!ca_public || X509_verify(cert.get(), ca_public.get()) != 1) return false;
  for (const auto& n : dns_names) {
    if (X509_check_host(cert.get(), n.data(), n.size(), 0, nullptr) != 1) return false;
  }
  time_t soon = time(nullptr) + 30L * 24 * 3600;
  return X509_cmp_time(X509_get0_notAfter(cert.get()), &soon) > 0;
}

std::string certificate_end_point_hash(const X509* cert) {
  int md_nid = NID_undef;
  if (X509_get_signature_info(const_cast<X509*>(cert), &md_nid, nullptr, nullptr, nullptr) == 0)
    md_nid = NID_undef;
  const EVP_MD* md = nullptr;
  if (md_nid != NID_md5 && md_nid != NID_sha1 && md_nid != NID_undef)
    md = EVP_get_digestbynid(md_nid);
  if (!md) md = EVP_sha256();
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, md, out, &len) == 0) return "";
  return std::string(reinterpret_cast<char*>(out), len);
}

// `host` in lower case when it is one DNS label (letters, digits, inner hyphens) over one of
// `suffixes`, else "".
std::string single_label_host(std::string_view host, const std::vector<std::string>& suffixes) {
  std::string h(host);
  for (char& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& suffix : suffixes) {
    if (h.size() <= suffix.size() + 1 || !h.ends_with(suffix)) continue;
    const std::string_view label(h.data(), h.size() - suffix.size() - 1);
    if (h[label.size()] != '.' || label.size() > 63) continue;
    if (label.front() == '-' || label.back() == '-') continue;
    bool ok = true;
    for (char c : label) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-');
    if (ok) return h;
  }
  return "";
}

}  // namespace

struct TlsContext::Issuer {
  X509Ptr ca;
  PkeyPtr ca_key;
  PkeyPtr key;                        // the proxy's, shared by every certificate issued
  std::vector<std::string> suffixes;  // from the `*.<suffix>` names

  std::mutex mu;
  struct Entry {
    X509Ptr cert;
    std::list<std::string>::iterator use;  // in `recent`, newest first
  };
  std::unordered_map<std::string, Entry> issued;
  std::list<std::string> recent;
};

TlsContext::TlsContext() : ctx_(boost::asio::ssl::context::tls_server) {}
TlsContext::~TlsContext() = default;

std::string TlsContext::end_point_hash(const SSL* ssl) const {
  const X509* cert = SSL_get_certificate(ssl);
  return cert ? certificate_end_point_hash(cert) : end_point_hash_;
}

std::size_t TlsContext::issued_count() const {
  if (!issuer_) return 0;
  std::lock_guard l(issuer_->mu);
  return issuer_->issued.size();
}

X509* TlsContext::certificate_for(std::string_view host) {
  const std::string name = single_label_host(host, issuer_->suffixes);
  if (name.empty()) return nullptr;
  Issuer& is = *issuer_;
  std::lock_guard l(is.mu);
  if (auto it = is.issued.find(name); it != is.issued.end()) {
    is.recent.splice(is.recent.begin(), is.recent, it->second.use);
    return it->second.cert.get();
  }
  auto cert = make_certificate("Argon proxy", 10, is.key.get(), is.ca.get(), is.ca_key.get(),
                               server_extensions("DNS:" + name));
  if (!cert) {
    spdlog::warn("proxy: cannot issue a certificate for {}: {}", name, cert.error().message);
    return nullptr;
  }
  if (is.issued.size() >= kMaxIssued) {
    is.issued.erase(is.recent.back());
    is.recent.pop_back();
  }
  is.recent.push_front(name);
  auto& entry = is.issued[name];
  entry.cert = std::move(*cert);
  entry.use = is.recent.begin();
  return entry.cert.get();
}

int TlsContext::on_alpn(SSL*, const unsigned char** out, unsigned char* outlen,
                        const unsigned char* in, unsigned int inlen, void*) {
  // The client's list is length-prefixed names; the proxy prefers PostgreSQL, then HTTP/1.1.
  for (const std::string_view want :
       {std::string_view("postgresql"), std::string_view("http/1.1")}) {
    for (unsigned int i = 0; i < inlen;) {
      const unsigned int n = in[i];
      if (i + 1 + n > inlen) break;
      if (std::string_view(reinterpret_cast<const char*>(in + i + 1), n) == want) {
        *out = in + i + 1;
        *outlen = static_cast<unsigned char>(n);
        return SSL_TLSEXT_ERR_OK;
      }
      i += 1 + n;
    }
  }
  return SSL_TLSEXT_ERR_NOACK;  // no ALPN: HTTP/1.1 as a client without ALPN speaks it
}

std::string_view TlsContext::alpn(const SSL* ssl) {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl, &data, &len);
  return data ? std::string_view(reinterpret_cast<const char*>(data), len) : std::string_view();
}

int TlsContext::on_server_name(SSL* ssl, int*, void* arg) {
  auto* self = static_cast<TlsContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  // SSL_use_certificate takes its own reference: an eviction from the cache cannot pull the
  // certificate from under a handshake.
  if (name) {
    if (X509* cert = self->certificate_for(name)) SSL_use_certificate(ssl, cert);
  }
  return SSL_TLSEXT_ERR_OK;
}

Result<std::unique_ptr<TlsContext>> TlsContext::create(const TlsOptions& options) {
  fs::path cert = options.cert_file;
  fs::path key = options.key_file;
  if (cert.empty() != key.empty()) {
    return fail(ErrorCode::kBadRequest,
                "give both --proxy-tls-cert and --proxy-tls-key, or neither");
  }
  if (cert.empty()) {
    const fs::path& dir = options.generated_dir;
    cert = dir / "proxy.crt";
    key = dir / "proxy.key";
    std::error_code ec;
    if (!fs::exists(key, ec) || !generated_certificate_current(dir, cert, options.dns_names)) {
      fs::create_directories(dir, ec);
      ARGON_RETURN_IF_ERROR(issue_proxy_certificate(dir, cert, key, options.dns_names));
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
  t->end_point_hash_ =
      certificate_end_point_hash(SSL_CTX_get0_certificate(t->ctx_.native_handle()));
  t->cert_file_ = cert;
  SSL_CTX_set_alpn_select_cb(t->ctx_.native_handle(), &TlsContext::on_alpn, nullptr);
  if (options.cert_file.empty()) {
    auto is = std::make_unique<Issuer>();
    const fs::path& dir = options.generated_dir;
    ARGON_RETURN_IF_ERROR(load_or_create_ca(dir, is->ca, is->ca_key));
    is->key = read_key(key);
    if (!is->key) return fail(ErrorCode::kInternal, fmt::format("cannot read {}", key.string()));
    for (const auto& n : options.dns_names) {
      if (n.starts_with("*.") && n.size() > 2) is->suffixes.push_back(n.substr(2));
    }
    t->issuer_ = std::move(is);
    t->ca_file_ = dir / "ca.crt";
    SSL_CTX_set_tlsext_servername_callback(t->ctx_.native_handle(), &TlsContext::on_server_name);
    SSL_CTX_set_tlsext_servername_arg(t->ctx_.native_handle(), t.get());
  }
  return t;
}

}  // namespace argon::proxy
