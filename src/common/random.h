// Cryptographically secure randomness (OpenSSL) and hashing used for ids, passwords and API keys.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace argon {

// Uniform in [0, bound). bound > 0.
uint64_t secure_random(uint64_t bound);
// `length` characters drawn from `alphabet`.
std::string random_string(size_t length, std::string_view alphabet);
// A password for a Postgres role: 24 characters, letters and digits (no quoting needed anywhere).
std::string generate_password();
// RFC 4122 version-4 UUID, lowercase.
std::string uuid_v4();
// Lowercase hex SHA-256.
std::string sha256_hex(std::string_view data);
// Constant-time comparison of two equal-length strings (false when lengths differ).
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace argon
