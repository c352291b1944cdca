// HTTP/1.1 request parsing on llhttp, with hard limits, and no I/O.
//
// feed() takes bytes as they arrive and stops at the end of each request, so the caller answers one
// request before it feeds the rest (pipelining keeps order). Bytes after an upgrade request belong to
// the new protocol: `consumed` tells where they start.
//
// Limits: the request head (request line + headers) over max_header_bytes or more than max_headers
// headers → 431; a body over max_body (by Content-Length or as it arrives) → 413; anything llhttp
// rejects → 400. After an error the parser is unusable: answer and close.
//
// Strict where RFC 9112 says a server must refuse (a proxy in front of us may read such a request
// otherwise, which is how requests are smuggled): obs-fold, an HTTP/1.1 request without Host, two
// Host headers, a Transfer-Encoding whose last coding is not chunked, and a request line without a
// version → 400; a coding before chunked (`gzip, chunked`) → 501; a version other than 1.x → 505.
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/limits.h"

namespace mg {

struct HttpRequest {
  std::string method;
  std::string target;  // as sent: path?query
  std::string path;    // percent-encoding kept
  std::string query;   // without '?'
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  bool keep_alive = true;
  bool upgrade = false;
  int http_major = 1, http_minor = 1;

  // The first header with this lower-case name, or nullptr.
  const std::string* header(const char* lower_name) const;
};

struct HttpLimits {
  uint32_t max_header_bytes = limit_defaults::kMaxHeaderBytes;
  uint32_t max_headers = limit_defaults::kMaxHeaders;
  uint32_t max_body = limit_defaults::kApiMaxBody;
};

class HttpParser {
 public:
  enum class Status { NeedMore, Complete, Error };

  explicit HttpParser(const HttpLimits& limits);
  HttpParser(const HttpParser&) = delete;
  HttpParser& operator=(const HttpParser&) = delete;

  // Parses up to one request. On Complete, request() holds it and `consumed` is how many bytes of
  // `data` it used; call next() before feeding the rest. On NeedMore all bytes were used.
  Status feed(const char* data, size_t len, size_t& consumed);
  // Prepares for the next request on the same connection.
  void next();
  const HttpRequest& request() const { return req_; }
  // Part of a request has come and it is not complete yet.
  bool in_request() const { return started_ && !complete_; }
  int error_status() const { return error_status_; }          // 400, 413, 431, 501 or 505
  const std::string& error_message() const { return error_message_; }

 private:
  static const llhttp_settings_t& settings();
  static int on_message_begin(llhttp_t* p);
  static int on_url(llhttp_t* p, const char* at, size_t len);
  static int on_header_field(llhttp_t* p, const char* at, size_t len);
  static int on_header_value(llhttp_t* p, const char* at, size_t len);
  static int on_header_value_complete(llhttp_t* p);
  static int on_headers_complete(llhttp_t* p);
  static int on_body(llhttp_t* p, const char* at, size_t len);
  static int on_message_complete(llhttp_t* p);
  int fail(int status, std::string message);
  bool head_within_limit(const char* end);

  llhttp_t parser_{};
  HttpLimits limits_;
  HttpRequest req_;
  std::string field_, value_;
  bool in_value_ = false;
  // Head size accounting: bytes of this request's head in earlier chunks, and where in the current
  // chunk the count starts (the target's first byte, or the chunk's start).
  size_t head_prior_ = 0;
  const char* head_origin_ = nullptr;
  bool in_head_ = false;
  bool target_started_ = false;
  bool complete_ = false;
  bool started_ = false;
  // Strictness (RFC 9112): Host headers seen, the Transfer-Encoding values joined, and what comes
  // right before a header value piece (to tell an obs-fold: a piece that starts a line).
  unsigned hosts_ = 0;
  std::string transfer_coding_;
  const char* chunk_start_ = nullptr;
  char prev_chunk_last_ = '\0';
  int error_status_ = 0;
  std::string error_message_;
};

}  // namespace mg
