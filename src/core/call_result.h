// What a call on another thread or node comes back with, and how fan-outs are summed.
//
// Every API method answers with an ApiResult on the hub thread, whether a worker, this node or
// another node did the work. A fan-out runs in several parts (each worker, each alive peer) and
// answers once, when all parts have: publish, broadcast and channel.count with the sum of their
// FanoutCounts, channel.top with the merge of their lists.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

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

// The one join of a fan-out: returns a callable to call once per part, from one thread (the caller's,
// the hub's); `done` runs with every part's answer, in the order they came, when the last of `parts`
// has answered, or at once (with none) when `parts` is 0. The parts' shape is the caller's: the join
// neither reads nor merges them.
template <class T>
std::function<void(T)> fanout_join(size_t parts, std::function<void(std::vector<T>)> done) {
  if (parts == 0) {
    done({});
    return [](T) {};
  }
  struct State {
    size_t pending;
    std::vector<T> answers;
    std::function<void(std::vector<T>)> done;
  };
  auto state = std::make_shared<State>(State{parts, {}, std::move(done)});
  state->answers.reserve(parts);
  return [state](T part) {
    state->answers.push_back(std::move(part));
    if (--state->pending == 0) state->done(std::move(state->answers));
  };
}

inline FanoutCount fanout_total(const std::vector<FanoutCount>& parts) {
  FanoutCount total;
  for (const FanoutCount& p : parts) {
    total.ok += p.ok;
    total.failed += p.failed;
  }
  return total;
}

// The join of a counting fan-out (publish, broadcast, channel.count): `done` gets the sum.
inline std::function<void(FanoutCount)> fanout_sum(size_t parts, FanoutDone done) {
  return fanout_join<FanoutCount>(parts, [done = std::move(done)](std::vector<FanoutCount> answers) {
    done(fanout_total(answers));
  });
}

}  // namespace mg
