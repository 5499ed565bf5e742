#include "pgwire/startup_packet.h"

#include <fmt/format.h>

#include "pgwire/wire_format.h"

namespace argon::pgwire {

std::optional<std::string> StartupMessage::get(std::string_view key) const {
  for (const auto& [k, v] : params) {
    if (k == key) return v;
  }
  return std::nullopt;
}

void StartupMessage::set(std::string_view key, std::string value) {
  for (auto& [k, v] : params) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  params.emplace_back(std::string(key), std::move(value));
}

void StartupMessage::erase(std::string_view key) {
  std::erase_if(params, [&](const auto& p) { return p.first == key; });
}

std::vector<std::string> StartupMessage::protocol_options() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : params) {
    if (k.starts_with("_pq_.")) out.push_back(k);
  }
  return out;
}

Result<std::size_t> startup_body_length(std::string_view length_word) {
  if (length_word.size() != 4) return fail(ErrorCode::kBadRequest, "incomplete startup packet");
  std::uint32_t len = load_be32(length_word.data());
  if (len < 8 || len > kMaxStartupPacketLength) {
    return fail(ErrorCode::kBadRequest,
                fmt::format("invalid startup packet length {} (allowed 8..{})", len,
                            kMaxStartupPacketLength));
  }
  return len - 4;
}

Result<StartupPacket> parse_startup_packet(std::string_view body) {
  WireReader r(body);
  auto code = r.int32();
  if (!code) return fail(ErrorCode::kBadRequest, "incomplete startup packet");
  switch (*code) {
    case kSslRequestCode:
      if (!r.at_end()) return fail(ErrorCode::kBadRequest, "invalid SSLRequest packet");
      return SslRequest{};
    case kGssEncRequestCode:
      if (!r.at_end()) return fail(ErrorCode::kBadRequest, "invalid GSSENCRequest packet");
      return GssEncRequest{};
    case kCancelRequestCode: {
      auto pid = r.int32();
      auto key = r.int32();
      if (!pid || !key || !r.at_end())
        return fail(ErrorCode::kBadRequest, "invalid CancelRequest packet");
      return CancelRequest{*pid, *key};
    }
    default:
      break;
  }
  const int major = *code >> 16;
  const int minor = *code & 0xffff;
  if (major != 3) {
    return fail(
        ErrorCode::kBadRequest,
        fmt::format("unsupported frontend protocol {}.{}: server supports 3.0", major, minor));
  }
  StartupMessage m;
  m.minor_version = minor;
  for (;;) {
    auto key = r.cstring();
    if (!key)
      return fail(ErrorCode::kBadRequest,
                  "invalid startup packet layout: expected terminator as last byte");
    if (key->empty()) break;
    auto value = r.cstring();
    if (!value)
      return fail(ErrorCode::kBadRequest,
                  "invalid startup packet layout: expected terminator as last byte");
    if (m.get(*key))
      return fail(ErrorCode::kBadRequest, fmt::format("duplicate startup parameter \"{}\"", *key));
    m.params.emplace_back(std::string(*key), std::string(*value));
  }
  if (!r.at_end())
    return fail(ErrorCode::kBadRequest,
                "invalid startup packet layout: expected terminator as last byte");
  auto user = m.get("user");
  if (!user || user->empty())
    return fail(ErrorCode::kBadRequest, "no PostgreSQL user name specified in startup packet");
  return m;
}

std::string encode_startup_message(const StartupMessage& m) {
  std::string body;
  append_be32(body, kProtocolVersion3);
  for (const auto& [k, v] : m.params) {
    body.append(k).push_back('\0');
    body.append(v).push_back('\0');
  }
  body.push_back('\0');
  std::string out;
  append_be32(out, static_cast<std::uint32_t>(body.size() + 4));
  return out + body;
}

std::string encode_cancel_request(const CancelRequest& c) {
  std::string out;
  append_be32(out, 16);
  append_be32(out, kCancelRequestCode);
  append_be32(out, static_cast<std::uint32_t>(c.process_id));
  append_be32(out, static_cast<std::uint32_t>(c.secret_key));
  return out;
}

}  // namespace argon::pgwire
