// Fuzz target: the disk queue's record scanner, the way recovery walks a segment (queue/log_format.h):
// next() until the bytes end; on Incomplete or Invalid, resync() to the next whole valid record or
// stop there (a torn or corrupt tail). Offsets only grow and stay inside the bytes, sequence numbers
// grow, every record's texts lie inside the input and re-encode to exactly the bytes it was read
// from; reading the same bytes in two parts (extend() after the first) gives the same records up to
// the first damage. The segment header and cursor file parsers run on the input too.
#include <cassert>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "queue/log_format.h"

namespace {

std::string records(uint64_t first_seq, int n, size_t pad) {
  std::string out;
  for (int i = 0; i < n; i++) {
    const std::string data = "{\"n\":" + std::to_string(i) + ",\"p\":\"" + std::string(pad * static_cast<size_t>(i), 'p') + "\"}";
    mg::append_record(out, first_seq + static_cast<uint64_t>(i), 100 + static_cast<uint64_t>(i), data,
                      i % 2 ? "{\"user\":\"u\"}" : "");
  }
  return out;
}

struct Seen {
  uint64_t seq;
  size_t offset;
};

}  // namespace

std::vector<std::string> fuzz_seeds() {
  std::string header;
  mg::append_segment_header(header, 1);
  std::string cursor(mg::kCursorFileBytes, '\0');
  mg::encode_cursor_slot(cursor.data(), 3, 17);
  mg::encode_cursor_slot(cursor.data() + mg::kCursorSlotBytes, 4, 18);
  std::string binary;
  mg::append_record(binary, 9, 0, std::string("\0\xff\x01", 3), std::string(40, '\x80'));
  return {records(1, 5, 3), records(1000, 12, 1), records(7, 1, 0), binary + records(10, 3, 20), header + records(1, 3, 2),
          cursor, records(1, 4, 0).substr(0, 70), ""};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  // Recovery's walk.
  mg::LogScanner scan(in);
  std::vector<Seen> seen;
  size_t before_damage = SIZE_MAX;  // how many records come before the first Incomplete or Invalid
  std::string again;
  for (;;) {
    const size_t at = scan.offset();
    const uint64_t last = scan.last_seq();
    mg::LogRecord r;
    const mg::LogScanner::Step step = scan.next(r);
    assert(scan.offset() >= at && scan.offset() <= in.size());
    if (step == mg::LogScanner::Step::Record) {
      assert(r.seq > last && scan.last_seq() == r.seq);
      assert(r.data.data() >= in.data() && r.data.data() + r.data.size() <= in.data() + in.size());
      assert(r.context.data() == r.data.data() + r.data.size());
      assert(r.context.data() + r.context.size() <= in.data() + in.size());
      again.clear();
      mg::append_record(again, r.seq, r.client, r.data, r.context);
      assert(again.size() == scan.offset() - at && in.substr(at, again.size()) == again);
      seen.push_back({r.seq, at});
      continue;
    }
    assert(scan.offset() == at && scan.last_seq() == last);
    if (step == mg::LogScanner::Step::End) {
      assert(at == in.size());
      break;
    }
    if (before_damage == SIZE_MAX) before_damage = seen.size();
    const uint64_t skipped = scan.skipped_bytes();
    if (!scan.resync()) {
      assert(scan.offset() == at && scan.skipped_bytes() == skipped);
      break;
    }
    assert(scan.offset() > at && scan.offset() < in.size() && scan.skipped_bytes() == skipped + (scan.offset() - at));
  }

  // The same bytes arriving in two parts: the records up to the first damage are the same.
  const size_t cut = size / 3;
  mg::LogScanner part(in.substr(0, cut));
  bool extended = false;
  size_t k = 0;
  for (;;) {
    mg::LogRecord r;
    const mg::LogScanner::Step step = part.next(r);
    if (step == mg::LogScanner::Step::Record) {
      assert(k < seen.size() && seen[k].seq == r.seq && seen[k].offset + mg::record_bytes(r.data.size(), r.context.size()) == part.offset());
      k++;
      continue;
    }
    if (step == mg::LogScanner::Step::Invalid || extended) break;
    part.extend(in);
    extended = true;
  }
  assert(k == (before_damage == SIZE_MAX ? seen.size() : before_damage));

  uint64_t first_seq = 0;
  std::string error;
  if (!mg::parse_segment_header(in, first_seq, error)) assert(!error.empty());
  uint64_t generation = 0, cursor = 0;
  (void)mg::decode_cursor_file(in, generation, cursor);
  if (size >= mg::kCursorSlotBytes) (void)mg::decode_cursor_slot(in.data(), generation, cursor);
  return 0;
}
