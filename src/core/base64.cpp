// Standard base64 (RFC 4648 §4, '+' '/' and '=' padding) on top of OpenSSL's EVP_EncodeBlock and
// EVP_DecodeBlock.
//
// Why not just call EVP_DecodeBlock: it skips leading/trailing whitespace, keeps the bytes that padding
// stands for (it returns 3 bytes per 4 characters, padding included) and its notion of "invalid" is
// looser than ours. So the input is checked here first, strictly:
//   - length a multiple of 4 (padding required), no whitespace, only the 64 alphabet characters;
//   - '=' only as the last one or two characters;
//   - the unused bits before the padding are zero (RFC 4648 §3.5 allows a decoder to reject them;
//     we do, so every byte string has exactly one accepted encoding).
// Then EVP_DecodeBlock does the work and the padding bytes are cut off.
#include "core/base64.h"

#include <openssl/evp.h>

namespace mg {

namespace {

// The 6-bit value of a base64 alphabet character, or -1.
int b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// EVP_*Block take an int length; larger inputs go through in pieces of this many input bytes
// (a multiple of 3 for encoding, of 4 for decoding).
constexpr size_t kEncodeChunk = 3u << 24;  // 48 MiB in, 64 MiB out
constexpr size_t kDecodeChunk = 4u << 24;  // 64 MiB in, 48 MiB out

}  // namespace

std::string base64_encode(const void* data, size_t len) {
  const auto* in = static_cast<const unsigned char*>(data);
  const size_t out_len = (len + 2) / 3 * 4;
  std::string out;
  // +1: EVP_EncodeBlock writes a terminating NUL after the last chunk.
  out.resize(out_len + 1);
  auto* dst = reinterpret_cast<unsigned char*>(&out[0]);
  size_t done = 0;
  while (done < len) {
    const size_t n = len - done < kEncodeChunk ? len - done : kEncodeChunk;
    const int written = EVP_EncodeBlock(dst, in + done, static_cast<int>(n));
    dst += written;
    done += n;
  }
  out.resize(out_len);
  return out;
}

bool base64_decode(const std::string& in, std::string& out) {
  out.clear();
  const size_t len = in.size();
  if (len % 4 != 0) return false;
  if (len == 0) return true;

  size_t pad = 0;
  if (in[len - 1] == '=') pad = in[len - 2] == '=' ? 2 : 1;
  for (size_t i = 0; i < len - pad; ++i) {
    if (b64_value(static_cast<unsigned char>(in[i])) < 0) return false;  // also '=' too early
  }
  // The last data character must not carry bits that the padding says are absent.
  if (pad > 0) {
    const int last = b64_value(static_cast<unsigned char>(in[len - pad - 1]));
    const int unused_mask = pad == 1 ? 0x03 : 0x0F;
    if (last & unused_mask) return false;
  }

  out.resize(len / 4 * 3);
  const auto* src = reinterpret_cast<const unsigned char*>(in.data());
  auto* dst = reinterpret_cast<unsigned char*>(&out[0]);
  size_t done = 0;
  while (done < len) {
    const size_t n = len - done < kDecodeChunk ? len - done : kDecodeChunk;
    const int got = EVP_DecodeBlock(dst, src + done, static_cast<int>(n));
    if (got < 0 || static_cast<size_t>(got) != n / 4 * 3) {  // cannot happen after the checks above
      out.clear();
      return false;
    }
    dst += got;
    done += n;
  }
  out.resize(out.size() - pad);
  return true;
}

bool base64url_decode(const std::string& in, std::string& out) {
  if (in.find_first_of("+/=") != std::string::npos) return false;
  std::string b64 = in;
  for (char& c : b64) {
    if (c == '-') c = '+';
    else if (c == '_') c = '/';
  }
  if (b64.size() % 4 == 1) return false;
  while (b64.size() % 4) b64 += '=';
  return base64_decode(b64, out);
}

std::string base64url_encode(const void* data, size_t len) {
  std::string s = base64_encode(data, len);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) {
    if (c == '+') c = '-';
    else if (c == '/') c = '_';
  }
  return s;
}

}  // namespace mg
