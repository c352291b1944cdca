// Network addresses as text, and the big-endian 32-bit lengths our framings use.
//
// One place for "host:port": IPv6 literals are bracketed when written ("[::1]:80") and unbracketed
// when split, so an address read from a config or a peer round-trips.
#pragma once

#include <cstdint>
#include <string>

namespace mg {

// "host:port", or "[host]:port" for an IPv6 literal not already bracketed.
std::string host_port(const std::string& host, int port);
// Splits at the last ':' and strips IPv6 brackets. False when there is no host or no port text.
bool split_host_port(const std::string& addr, std::string& host, std::string& port);
// The same, with the port checked as a number 1..65535.
bool split_host_port(const std::string& addr, std::string& host, int& port);

inline uint32_t read_be32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

inline void append_be32(std::string& out, uint32_t n) {
  out.push_back(static_cast<char>(n >> 24));
  out.push_back(static_cast<char>(n >> 16));
  out.push_back(static_cast<char>(n >> 8));
  out.push_back(static_cast<char>(n));
}

}  // namespace mg
