// What a call on another thread or node comes back with, and how fan-outs are summed.
//
// Every API method answers with an ApiResult on the hub thread, whether a worker, this node or
// another node did the work. A fan-out (publish, broadcast, channel.count) runs in several parts
// (each worker, each alive peer) and answers once with the sum of their FanoutCounts.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace mg {

// Code 0 is success, else an API error code (PROTOCOL.md §5.2).
struct ApiResult {
  int code = 0;
  std::string message;  // when code != 0
  std::string result;   // JSON text of "r" when code == 0
  static ApiResult ok(std::string r) { return ApiResult{0, "", std::move(r)}; }
  static ApiResult error(int c, std::string m) { return ApiResult{c, std::move(m), ""}; }
};

// Called exactly once with the answer, on the hub thread.
using Reply = std::function<void(const ApiResult&)>;

struct FanoutCount {
  uint64_t ok = 0, failed = 0;
};

using FanoutDone = std::function<void(const FanoutCount&)>;

// The one join of a fan-out: returns a callable to call once per part (from one thread, the hub's);
// `done` runs with the sum when the last of `parts` has answered, or at once when `parts` is 0.
inline FanoutDone fanout_join(size_t parts, FanoutDone done) {
  if (parts == 0) {
    done(FanoutCount{});
    return [](const FanoutCount&) {};
  }
  struct State {
    size_t pending;
    FanoutCount total;
    FanoutDone done;
  };
  auto state = std::make_shared<State>(State{parts, {}, std::move(done)});
  return [state](const FanoutCount& part) {
    state->total.ok += part.ok;
    state->total.failed += part.failed;
    if (--state->pending == 0) state->done(state->total);
  };
}

}  // namespace mg
