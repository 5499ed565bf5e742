// The client's authentication, against the role's current verifier in the branch (read over the
// admin pool just before): the cleartext password of the `endpoint=<id>;<password>` form, or
// SCRAM-SHA-256, or -PLUS bound to the proxy's certificate over TLS. Whether the role may log in
// is checked after the password, so probing reveals nothing about roles.
#include <fmt/format.h>

#include <vector>

#include "pgwire/messages.h"
#include "pgwire/scram.h"
#include "proxy/proxy_context.h"
#include "proxy/session.h"
#include "proxy/tls_context.h"

namespace argon::proxy {

namespace asio = boost::asio;
using asio::awaitable;

awaitable<Status> Session::authenticate(const RoleSecret& secret) {
  if (!secret.exists) co_return std::unexpected(denied());
  auto verifier = pgwire::parse_scram_verifier(secret.verifier);
  if (!verifier) co_return std::unexpected(denied());
  if (cleartext_) {
    if (!proxy_->passwords.matches(secret.verifier, *cleartext_))
      co_return std::unexpected(denied());
  } else {
    auto st = co_await scram_exchange(*verifier);
    if (!st) co_return st;
  }
  if (!secret.can_login) {
    co_return fail(ErrorCode::kForbidden,
                   fmt::format("role \"{}\" is not permitted to log in", user_));
  }
  if (secret.expired) co_return std::unexpected(denied());
  co_return Status{};
}

awaitable<Status> Session::scram_exchange(const pgwire::ScramVerifier& verifier) {
  std::vector<std::string> mechanisms;
  if (client_.encrypted()) mechanisms.emplace_back(pgwire::kScramSha256Plus);
  mechanisms.emplace_back(pgwire::kScramSha256);
  {
    const std::string out = pgwire::authentication_sasl(mechanisms);
    co_await client_.write(out);
  }
  pgwire::ScramServer scram(
      verifier, client_.encrypted() ? proxy_->tls->end_point_hash(client_.ssl()) : std::string());
  auto first = co_await read_message();
  if (!first) co_return std::unexpected(first.error());
  if (first->first != 'p')
    co_return fail(ErrorCode::kBadRequest, "expected a SASLInitialResponse message");
  auto initial = pgwire::parse_sasl_initial_response(first->second);
  if (!initial) co_return std::unexpected(initial.error());
  auto server_first = scram.client_first(initial->mechanism, initial->data);
  if (!server_first) co_return std::unexpected(server_first.error());
  {
    const std::string out = pgwire::authentication_sasl_continue(*server_first);
    co_await client_.write(out);
  }
  auto final = co_await read_message();
  if (!final) co_return std::unexpected(final.error());
  if (final->first != 'p')
    co_return fail(ErrorCode::kBadRequest, "expected a SASLResponse message");
  auto server_final = scram.client_final(final->second);
  if (!server_final) {
    if (server_final.error().code == ErrorCode::kUnauthorized) co_return std::unexpected(denied());
    co_return std::unexpected(server_final.error());
  }
  const std::string out = pgwire::authentication_sasl_final(*server_final);
  co_await client_.write(out);
  co_return Status{};
}

}  // namespace argon::proxy
