#include "api/envelope.h"

#include "core/json_check.h"
#include "core/utf8.h"

namespace mg {

namespace {
cJSON* empty_params() {
  static cJSON* empty = cJSON_CreateObject();  // shared, never modified
  return empty;
}
}  // namespace

namespace {

// The text of "i" (or "id") as sent: cJSON would print a large integer as a rounded double. When the
// whole message was refused, the id is still echoed if its own text is valid JSON, so the caller
// can match the error to its request.
void read_id(const char* data, size_t len, bool message_valid, std::string& id_json) {
  const char* text = nullptr;
  size_t n = 0;
  if (!json_member_text(data, len, "i", text, n) && !json_member_text(data, len, "id", text, n)) return;
  std::string why;
  if (message_valid || (is_valid_utf8(text, n) && json_check(text, n, why))) id_json.assign(text, n);
}

}  // namespace

bool parse_envelope(const char* data, size_t len, Envelope& out, std::string& error) {
  out.doc = json_parse_strict(data, len, &error);
  read_id(data, len, static_cast<bool>(out.doc), out.id_json);
  if (!out.doc) return false;
  cJSON* root = out.doc.get();
  if (!cJSON_IsObject(root)) {
    error = "a request must be a JSON object {\"m\":method,\"p\":params,\"i\":id}";
    return false;
  }
  const cJSON* m = cJSON_GetObjectItemCaseSensitive(root, "m");
  if (!cJSON_IsString(m) || !*m->valuestring) {
    error = "\"m\" must be a method name";
    return false;
  }
  out.method = m->valuestring;
  const cJSON* p = cJSON_GetObjectItemCaseSensitive(root, "p");
  if (p && !cJSON_IsNull(p) && !cJSON_IsObject(p)) {
    error = "\"p\" must be an object";
    return false;
  }
  out.params = (p && cJSON_IsObject(p)) ? p : empty_params();
  if (p && cJSON_IsObject(p)) json_member_text(data, len, "p", out.params_text, out.params_len);
  return true;
}

bool parse_params_body(const std::string& body, JsonPtr& out, std::string& error) {
  size_t i = body.find_first_not_of(" \t\r\n");
  if (i == std::string::npos) {
    out = JsonPtr(cJSON_CreateObject());
    return true;
  }
  out = json_parse_strict(body.data(), body.size(), &error);
  if (!out) return false;
  if (!cJSON_IsObject(out.get())) {
    error = "the request body must be a JSON object of parameters";
    return false;
  }
  return true;
}

std::string envelope_ok(const std::string& result_json, const std::string* id_json) {
  std::string s = "{\"E\":null,\"r\":";
  s += result_json;
  if (id_json) {
    s += ",\"i\":";
    s += *id_json;
  }
  s += '}';
  return s;
}

std::string envelope_error(int code, const std::string& message, const std::string* id_json) {
  std::string s = "{\"E\":{\"c\":" + std::to_string(code) + ",\"m\":";
  json_append_string(s, utf8_replace_invalid(message));  // it may quote a request path that is not UTF-8
  s += '}';
  if (id_json) {
    s += ",\"i\":";
    s += *id_json;
  }
  s += '}';
  return s;
}

}  // namespace mg
