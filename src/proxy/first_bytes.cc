// The first phase: what the client speaks, told apart on the proxy's one port by its first byte.
// A PostgreSQL client starts with a startup packet (SSLRequest, GSSENCRequest, CancelRequest or a
// StartupMessage), whose length word begins with a zero byte. A TLS ClientHello begins with 0x16:
// the handshake runs here, and its ALPN says the rest, `postgresql` for a PostgreSQL client using
// direct TLS (PostgreSQL 17's sslnegotiation=direct), HTTP otherwise. Anything else is a plaintext
// HTTP request, served only where plaintext is allowed (http_server.cc refuses it otherwise).
#include "proxy/proxy_context.h"
#include "proxy/session.h"
#include "proxy/tls_context.h"

namespace argon::proxy {

namespace asio = boost::asio;
using asio::awaitable;

namespace {

constexpr unsigned char kTlsHandshakeRecord = 0x16;

}  // namespace

awaitable<Result<bool>> Session::speaks_http() {
  const unsigned char first = co_await client_.peek_byte();
  if (first == 0) co_return false;
  if (first != kTlsHandshakeRecord) co_return true;
  if (!proxy_->tls) {
    co_return fail(ErrorCode::kBadRequest, "this Argon proxy has no TLS certificate configured");
  }
  co_await client_.start_tls(proxy_->tls->context().native_handle());
  co_return TlsContext::alpn(client_.ssl()) != "postgresql";
}

}  // namespace argon::proxy
