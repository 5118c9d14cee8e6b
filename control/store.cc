// SQLite-backed state (see store.h).
#include "control/store.h"

#include <sqlite3.h>

#include <stdexcept>

namespace lmstream::control {
namespace {

const char* table_name(Table t) {
  switch (t) {
    case Table::kModels:
      return "models";
    case Table::kEndpointConfigs:
      return "endpoint_configs";
    case Table::kEndpoints:
      return "endpoints";
  }
  return "models";
}

struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

}  // namespace

Store::Store(const std::string& path) : path_(path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw std::runtime_error("cannot open the state database " + path + ": " + why);
  }
  sqlite3_busy_timeout(db_, 5000);
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=NORMAL");
  for (Table t : {Table::kModels, Table::kEndpointConfigs, Table::kEndpoints})
    exec(std::string("CREATE TABLE IF NOT EXISTS ") + table_name(t) +
         " (key TEXT PRIMARY KEY, doc TEXT NOT NULL)");
}

Store::~Store() { sqlite3_close(db_); }

void Store::fail(const std::string& what) {
  throw std::runtime_error("state database " + path_ + ": " + what + ": " + sqlite3_errmsg(db_));
}

void Store::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : "unknown error";
    sqlite3_free(err);
    throw std::runtime_error("state database " + path_ + ": " + sql + ": " + why);
  }
}

void Store::put(Table t, const std::string& key, const nlohmann::json& doc) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string sql =
      std::string("INSERT OR REPLACE INTO ") + table_name(t) + " (key, doc) VALUES (?, ?)";
  Stmt st;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st.s, nullptr) != SQLITE_OK) fail("prepare");
  std::string text = doc.dump();
  sqlite3_bind_text(st.s, 1, key.data(), int(key.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 2, text.data(), int(text.size()), SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) != SQLITE_DONE) fail("write");
}

void Store::remove(Table t, const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string sql = std::string("DELETE FROM ") + table_name(t) + " WHERE key = ?";
  Stmt st;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st.s, nullptr) != SQLITE_OK) fail("prepare");
  sqlite3_bind_text(st.s, 1, key.data(), int(key.size()), SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) != SQLITE_DONE) fail("delete");
}

std::vector<nlohmann::json> Store::all(Table t) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string sql = std::string("SELECT key, doc FROM ") + table_name(t) + " ORDER BY key";
  Stmt st;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st.s, nullptr) != SQLITE_OK) fail("prepare");
  std::vector<nlohmann::json> out;
  int rc;
  while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) {
    const char* doc = reinterpret_cast<const char*>(sqlite3_column_text(st.s, 1));
    auto j = nlohmann::json::parse(doc ? doc : "", nullptr, false);
    if (j.is_discarded())
      throw std::runtime_error("state database " + path_ + ": a " + table_name(t) +
                               " row is not JSON");
    out.push_back(std::move(j));
  }
  if (rc != SQLITE_DONE) fail("read");
  return out;
}

}  // namespace lmstream::control
