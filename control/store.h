// The control plane's durable state: one SQLite file (state.db in the state directory) holding
// the models, endpoint configs and endpoints as JSON documents keyed by their lower-cased names.
// Every write is its own transaction, so a control plane killed at any point restarts from the
// last completed operation. Thread-safe (one connection behind a mutex).
#pragma once

#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

struct sqlite3;

namespace lmstream::control {

enum class Table { kModels, kEndpointConfigs, kEndpoints };

class Store {
 public:
  // Opens (creating if needed) the database at `path`. Throws std::runtime_error naming the path
  // and SQLite's reason.
  explicit Store(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  void put(Table t, const std::string& key, const nlohmann::json& doc);
  void remove(Table t, const std::string& key);
  // Every document of the table, in key order.
  std::vector<nlohmann::json> all(Table t);
  const std::string& path() const { return path_; }

 private:
  void exec(const std::string& sql);
  [[noreturn]] void fail(const std::string& what);

  std::mutex mu_;
  sqlite3* db_ = nullptr;
  std::string path_;
};

}  // namespace lmstream::control
