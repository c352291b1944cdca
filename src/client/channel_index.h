// A worker's channel index: which of its members (client connections) are subscribed to which
// channel, for the publish walk, channel.count and channel.top. Worker thread only.
//
// A channel's subscribers are contiguous (a publish walks them without a copy), and each member keeps
// its slot in every channel it is in, for O(1) removal: the channel's last subscriber moves into the
// freed place. A channel is listed while it has a subscriber, and erased with its last one.
//
// `Member` keeps its slots itself: `std::vector<ChannelIndex<Member>::Slot>& subscriptions()` (and a
// const one), in the order it joined the channels (conn.info lists them so). Only the index changes
// them. A template so the unit test can use a plain struct for members.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace mg {

// Sorts `counts` by count, largest first (ties: by name, so the order is the same on every run and
// every node) and keeps the first `n`. For channel.top: a worker's own list, and the merge of theirs.
void keep_largest(std::vector<std::pair<std::string, uint64_t>>& counts, size_t n);

template <typename Member>
class ChannelIndex {
 public:
  using Subscribers = std::vector<Member*>;
  using Entry = std::pair<const std::string, Subscribers>;
  // One subscription of a member: its channel's entry (a node of the map, so the pointer holds while
  // the channel is listed) and the member's place in the channel's subscribers.
  struct Slot {
    Entry* channel;
    uint32_t index;
    const std::string& name() const { return channel->first; }
  };

  // Adds `m` to `channel`; nothing when it is in it already. True when the channel was not listed
  // (its first subscriber here), so the caller can count it (ChannelPresence).
  bool add(Member* m, const std::string& channel);
  // Removes `m` from `channel`; nothing when it is not in it. `on_gone(name)` when `m` was the last
  // subscriber: it runs before the channel is erased, while `name` is still valid.
  template <typename OnGone>
  void remove(Member* m, const std::string& channel, OnGone&& on_gone);
  // Removes `m` from every channel it is in (a connection that closes), last joined first.
  template <typename OnGone>
  void remove_all(Member* m, OnGone&& on_gone) {
    while (!m->subscriptions().empty()) remove_at(m, m->subscriptions().size() - 1, on_gone);
  }

  // Calls `fn(member)` for every subscriber of `channel`. `fn` may remove the member it is given
  // (from this channel or any other: a send that closes the connection) but no other member. The
  // walk runs from the end: a removal moves the last subscriber, already walked, into the freed
  // place, so none is skipped or walked twice; the channel may be erased only when its last
  // subscriber, walked last, leaves, and the walk does not touch it after that.
  template <typename Fn>
  void each_subscriber(const std::string& channel, Fn&& fn);
  size_t count(const std::string& channel) const {
    auto it = channels_.find(channel);
    return it == channels_.end() ? 0 : it->second.size();
  }
  // The `n` channels with the most subscribers, largest first (keep_largest).
  std::vector<std::pair<std::string, uint64_t>> largest(size_t n) const;

  // For Worker::check_tables: every listed channel and its subscribers.
  const std::unordered_map<std::string, Subscribers>& channels() const { return channels_; }

 private:
  // Removes `m`'s subscription `k` (its index in m->subscriptions()).
  template <typename OnGone>
  void remove_at(Member* m, size_t k, OnGone& on_gone);

  std::unordered_map<std::string, Subscribers> channels_;
};

template <typename Member>
bool ChannelIndex<Member>::add(Member* m, const std::string& channel) {
  auto [it, fresh] = channels_.try_emplace(channel);
  Entry* entry = &*it;
  auto& mine = m->subscriptions();
  for (const Slot& s : mine)
    if (s.channel == entry) return false;
  mine.push_back(Slot{entry, static_cast<uint32_t>(entry->second.size())});
  entry->second.push_back(m);
  return fresh;
}

template <typename Member>
template <typename OnGone>
void ChannelIndex<Member>::remove(Member* m, const std::string& channel, OnGone&& on_gone) {
  auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  auto& mine = m->subscriptions();
  for (size_t k = 0; k < mine.size(); k++)
    if (mine[k].channel == &*it) return remove_at(m, k, on_gone);
}

template <typename Member>
template <typename OnGone>
void ChannelIndex<Member>::remove_at(Member* m, size_t k, OnGone& on_gone) {
  auto& mine = m->subscriptions();
  Slot slot = mine[k];
  mine.erase(mine.begin() + static_cast<std::ptrdiff_t>(k));  // keeps the order it joined them in
  Subscribers& subs = slot.channel->second;
  Member* moved = subs.back();
  subs[slot.index] = moved;
  subs.pop_back();
  if (moved != m) {
    for (Slot& s : moved->subscriptions())
      if (s.channel == slot.channel) {
        s.index = slot.index;
        break;
      }
  }
  if (!subs.empty()) return;
  on_gone(slot.channel->first);
  channels_.erase(channels_.find(slot.channel->first));  // not erase(key): the key is the entry's own
}

template <typename Member>
template <typename Fn>
void ChannelIndex<Member>::each_subscriber(const std::string& channel, Fn&& fn) {
  auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  const Subscribers& subs = it->second;
  for (size_t i = subs.size(); i-- > 0;) fn(subs[i]);
}

template <typename Member>
std::vector<std::pair<std::string, uint64_t>> ChannelIndex<Member>::largest(size_t n) const {
  std::vector<std::pair<std::string, uint64_t>> all;
  all.reserve(channels_.size());
  for (const auto& [name, subs] : channels_) all.emplace_back(name, subs.size());
  keep_largest(all, n);
  return all;
}

}  // namespace mg
