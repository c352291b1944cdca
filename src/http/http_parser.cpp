#include "http/http_parser.h"

#include <algorithm>
#include <cctype>

namespace mg {

namespace {
HttpParser* self_of(llhttp_t* p) { return static_cast<HttpParser*>(p->data); }

// What a request's Transfer-Encoding list (every such header joined by commas) deserves: 0 when it
// is `chunked` alone; 400 when its last coding is not chunked, or chunked comes twice (RFC 9112
// 6.3: the length cannot be known, refuse and close); 501 when chunked comes last after codings we
// do not implement (6.1). Parameters (";q=...") count as part of the coding: none is defined for chunked.
int transfer_coding_status(const std::string& list) {
  std::vector<std::string> codings;
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = std::min(list.find(',', pos), list.size());
    std::string c = list.substr(pos, comma - pos);
    c.erase(0, c.find_first_not_of(" \t"));
    c.erase(c.find_last_not_of(" \t") + 1);
    std::transform(c.begin(), c.end(), c.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (!c.empty()) codings.push_back(std::move(c));
    pos = comma + 1;
  }
  if (codings.empty() || codings.back() != "chunked") return 400;
  if (std::count(codings.begin(), codings.end(), "chunked") > 1) return 400;
  return codings.size() == 1 ? 0 : 501;
}
}  // namespace

const std::string* HttpRequest::header(const char* lower_name) const {
  for (const auto& [k, v] : headers)
    if (k == lower_name) return &v;
  return nullptr;
}

const llhttp_settings_t& HttpParser::settings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t v;
    llhttp_settings_init(&v);
    v.on_message_begin = &HttpParser::on_message_begin;
    v.on_url = &HttpParser::on_url;
    v.on_header_field = &HttpParser::on_header_field;
    v.on_header_value = &HttpParser::on_header_value;
    v.on_header_value_complete = &HttpParser::on_header_value_complete;
    v.on_headers_complete = &HttpParser::on_headers_complete;
    v.on_body = &HttpParser::on_body;
    v.on_message_complete = &HttpParser::on_message_complete;
    return v;
  }();
  return s;
}

HttpParser::HttpParser(const HttpLimits& limits) : limits_(limits) {
  llhttp_init(&parser_, HTTP_REQUEST, &settings());
  parser_.data = this;
}

int HttpParser::fail(int status, std::string message) {
  error_status_ = status;
  error_message_ = std::move(message);
  return HPE_USER;
}

// The request head is measured by position, from the start of the target to `end`, so white space
// between tokens (which reaches no callback) counts too.
bool HttpParser::head_within_limit(const char* end) {
  return head_prior_ + static_cast<size_t>(end - head_origin_) <= limits_.max_header_bytes;
}

int HttpParser::on_message_begin(llhttp_t* p) {
  auto* self = self_of(p);
  self->req_ = HttpRequest{};
  self->field_.clear();
  self->value_.clear();
  self->in_value_ = false;
  self->head_prior_ = 0;
  self->in_head_ = true;
  self->target_started_ = false;
  self->started_ = true;
  self->hosts_ = 0;
  self->transfer_coding_.clear();
  return 0;
}

int HttpParser::on_url(llhttp_t* p, const char* at, size_t len) {
  auto* self = self_of(p);
  if (!self->target_started_) {
    self->target_started_ = true;
    self->head_origin_ = at;
  }
  if (!self->head_within_limit(at + len)) return self->fail(431, "request line and headers are larger than the limit");
  self->req_.target.append(at, len);
  return 0;
}

int HttpParser::on_header_field(llhttp_t* p, const char* at, size_t len) {
  auto* self = self_of(p);
  if (!self->head_within_limit(at + len)) return self->fail(431, "request line and headers are larger than the limit");
  if (self->in_value_) {  // a new header starts
    self->field_.clear();
    self->value_.clear();
    self->in_value_ = false;
  }
  self->field_.append(at, len);
  return 0;
}

int HttpParser::on_header_value(llhttp_t* p, const char* at, size_t len) {
  auto* self = self_of(p);
  if (!self->head_within_limit(at + len)) return self->fail(431, "request line and headers are larger than the limit");
  // llhttp joins an obs-fold (a line that starts with space or tab continues the value before it)
  // and reports the continuation as more of the value: a piece that starts right after a line end.
  char before = at > self->chunk_start_ ? at[-1] : self->prev_chunk_last_;
  if (len > 0 && before == '\n')
    return self->fail(400, "a header line starts with white space (obs-fold, RFC 9112 5.2): send each header on one line");
  self->in_value_ = true;
  self->value_.append(at, len);
  return 0;
}

int HttpParser::on_header_value_complete(llhttp_t* p) {
  auto* self = self_of(p);
  if (self->req_.headers.size() >= self->limits_.max_headers)
    return self->fail(431, "more headers than the limit of " + std::to_string(self->limits_.max_headers));
  std::string name = self->field_;
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string& v = self->value_;
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.pop_back();  // trailing OWS (RFC 9110 §5.5)
  if (name == "host") self->hosts_++;
  if (name == "transfer-encoding") {  // several such headers make one list (RFC 9110 5.3)
    if (!self->transfer_coding_.empty()) self->transfer_coding_ += ',';
    self->transfer_coding_ += v;
  }
  self->req_.headers.emplace_back(std::move(name), v);
  self->field_.clear();
  self->value_.clear();
  self->in_value_ = false;
  return 0;
}

int HttpParser::on_headers_complete(llhttp_t* p) {
  auto* self = self_of(p);
  self->in_head_ = false;
  HttpRequest& r = self->req_;
  r.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
  size_t q = r.target.find('?');
  r.path = r.target.substr(0, q);
  r.query = q == std::string::npos ? "" : r.target.substr(q + 1);
  r.keep_alive = llhttp_should_keep_alive(p) != 0;
  r.upgrade = p->upgrade != 0;
  r.http_major = p->http_major;
  r.http_minor = p->http_minor;
  // llhttp reads a request line without a version (HTTP/0.9 style) as 0.9.
  if (r.http_major == 0) return self->fail(400, "the request line needs a version: METHOD TARGET HTTP/1.1");
  if (r.http_major != 1)
    return self->fail(505, "HTTP/" + std::to_string(r.http_major) + "." + std::to_string(r.http_minor) +
                               " is not served here: use HTTP/1.1");
  // RFC 9112 3.2: exactly one Host in an HTTP/1.1 request; never two (which one would count?).
  if (self->hosts_ > 1) return self->fail(400, "more than one Host header");
  if (self->hosts_ == 0 && r.http_minor >= 1) return self->fail(400, "an HTTP/1.1 request needs a Host header");
  if (p->flags & F_TRANSFER_ENCODING) {
    int status = transfer_coding_status(self->transfer_coding_);
    if (status == 400)
      return self->fail(400, "Transfer-Encoding must end with chunked, once (RFC 9112 6.3): got \"" +
                                 self->transfer_coding_ + "\"");
    if (status == 501) return self->fail(501, "only the chunked transfer coding is implemented, alone");
  }
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > self->limits_.max_body)
    return self->fail(413, "request body of " + std::to_string(p->content_length) + " bytes is over the limit of " +
                               std::to_string(self->limits_.max_body));
  return 0;
}

int HttpParser::on_body(llhttp_t* p, const char* at, size_t len) {
  auto* self = self_of(p);
  if (self->req_.body.size() + len > self->limits_.max_body)
    return self->fail(413, "request body is over the limit of " + std::to_string(self->limits_.max_body) + " bytes");
  self->req_.body.append(at, len);
  return 0;
}

int HttpParser::on_message_complete(llhttp_t* p) {
  self_of(p)->complete_ = true;
  return HPE_PAUSED;  // stop here: the caller answers before the next request is parsed
}

HttpParser::Status HttpParser::feed(const char* data, size_t len, size_t& consumed) {
  consumed = 0;
  if (error_status_) return Status::Error;
  head_origin_ = data;  // a head that started in an earlier chunk is counted from here on
  chunk_start_ = data;
  llhttp_errno_t err = llhttp_execute(&parser_, data, len);
  if (len) prev_chunk_last_ = err == HPE_OK ? data[len - 1] : '\0';
  if (err == HPE_OK) {
    consumed = len;
    if (in_head_ && target_started_) {
      head_prior_ += static_cast<size_t>(data + len - head_origin_);
      if (head_prior_ > limits_.max_header_bytes) {
        fail(431, "request line and headers are larger than the limit");
        return Status::Error;
      }
    }
    return Status::NeedMore;
  }
  if ((err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) && complete_) {
    consumed = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
    return Status::Complete;
  }
  if (!error_status_) {
    error_status_ = 400;
    error_message_ = std::string("malformed HTTP request: ") + llhttp_get_error_reason(&parser_);
  }
  return Status::Error;
}

void HttpParser::next() {
  complete_ = false;
  started_ = false;
  llhttp_resume(&parser_);
}

}  // namespace mg
