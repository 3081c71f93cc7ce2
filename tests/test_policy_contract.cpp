// test_policy_contract.cpp - the core polices the policy contract in checked builds (debug, asan, tsan):
// a policy that loses a task it was handed, or returns a task twice, is stopped with a fatal error naming
// it. In release builds the checks are compiled out and these tests are skipped.
#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <mutex>

#include "skyloft/skyloft.hpp"
#include "test_util.hpp"

namespace {

using namespace skytest;

// One shared FIFO; `yield` may drop the task (lose it) and `pick_next` may hand the same task out twice.
class FaultyPolicy final : public skyloft::Policy {
 public:
  enum class Fault { lose_yielded, return_twice };
  explicit FaultyPolicy(Fault f) : fault_(f) {}
  void spawn(skyloft::Task* t, int, int) override { push(t); }
  void wakeup(skyloft::Task* t, int) override { push(t); }
  void yield(skyloft::Task* t, int) override {
    if (fault_ == Fault::lose_yielded) return;  // the bug: the task is never queued again
    push(t);
  }
  skyloft::Task* pick_next(int) override {
    std::lock_guard<std::mutex> g(m_);
    if (q_.empty()) return nullptr;
    skyloft::Task* t = q_.front();
    if (fault_ == Fault::return_twice && !duplicated_) {
      duplicated_ = true;  // the bug: hands the head out now and again on the next pick
      return t;
    }
    q_.pop_front();
    return t;
  }
  std::uint32_t nr_waiting(int) const override {
    std::lock_guard<std::mutex> g(m_);
    return static_cast<std::uint32_t>(q_.size());
  }
  std::string_view name() const noexcept override {
    return fault_ == Fault::lose_yielded ? "faulty-lose" : "faulty-twice";
  }

 private:
  void push(skyloft::Task* t) {
    {
      std::lock_guard<std::mutex> g(m_);
      q_.push_back(t);
    }
    host_->notify_work_available();
    for (int w = 0; w < host_->num_workers(); ++w) host_->kick(w);
  }
  const Fault fault_;
  mutable std::mutex m_;
  std::deque<skyloft::Task*> q_;
  bool duplicated_ = false;
};

void register_faulty_policies() {
  static std::once_flag once;
  std::call_once(once, [] {
    skyloft::register_policy("faulty-lose", [] { return std::make_unique<FaultyPolicy>(FaultyPolicy::Fault::lose_yielded); });
    skyloft::register_policy("faulty-twice", [] { return std::make_unique<FaultyPolicy>(FaultyPolicy::Fault::return_twice); });
  });
}

void run_one_yielding_task(const char* policy) {
  register_faulty_policies();
  skyloft::Config c = make_config(policy);
  c.cores = "0";
  skyloft::Runtime rt(c);
  skyloft::spawn([] { skyloft::this_task::yield(); }).detach();
  skyloft::spawn([] {}).detach();
  rt.shutdown();
}

TEST(PolicyContractDeathTest, LostTaskIsReportedAtShutdown) {
  if (!skyloft::policy_contract_checked()) GTEST_SKIP() << "release build: contract checks are compiled out";
  EXPECT_DEATH(run_one_yielding_task("faulty-lose"),
               "policy contract violated by policy 'faulty-lose': 1 task\\(s\\) handed to it were never returned");
}

TEST(PolicyContractDeathTest, TaskReturnedTwiceIsFatal) {
  if (!skyloft::policy_contract_checked()) GTEST_SKIP() << "release build: contract checks are compiled out";
  EXPECT_DEATH(run_one_yielding_task("faulty-twice"),
               "policy contract violated by policy 'faulty-twice': task [0-9]+ was returned by pick_next/balance "
               "although the policy did not hold it");
}

}  // namespace
