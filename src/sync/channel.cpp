// heddle sync: the untyped half of Channel<T> and select_on (the API in
// include/heddle/sync/channel.hpp, its invariants at the top; the typed
// attempts in include/heddle/sync/detail/channel_impl.hpp).
//
// A plain send or receive follows sync/detail/wait_list.hpp's protocol: under
// the channel's lock, one typed attempt (inline in Channel<T>, the fast path)
// either completes the operation, claiming the peer it hands to or takes
// from, or finds nothing ready; then the caller parks its own node on the
// senders or receivers (channel_park, here) and a later attempt of a peer
// completes it. The claimed peer is woken after the lock is released.
//
// A select parks one WaitNode per operation, each on its own channel's list,
// and all of them share one claim, so that of every waker that finds one of
// them exactly one wins:
//   - a task: every node carries the same Resumer; claim() is the Resumer's
//     CAS, which only one can win. The nodes are registered from the
//     suspension hook (the task has switched out), one channel lock at a
//     time. If an operation turns out ready while registering, the select
//     claims its own Resumer (claim_task: the task is still parking, so a
//     win is "pending" and the parking side runs it at once) before
//     completing it, so a waker that already claimed an earlier node makes
//     the select stop instead.
//   - a thread: every node points at one state word (WaitNode::shared_state)
//     that claim() CASes 0 -> 1; the thread claims it the same way for an
//     operation that is ready while registering.
// After waking, the select locks each channel it registered on, unlinks its
// node if still linked and reads the node's outcome: the winner's waker set
// it under that lock, and taking the lock also waits for that waker to
// finish handing over. A cancelled task's hook does the same unlinking and
// takes nothing (the cancel won the CAS, so no waker did).
//
// A select that claimed itself for an operation whose parked peers all
// turned out to be leaving (cancelled, timed out) completed nothing: it
// withdraws and starts over.
#include "heddle/sync/detail/channel_core.hpp"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <initializer_list>
#include <stdexcept>
#include <string>

namespace heddle::detail {

WaitNode* ChannelCore::claim_next(WaitList& list, std::uintptr_t own, Wakeup& wakeup) noexcept {
  for (WaitNode* node = list.front(); node != nullptr;) {
    WaitNode* next = node->next;
    if (own == 0 || node->tag != own) {
      list.remove(node);
      if (Wakeup won = claim(*node)) {
        wakeup = std::move(won);
        return node;
      }
      // Leaving (cancelled, timed out, or a select won elsewhere): skip it.
    }
    node = next;
  }
  return nullptr;
}

bool ChannelCore::has_other(const WaitList& list, std::uintptr_t own) noexcept {
  if (own == 0) return !list.empty();
  for (const WaitNode* node = list.front(); node != nullptr; node = node->next) {
    if (node->tag != own) return true;
  }
  return false;
}

bool ChannelCore::close() noexcept {
  WakeBatch batch;  // declared first: runs after the guard releases the lock
  SpinLockGuard guard(lock);
  if (closed) return false;
  closed = true;
  // Parked receivers imply an empty buffer: they get nullopt. Parked
  // senders keep their values.
  for (WaitList* list : {&receivers, &senders}) {
    while (WaitNode* node = list->pop_front()) {
      if (Wakeup wakeup = claim(*node)) {
        node->result = kChannelClosed;
        batch.add(std::move(wakeup));
      }
    }
  }
  return true;
}

std::size_t ChannelCore::waiting(bool senders_side) const noexcept {
  SpinLockGuard guard(lock);
  return senders_side ? senders.size() : receivers.size();
}

void throw_bad_capacity(std::ptrdiff_t capacity) {
  throw std::invalid_argument("heddle::Channel: capacity must be >= 0 (0 is a rendezvous channel), got " +
                              std::to_string(capacity));
}

std::uintptr_t channel_park(ChannelCore& core, bool is_send, void* payload) {
  WaitNode node;
  node.payload = payload;
  wait_on(core.lock, is_send ? core.senders : core.receivers, node);  // releases the lock
  return node.result;  // set by the peer that claimed us, or by close()
}

namespace {

WaitList& list_of(SelectOp& op) noexcept HEDDLE_REQUIRES(op.core->lock) {
  return op.is_send ? op.core->senders : op.core->receivers;
}

// Unlinks the first `registered` nodes that are still linked and returns the
// index of the one a waker completed, or kNoOperation. A waker writes its
// outcome under the channel's lock, but its Wakeup touches the node once
// more after unlocking (it sets handed_over): the select, whose nodes live
// in the caller's frame, returns only after that, as wait_on does.
std::size_t withdraw(SelectOp* ops, std::size_t registered) noexcept {
  std::size_t winner = kNoOperation;
  for (std::size_t i = 0; i < registered; ++i) {
    SelectOp& op = ops[i];
    SpinLockGuard guard(op.core->lock);
    if (op.node.linked) list_of(op).remove(&op.node);
    if (op.node.result != kChannelWaiting && winner == kNoOperation) winner = i;
  }
  if (winner != kNoOperation) wait_for_hand_over(ops[winner].node);
  return winner;
}

// One registration pass, shared by tasks and threads: for each operation in
// order, under its channel's lock, complete it if it is ready (claiming the
// select first) or park its node. Stops at the first operation that
// completed, or as soon as the select turns out to be claimed already.
struct Registration {
  std::size_t registered = 0;         // nodes parked: ops[0, registered)
  std::size_t winner = kNoOperation;  // completed while registering
  bool claimed = false;               // the select's claim is taken (by it or a waker)
  Wakeup peer;                        // the waiter the completed operation claimed
  std::exception_ptr error;           // an operation threw (std::bad_alloc growing a buffer)
};

void register_all(SelectOp* ops, std::size_t count, const SelfClaim& self, Registration& reg) noexcept {
  for (std::size_t i = 0; i < count; ++i) {
    SelectOp& op = ops[i];
    SpinLockGuard guard(op.core->lock);
    Attempt attempt;
    try {
      attempt = op.attempt(op.channel, op.node.payload, op.node.result, self, op.node.tag, reg.peer);
    } catch (...) {
      guard.unlock();
      reg.error = std::current_exception();
      (void)self();  // stop wakers: a lost claim means a waker completed one
      reg.claimed = true;
      return;
    }
    if (attempt == Attempt::not_ready) {
      list_of(op).push_back(&op.node);
      reg.registered = i + 1;
      continue;
    }
    guard.unlock();
    if (attempt == Attempt::done) reg.winner = i;
    reg.claimed = true;  // done, lost (a waker won) or claimed_empty
    return;
  }
}

void reset_nodes(SelectOp* ops, std::size_t count, std::uintptr_t tag) noexcept {
  for (std::size_t i = 0; i < count; ++i) {
    WaitNode& node = ops[i].node;
    node.tag = tag;
    node.result = kChannelWaiting;
    node.resumer = Resumer{};
    node.thread_parker = nullptr;
    node.shared_state = nullptr;
    node.handed_over.store(false, std::memory_order_relaxed);
  }
}

std::size_t finish(SelectOp* ops, Registration& reg) {
  const std::size_t completed = withdraw(ops, reg.registered);
  if (reg.winner == kNoOperation) reg.winner = completed;
  reg.peer.run();
  if (reg.winner == kNoOperation && reg.error) std::rethrow_exception(reg.error);
  return reg.winner;  // kNoOperation: claimed with nothing done; try again
}

struct TaskSelect {
  SelectOp* ops;
  std::size_t count;
  Resumer self;
  Registration reg;
};

bool claim_own_task(void* context) noexcept {
  const Resumer& self = static_cast<TaskSelect*>(context)->self;
  // The task is still parking: a win is "pending", and the parking side
  // runs the task as soon as the hook returns.
  return claim_task(self.control(), self.generation()) != Claim::lost;
}

std::size_t park_task(SelectOp* ops, std::size_t count) {
  TaskSelect select{ops, count, Resumer{}, Registration{}};
  reset_nodes(ops, count, reinterpret_cast<std::uintptr_t>(&select));
  auto on_suspend = [&select](const Resumer& resumer) {
    select.self = resumer;
    for (std::size_t i = 0; i < select.count; ++i) select.ops[i].node.resumer = resumer;
    register_all(select.ops, select.count, SelfClaim{&claim_own_task, &select}, select.reg);
  };
  auto on_cancel = [&select]() noexcept {
    // The cancel won the Resumer's CAS: no waker completed anything.
    (void)withdraw(select.ops, select.reg.registered);
  };
  suspend(on_suspend, on_cancel);
  return finish(ops, select.reg);
}

bool claim_word(void* context) noexcept {
  std::uint32_t waiting = 0;
  return static_cast<std::atomic<std::uint32_t>*>(context)->compare_exchange_strong(waiting, 1,
                                                                                     std::memory_order_acq_rel);
}

std::size_t park_thread(SelectOp* ops, std::size_t count) {
  std::atomic<std::uint32_t> state{0};  // 0 waiting, 1 claimed (by a waker or by this thread)
  Parker& parker = current_parker();
  reset_nodes(ops, count, reinterpret_cast<std::uintptr_t>(&state));
  for (std::size_t i = 0; i < count; ++i) {
    ops[i].node.thread_parker = &parker;
    ops[i].node.shared_state = &state;
  }
  Registration reg;
  register_all(ops, count, SelfClaim{&claim_word, &state}, reg);
  if (!reg.claimed) {
    while (state.load(std::memory_order_acquire) != 1) parker.park(false);
  }
  return finish(ops, reg);
}

}  // namespace

std::size_t select_try(SelectOp* ops, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    SelectOp& op = ops[i];
    op.node.tag = 0;
    op.node.result = kChannelWaiting;
    Attempt attempt;
    {
      Wakeup wakeup;  // declared first: runs after the guard releases the lock (or the attempt throws)
      SpinLockGuard guard(op.core->lock);
      attempt = op.attempt(op.channel, op.node.payload, op.node.result, SelfClaim{}, 0, wakeup);
    }
    if (attempt == Attempt::done) return i;
  }
  return kNoOperation;
}

std::size_t select_wait(SelectOp* ops, std::size_t count) {
  for (;;) {
    const std::size_t ready = select_try(ops, count);
    if (ready != kNoOperation) return ready;
    const std::size_t winner = current_task() ? park_task(ops, count) : park_thread(ops, count);
    if (winner != kNoOperation) return winner;
  }
}

}  // namespace heddle::detail
