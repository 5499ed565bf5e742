// libFuzzer target for everything the proxy parses before a client is authenticated: the startup
// packet, typed-message framing at arbitrary split points, boundary tracking, SASL and password
// messages, SCRAM exchanges, and the endpoint hints (SNI, options, password prefix). Any crash,
// sanitizer report or violated invariant is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "pgwire/message_framer.h"
#include "pgwire/messages.h"
#include "pgwire/scram.h"
#include "pgwire/startup_packet.h"
#include "pgwire/wire_format.h"
#include "proxy/endpoint_hint.h"

using namespace argon;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void fuzz_startup(std::string_view in) {
  if (in.size() < 4) return;
  auto len = pgwire::startup_body_length(in.substr(0, 4));
  if (!len) return;
  check(*len + 4 >= 8 && *len + 4 <= pgwire::kMaxStartupPacketLength);
  auto packet = pgwire::parse_startup_packet(in.substr(4, *len));
  if (packet && std::holds_alternative<pgwire::StartupMessage>(*packet)) {
    const auto& m = std::get<pgwire::StartupMessage>(*packet);
    check(m.get("user").has_value());
    // What the proxy forwards must parse back to the same parameters.
    auto again = pgwire::encode_startup_message(m);
    auto body_len = pgwire::startup_body_length(std::string_view(again).substr(0, 4));
    check(body_len.has_value());
    auto back = pgwire::parse_startup_packet(std::string_view(again).substr(4));
    check(back && std::get<pgwire::StartupMessage>(*back).params == m.params);
    (void)proxy::resolve_endpoint_hint(m.get("user").value_or(""), m.get("options").value_or(""));
  }
}

void fuzz_framing(std::string_view in, std::size_t split) {
  pgwire::MessageFramer whole(pgwire::kMaxAuthMessageLength);
  pgwire::MessageFramer parts(pgwire::kMaxAuthMessageLength);
  whole.feed(in);
  parts.feed(in.substr(0, split));
  std::string a, b;
  bool whole_failed = false;
  for (;;) {
    auto m = whole.next();
    if (!m) {
      whole_failed = true;
      break;
    }
    if (!*m) break;
    a.push_back((*m)->type);
    a.append((*m)->body);
    (void)pgwire::parse_sasl_initial_response((*m)->body);
    (void)pgwire::parse_password_message((*m)->body);
    (void)pgwire::parse_data_row((*m)->body);
    (void)pgwire::parse_error_response((*m)->body);
    (void)pgwire::parse_row_description((*m)->body);
  }
  bool fed_rest = false;
  for (;;) {
    auto m = parts.next();
    if (!m) {
      check(whole_failed);  // a split never turns a valid stream into an invalid one
      break;
    }
    if (!*m) {
      if (fed_rest) break;
      parts.feed(in.substr(split));
      fed_rest = true;
      continue;
    }
    b.push_back((*m)->type);
    b.append((*m)->body);
  }
  if (!whole_failed) check(a == b);

  pgwire::BoundaryTracker t;
  std::string_view rest = in;
  while (!rest.empty()) {
    auto n = t.consume_message_part(rest);
    if (!n) return;
    check(*n > 0 && *n <= rest.size());
    rest.remove_prefix(*n);
  }
}

void fuzz_scram(std::string_view in) {
  static const auto verifier =
      *pgwire::parse_scram_verifier(pgwire::make_scram_verifier("pencil", "0123456789abcdef", 16));
  auto cut = in.find('\n');
  std::string_view first = in.substr(0, cut);
  std::string_view final = cut == std::string_view::npos ? std::string_view{} : in.substr(cut + 1);
  for (bool tls : {false, true}) {
    pgwire::ScramServer server(verifier, tls ? std::string(32, 'h') : std::string());
    auto mech = first.starts_with("p=") ? pgwire::kScramSha256Plus : pgwire::kScramSha256;
    if (server.client_first(mech, first)) (void)server.client_final(final);
  }
  (void)pgwire::parse_scram_verifier(in);
  (void)proxy::split_endpoint_password(in);
  (void)pgwire::base64_decode(in.substr(0, 64));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      fuzz_startup(in);
      break;
    case 1:
      fuzz_framing(in, in.empty() ? 0 : data[0] % (in.size() + 1));
      break;
    default:
      fuzz_scram(in);
      break;
  }
  return 0;
}
