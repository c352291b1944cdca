// Fuzz target: the /ws/v1 envelope and conn.call argument parsing.
#include <cassert>
#include <cstdint>
#include <string>
#include <vector>

#include "api/conn_call.h"
#include "api/envelope.h"

std::vector<std::string> fuzz_seeds() {
  return {R"({"m":"mesh.send","p":{"c":"1463786910324359168","d":"data"},"i":12345})",
          R"({"m":"conn.call","p":{"c":"1","f":"set_context_value","a":["user_id",10000]},"id":"x"})",
          R"({"m":"conn.call","p":{"c":"1","f":"subscribe","a":["room:1","room:2"]},"i":[1,{"a":null}]})",
          R"({"m":"conn.call","p":{"c":"1","f":"close","a":[4000,"bye"]},"i":1e300})",
          R"({"m":"queue.pop","p":{"t":["client"],"ack":true},"i":-1})", "ping", "[]", "{\"m\":1}"};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mg::Envelope env;
  std::string error;
  bool ok = mg::parse_envelope(reinterpret_cast<const char*>(data), size, env, error);
  assert(ok || !error.empty());
  if (!ok) return 0;
  assert(env.params && cJSON_IsObject(env.params));
  mg::ConnCall call;
  if (!mg::parse_conn_call(cJSON_GetObjectItemCaseSensitive(env.params, "f"),
                           cJSON_GetObjectItemCaseSensitive(env.params, "a"), call, error))
    assert(!error.empty());
  std::string out = mg::envelope_ok("{}", &env.id_json);
  mg::JsonPtr back(cJSON_Parse(out.c_str()));
  assert(back);  // the echoed id always makes valid JSON
  return 0;
}
