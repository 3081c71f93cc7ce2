// registry.cpp - policies by name: the built-in ones and those added with register_policy().
#include <algorithm>
#include <mutex>

#include "core/spinlock.hpp"
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "skyloft/config.hpp"
#include "skyloft/policy.hpp"

namespace skyloft {

std::unique_ptr<Policy> make_fifo_policy();
std::unique_ptr<Policy> make_sq_policy();
std::unique_ptr<Policy> make_rr_policy();
std::unique_ptr<Policy> make_cfs_policy();
std::unique_ptr<Policy> make_eevdf_policy();

namespace {

struct Entry {
  std::string name;
  PolicyFactory factory;
};

SpinLock& registry_mutex() {
  static SpinLock m;  // not std::mutex: the runtime never goes through pthread symbols
  return m;
}

std::vector<Entry>& registry() {
  static std::vector<Entry> entries{
      {"fifo", &make_fifo_policy},
      {"sq", &make_sq_policy},
      {"rr", &make_rr_policy},
      {"cfs", &make_cfs_policy},
      {"eevdf", &make_eevdf_policy},
  };
  return entries;
}

}  // namespace

void register_policy(std::string name, PolicyFactory factory) {
  if (name.empty()) throw ConfigError("register_policy: the policy name is empty");
  if (!factory) throw ConfigError(fmt::format("register_policy: no factory given for policy '{}'", name));
  std::lock_guard<SpinLock> guard(registry_mutex());
  auto& entries = registry();
  if (std::any_of(entries.begin(), entries.end(), [&](const Entry& e) { return e.name == name; })) {
    throw ConfigError(fmt::format("register_policy: a policy named '{}' already exists", name));
  }
  entries.push_back({std::move(name), std::move(factory)});
}

std::vector<std::string> policy_names() {
  std::lock_guard<SpinLock> guard(registry_mutex());
  std::vector<std::string> names;
  for (const auto& e : registry()) names.push_back(e.name);
  return names;
}

std::unique_ptr<Policy> make_policy(std::string_view name) {
  PolicyFactory factory;
  {
    std::lock_guard<SpinLock> guard(registry_mutex());
    for (const auto& e : registry()) {
      if (e.name == name) factory = e.factory;
    }
  }
  if (!factory) {
    throw ConfigError(fmt::format("unknown policy '{}' (known policies: {})", name, fmt::join(policy_names(), ", ")));
  }
  std::unique_ptr<Policy> p = factory();
  if (!p) throw ConfigError(fmt::format("the factory of policy '{}' returned no policy", name));
  return p;
}

}  // namespace skyloft
