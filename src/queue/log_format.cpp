// The disk queue's on-disk format (queue/log_format.h, docs/queue-log.md): CRC-32C, the segment
// header, records, file and directory names, the cursor slots, and the scanner recovery walks
// segments with.
//
// The format is little-endian, and so is every host meshgate builds for (x86-64, arm64, armhf): the
// integers are copied in and out with memcpy (no unaligned casts) and not swapped, which the
// static_assert below makes a build error rather than a silently different format elsewhere.
//
// CRC-32C: the reflected polynomial 0x82F63B78, initial value and final xor all ones, so that
// crc32c(b, n2, crc32c(a, n1)) is the CRC of a followed by b. In software by slicing-by-8 (eight
// 256-entry tables, built at compile time); on x86-64 with SSE4.2's crc32 instruction when the CPU
// has it (checked once at run time, so the static x86-64 binary runs on CPUs without it); on
// aarch64 with the ARMv8 CRC32C instructions when the compiler targets them (__ARM_FEATURE_CRC32).
#include "queue/log_format.h"

#include <array>
#include <cstdio>
#include <cstring>

#include "core/hrw.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#define MG_CRC32C_X86 1
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
#include <arm_acle.h>
#define MG_CRC32C_ARM 1
#endif

namespace mg {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the queue's log format assumes a little-endian host");

namespace {

constexpr char kSegmentMagic[4] = {'M', 'G', 'Q', 'L'};
constexpr char kCursorMagic[4] = {'M', 'G', 'Q', 'C'};
constexpr size_t kCursorCrcOffset = 24;  // the slot's crc32c covers the 24 bytes before it
constexpr size_t kTopicDirMaxBytes = 200;

// ---- CRC-32C ----

struct CrcTables {
  uint32_t t[8][256] = {};
};

constexpr CrcTables make_crc_tables() {
  CrcTables tables;
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ ((c & 1) ? 0x82F63B78u : 0u);
    tables.t[0][i] = c;
  }
  for (int k = 1; k < 8; k++)
    for (uint32_t i = 0; i < 256; i++)
      tables.t[k][i] = (tables.t[k - 1][i] >> 8) ^ tables.t[0][tables.t[k - 1][i] & 0xFF];
  return tables;
}

constexpr CrcTables kCrc = make_crc_tables();

// The running (not yet inverted) CRC over n bytes.
uint32_t crc_update_portable(uint32_t crc, const unsigned char* p, size_t n) {
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    word ^= crc;
    crc = kCrc.t[7][word & 0xFF] ^ kCrc.t[6][(word >> 8) & 0xFF] ^ kCrc.t[5][(word >> 16) & 0xFF] ^
          kCrc.t[4][(word >> 24) & 0xFF] ^ kCrc.t[3][(word >> 32) & 0xFF] ^ kCrc.t[2][(word >> 40) & 0xFF] ^
          kCrc.t[1][(word >> 48) & 0xFF] ^ kCrc.t[0][word >> 56];
    p += 8;
    n -= 8;
  }
  while (n--) crc = (crc >> 8) ^ kCrc.t[0][(crc ^ *p++) & 0xFF];
  return crc;
}

#if defined(MG_CRC32C_X86) || defined(MG_CRC32C_ARM)
// One instruction per 8 bytes (and per byte of the tail); each instruction set names it its way.
#if defined(MG_CRC32C_X86)
#define MG_CRC32C_TARGET __attribute__((target("sse4.2")))
MG_CRC32C_TARGET inline uint32_t hw_crc_u64(uint32_t c, uint64_t w) { return static_cast<uint32_t>(_mm_crc32_u64(c, w)); }
MG_CRC32C_TARGET inline uint32_t hw_crc_u8(uint32_t c, uint8_t b) { return _mm_crc32_u8(c, b); }
bool have_hw_crc() {
  static const bool have = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") != 0;
  }();
  return have;
}
#else
#define MG_CRC32C_TARGET
inline uint32_t hw_crc_u64(uint32_t c, uint64_t w) { return __crc32cd(c, w); }
inline uint32_t hw_crc_u8(uint32_t c, uint8_t b) { return __crc32cb(c, b); }
constexpr bool have_hw_crc() { return true; }
#endif

MG_CRC32C_TARGET uint32_t crc_update_hw(uint32_t crc, const unsigned char* p, size_t n) {
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    crc = hw_crc_u64(crc, word);
  }
  while (n--) crc = hw_crc_u8(crc, *p++);
  return crc;
}
#endif

// ---- little-endian integers ----

void put_u32(std::string& out, uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }
void put_u64(std::string& out, uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); }
uint32_t get_u32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t get_u64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

bool is_plain_topic_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

}  // namespace

uint32_t crc32c_portable(const void* data, size_t n, uint32_t crc) {
  return ~crc_update_portable(~crc, static_cast<const unsigned char*>(data), n);
}

uint32_t crc32c(const void* data, size_t n, uint32_t crc) {
#if defined(MG_CRC32C_X86) || defined(MG_CRC32C_ARM)
  if (have_hw_crc()) return ~crc_update_hw(~crc, static_cast<const unsigned char*>(data), n);
#endif
  return crc32c_portable(data, n, crc);
}

// ---- segments and records ----

void append_segment_header(std::string& out, uint64_t first_seq) {
  out.append(kSegmentMagic, 4);
  out.push_back(static_cast<char>(kLogVersion));
  out.append(3, '\0');
  put_u64(out, first_seq);
}

bool parse_segment_header(std::string_view in, uint64_t& first_seq, std::string& error) {
  if (in.size() < kSegmentHeaderBytes) {
    error = "too short for a segment header (" + std::to_string(in.size()) + " of " +
            std::to_string(kSegmentHeaderBytes) + " bytes)";
    return false;
  }
  if (std::memcmp(in.data(), kSegmentMagic, 4) != 0) {
    error = "not a segment (no MGQL magic)";
    return false;
  }
  const auto version = static_cast<uint8_t>(in[4]);
  if (version != kLogVersion) {
    error = "segment format version " + std::to_string(version) + " (this build reads version " +
            std::to_string(kLogVersion) + ")";
    return false;
  }
  // Bytes 5..7 are written as zero and not looked at: a change that needs them changes the version.
  first_seq = get_u64(in.data() + 8);
  return true;
}

// The caller keeps the body within kRecordMaxBody (20 bytes + data + context): a longer record would
// be written, but a reader would take its length for corruption.
void append_record(std::string& out, uint64_t seq, uint64_t client, std::string_view data, std::string_view context) {
  const size_t body_len = kRecordMinBody + data.size() + context.size();
  out.reserve(out.size() + kRecordHeaderBytes + body_len);
  put_u32(out, static_cast<uint32_t>(body_len));
  const size_t crc_at = out.size();
  put_u32(out, 0);
  const size_t body_at = out.size();
  put_u64(out, seq);
  put_u64(out, client);
  put_u32(out, static_cast<uint32_t>(data.size()));
  out.append(data);
  out.append(context);
  const uint32_t crc = crc32c(out.data() + body_at, body_len);
  std::memcpy(&out[crc_at], &crc, 4);
}

// ---- names ----

std::string segment_file_name(uint64_t first_seq) {
  char name[32];
  std::snprintf(name, sizeof name, "%020llu.seg", static_cast<unsigned long long>(first_seq));
  return name;
}

bool parse_segment_file_name(std::string_view name, uint64_t& first_seq) {
  constexpr size_t kDigits = 20;
  if (name.size() != kDigits + 4 || name.substr(kDigits) != ".seg") return false;
  uint64_t v = 0;
  for (size_t i = 0; i < kDigits; i++) {
    const char c = name[i];
    if (c < '0' || c > '9') return false;
    const auto d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;  // 20 digits can pass 2^64 - 1
    v = v * 10 + d;
  }
  first_seq = v;
  return true;
}

std::string topic_dir_name(std::string_view topic) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : topic) {
    const auto c = static_cast<unsigned char>(ch);
    if (is_plain_topic_byte(c)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
    if (out.size() > kTopicDirMaxBytes) {
      char hashed[24];
      std::snprintf(hashed, sizeof hashed, "h-%016llx",
                    static_cast<unsigned long long>(stable_hash(topic.data(), topic.size())));
      return hashed;
    }
  }
  return out;
}

// ---- cursor ----

void encode_cursor_slot(char out[kCursorSlotBytes], uint64_t generation, uint64_t cursor) {
  std::string slot;
  slot.reserve(kCursorSlotBytes);
  slot.append(kCursorMagic, 4);
  slot.push_back(static_cast<char>(kLogVersion));
  slot.append(3, '\0');
  put_u64(slot, generation);
  put_u64(slot, cursor);
  put_u32(slot, crc32c(slot.data(), kCursorCrcOffset));
  put_u32(slot, 0);
  std::memcpy(out, slot.data(), kCursorSlotBytes);
}

bool decode_cursor_slot(const char in[kCursorSlotBytes], uint64_t& generation, uint64_t& cursor) {
  if (std::memcmp(in, kCursorMagic, 4) != 0 || static_cast<uint8_t>(in[4]) != kLogVersion) return false;
  if (get_u32(in + kCursorCrcOffset) != crc32c(in, kCursorCrcOffset)) return false;
  generation = get_u64(in + 8);
  cursor = get_u64(in + 16);
  return true;
}

bool decode_cursor_file(std::string_view in, uint64_t& generation, uint64_t& cursor) {
  if (in.size() < kCursorFileBytes) return false;
  uint64_t g[2] = {0, 0}, c[2] = {0, 0};
  const bool ok0 = decode_cursor_slot(in.data(), g[0], c[0]);
  const bool ok1 = decode_cursor_slot(in.data() + kCursorSlotBytes, g[1], c[1]);
  if (!ok0 && !ok1) return false;
  // Equal generations (which a writer never leaves): the lower cursor, so nothing is skipped.
  const int pick = !ok0 ? 1 : !ok1 ? 0 : (g[1] > g[0] || (g[1] == g[0] && c[1] < c[0])) ? 1 : 0;
  generation = g[pick];
  cursor = c[pick];
  return true;
}

// ---- scanner ----

// Cheap checks first (length, data length, sequence number), the checksum only for bytes that pass
// them, so that resync() over garbage costs little more than one look per offset.
LogScanner::Step LogScanner::record_at(size_t at, LogRecord& r) const {
  if (at > bytes_.size() || bytes_.size() - at < kRecordHeaderBytes) return Step::Incomplete;
  const char* p = bytes_.data() + at;
  const uint32_t body_len = get_u32(p);
  if (body_len < kRecordMinBody || body_len > kRecordMaxBody) return Step::Invalid;
  if (bytes_.size() - at - kRecordHeaderBytes < body_len) return Step::Incomplete;
  const char* body = p + kRecordHeaderBytes;
  const uint64_t seq = get_u64(body);
  const uint32_t data_len = get_u32(body + 16);
  if (data_len > body_len - kRecordMinBody || seq <= last_seq_) return Step::Invalid;
  if (crc32c(body, body_len) != get_u32(p + 4)) return Step::Invalid;
  r.seq = seq;
  r.client = get_u64(body + 8);
  r.data = std::string_view(body + kRecordMinBody, data_len);
  r.context = std::string_view(body + kRecordMinBody + data_len, body_len - kRecordMinBody - data_len);
  return Step::Record;
}

LogScanner::Step LogScanner::next(LogRecord& r) {
  if (offset_ >= bytes_.size()) return Step::End;
  const Step step = record_at(offset_, r);
  if (step == Step::Record) {
    offset_ += kRecordHeaderBytes + kRecordMinBody + r.data.size() + r.context.size();
    last_seq_ = r.seq;
  }
  return step;
}

bool LogScanner::resync() {
  LogRecord r;
  for (size_t at = offset_ + 1; at + kRecordHeaderBytes + kRecordMinBody <= bytes_.size(); at++) {
    if (record_at(at, r) != Step::Record) continue;
    skipped_bytes_ += at - offset_;
    offset_ = at;
    return true;
  }
  return false;
}

}  // namespace mg
