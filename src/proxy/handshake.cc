// The startup phase: SSLRequest is answered with TLS, GSSENCRequest is declined, a CancelRequest
// is forwarded, plaintext is refused unless allowed, a protocol newer than 3.0 gets a
// NegotiateProtocolVersion, and the endpoint comes from SNI, `options` or the password
// (endpoint_hint.h). Internal roles are refused here, before anything else happens.
#include <fmt/format.h>

#include <boost/asio/use_awaitable.hpp>

#include "pgwire/messages.h"
#include "pgwire/startup_packet.h"
#include "proxy/endpoint_hint.h"
#include "proxy/proxy_context.h"
#include "proxy/session.h"
#include "proxy/tls_context.h"

namespace argon::proxy {

namespace asio = boost::asio;
using asio::awaitable;
using namespace std::chrono_literals;

namespace {

constexpr auto kCancelDeadline = 5s;

}  // namespace

awaitable<Result<std::optional<pgwire::StartupMessage>>> Session::read_startup() {
  using Out = Result<std::optional<pgwire::StartupMessage>>;
  // At most: GSSENCRequest, SSLRequest, then the StartupMessage.
  for (int round = 0; round < 3; ++round) {
    std::string len_word;
    co_await client_.read_exact(len_word, 4);
    auto len = pgwire::startup_body_length(len_word);
    if (!len) co_return Out(std::unexpected(len.error()));
    std::string body;
    co_await client_.read_exact(body, *len);
    auto packet = pgwire::parse_startup_packet(body);
    if (!packet) co_return Out(std::unexpected(packet.error()));
    if (std::holds_alternative<pgwire::SslRequest>(*packet)) {
      if (client_.tunneled()) {  // the WebSocket is encrypted (wss) or plaintext is allowed
        co_await client_.write("N");
        continue;
      }
      if (client_.encrypted())
        co_return Out(
            fail(ErrorCode::kBadRequest, "SSLRequest received on an encrypted connection"));
      if (!proxy_->tls) {
        co_await client_.write("N");
        continue;
      }
      co_await client_.write("S");
      co_await client_.start_tls(proxy_->tls->context().native_handle());
      continue;
    }
    if (std::holds_alternative<pgwire::GssEncRequest>(*packet)) {
      if (client_.encrypted())
        co_return Out(
            fail(ErrorCode::kBadRequest, "GSSENCRequest received on an encrypted connection"));
      co_await client_.write("N");
      continue;
    }
    if (auto* c = std::get_if<pgwire::CancelRequest>(&*packet)) {
      // PostgreSQL also ignores unknown keys silently.
      if (auto target = proxy_->cancel_keys.find({c->process_id, c->secret_key})) {
        co_await forward_cancel(executor_, *target, kCancelDeadline);
      }
      co_return Out(std::optional<pgwire::StartupMessage>{});
    }
    co_return Out(std::get<pgwire::StartupMessage>(std::move(*packet)));
  }
  co_return Out(
      fail(ErrorCode::kBadRequest, "too many negotiation packets before the startup message"));
}

awaitable<Result<bool>> Session::handshake() {
  auto startup = co_await read_startup();
  if (!startup) co_return std::unexpected(startup.error());
  if (!*startup) co_return false;
  startup_ = std::move(**startup);
  if (!client_.encrypted() && !proxy_->options.allow_plaintext) {
    co_return fail(ErrorCode::kForbidden,
                   "this Argon proxy accepts only TLS connections: connect with sslmode=require");
  }
  if (startup_.minor_version > 0 || !startup_.protocol_options().empty()) {
    const std::string out = pgwire::negotiate_protocol_version(0, startup_.protocol_options());
    co_await client_.write(out);
    for (const auto& o : startup_.protocol_options()) startup_.erase(o);
  }
  user_ = *startup_.get("user");
  if (!startup_.get("database")) startup_.set("database", user_);

  const std::string sni = client_.server_name();
  const std::string options = startup_.get("options").value_or("");
  auto hint = resolve_endpoint_hint(sni, options);
  if (!hint) co_return std::unexpected(hint.error());
  if (hint->remaining_options.empty()) {
    startup_.erase("options");
  } else {
    startup_.set("options", hint->remaining_options);
  }
  if (proxy_->reserved(user_)) {
    co_return fail(
        ErrorCode::kForbidden,
        fmt::format("role \"{}\" is reserved for Argon's internal use; connect as one of your "
                    "project's roles (GET /projects/{{id}}/branches/{{id}}/roles lists them)",
                    user_));
  }
  endpoint_id_ = hint->endpoint_id;
  if (endpoint_id_.empty()) {
    auto st = co_await endpoint_from_password();
    if (!st) co_return std::unexpected(st.error());
  } else if (client_.tunneled()) {
    // Neon's driver sends its password over the WebSocket before being asked (pipelineConnect),
    // so the tunnel asks for a cleartext password, not SCRAM; the WebSocket's TLS protects it.
    auto password = co_await read_cleartext_password();
    if (!password) co_return std::unexpected(password.error());
    if (password->starts_with("endpoint=")) {
      auto split = split_endpoint_password(*password);
      if (!split) co_return std::unexpected(split.error());
      if (split->first != endpoint_id_) {
        co_return fail(ErrorCode::kBadRequest,
                       fmt::format("the host names endpoint {} but the password names {}; use one",
                                   endpoint_id_, split->first));
      }
      cleartext_ = std::move(split->second);
    } else {
      cleartext_ = std::move(*password);
    }
  }
  co_return true;
}

awaitable<Result<std::string>> Session::read_cleartext_password() {
  {
    const std::string out = pgwire::authentication_cleartext_password();
    co_await client_.write(out);
  }
  auto msg = co_await read_message();
  if (!msg) co_return std::unexpected(msg.error());
  if (msg->first != 'p') co_return fail(ErrorCode::kBadRequest, "expected a password message");
  co_return pgwire::parse_password_message(msg->second);
}

awaitable<Status> Session::endpoint_from_password() {
  auto password = co_await read_cleartext_password();
  if (!password) co_return std::unexpected(password.error());
  auto split = split_endpoint_password(*password);
  if (!split) co_return std::unexpected(split.error());
  endpoint_id_ = split->first;
  cleartext_ = std::move(split->second);
  co_return Status{};
}

}  // namespace argon::proxy
