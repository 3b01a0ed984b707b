// File: gateway/small_queue.h
// SmallQueue: a FIFO that costs nothing while it has never been used. A session holds two
// queues and most connections sit idle; libstdc++'s std::deque allocates about 600 bytes as
// soon as it is constructed, which was a fifth of an idle connection's memory.
//
// A vector and a read index: push_back appends, pop_front advances, and the storage is reused
// from the start whenever the queue empties. Not thread-safe (a session's strand owns it).
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace fngate::gateway {

template <typename T>
class SmallQueue {
 public:
  bool empty() const { return head_ == items_.size(); }
  size_t size() const { return items_.size() - head_; }
  T& front() { return items_[head_]; }
  const T& front() const { return items_[head_]; }

  // The element `i` places behind the front.
  T& operator[](size_t i) { return items_[head_ + i]; }

  void push_back(T item) { items_.push_back(std::move(item)); }

  void pop_front() {
    items_[head_] = T();  // Release what the element holds now, not when the slot is reused.
    if (++head_ == items_.size()) clear();
  }

  // Keeps the first element, drops the rest.
  void truncate_after_front() {
    if (!empty()) items_.resize(head_ + 1);
  }

  // Removes `count` elements starting `index` places behind the front.
  void erase(size_t index, size_t count) {
    const auto from = items_.begin() + static_cast<std::ptrdiff_t>(head_ + index);
    items_.erase(from, from + static_cast<std::ptrdiff_t>(count));
    if (empty()) clear();
  }

  void clear() {
    items_.clear();
    head_ = 0;
  }

 private:
  std::vector<T> items_;
  size_t head_ = 0;
};

}  // namespace fngate::gateway
