// The Hugging Face Hub client (see hub.h).
#include "store/hub.h"

#include <fnmatch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "base/files.h"
#include "base/strings.h"
#include "store/progress.h"

namespace lmstream::store::hub {

namespace fs = std::filesystem;

namespace {

bool truthy(const std::optional<std::string>& v) {
  if (!v) return false;
  std::string s = base::to_lower(base::trim(*v));
  return s == "1" || s == "on" || s == "yes" || s == "true";
}

bool id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.';
}

bool id_part(std::string_view s) {
  if (s.empty() || s.size() > 96 || s == "." || s == ".." || s.find("..") != s.npos) return false;
  return std::all_of(s.begin(), s.end(), id_char);
}

// scheme://host[:port] of a URL.
std::string origin_of(const std::string& url) {
  auto p = url.find("://");
  if (p == std::string::npos) return "";
  auto e = url.find('/', p + 3);
  return url.substr(0, e);
}

std::string host_of(const std::string& url) {
  std::string o = origin_of(url);
  auto p = o.find("://");
  return p == std::string::npos ? o : base::to_lower(o.substr(p + 3));
}

bool ends_with(std::string_view s, std::string_view t) {
  return s.size() >= t.size() && s.substr(s.size() - t.size()) == t;
}

bool at_root(const std::string& f) { return f.find('/') == std::string::npos; }

bool retryable_status(int s) { return s == 429 || s >= 500; }

bool retryable(const http::ClientError& e) {
  using K = http::ClientError::Kind;
  return e.kind() == K::kConnect || e.kind() == K::kTimeout || e.kind() == K::kTransfer;
}

void sleep_backoff(const DownloadOptions& o, int attempt) {
  auto d = o.backoff * (1 << std::min(attempt, 4));
  std::this_thread::sleep_for(std::min(d, std::chrono::milliseconds(8000)));
}

const char* kModelFiles[] = {
    "config.json",           "generation_config.json",  "tokenizer.json",    "tokenizer.model",
    "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "serving.properties"};

std::vector<std::string> list_tree(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (fs::is_regular_file(it->path(), ec))
      out.push_back(it->path().lexically_relative(dir).generic_string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> match_include(const RepoInfo& info, const std::vector<std::string>& globs,
                                       const std::string& repo, const std::string& rev) {
  std::vector<std::string> out;
  for (auto& s : info.siblings)
    for (auto& g : globs)
      if (::fnmatch(g.c_str(), s.rfilename.c_str(), 0) == 0) {
        out.push_back(s.rfilename);
        break;
      }
  if (out.empty()) {
    std::string gl;
    for (auto& g : globs) gl += (gl.empty() ? "" : " ") + g;
    throw HubError(
        HubError::Kind::kEntryNotFound,
        "no file of repository '" + repo + "' at revision '" + rev + "' matches --include " + gl);
  }
  return out;
}

}  // namespace

Config Config::from_env(const Env& env) {
  Config c;
  if (auto v = env("HF_ENDPOINT"); v && !v->empty()) c.endpoint = *v;
  while (!c.endpoint.empty() && c.endpoint.back() == '/') c.endpoint.pop_back();
  for (const char* name : {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_API_TOKEN"}) {
    if (auto v = env(name); v && !base::trim(*v).empty()) {
      c.token = std::string(base::trim(*v));
      break;
    }
  }
  if (!c.token && !truthy(env("HF_HUB_DISABLE_IMPLICIT_TOKEN"))) {
    std::ifstream f(hf_home(env) + "/token");
    std::string t;
    if (f && std::getline(f, t) && !base::trim(t).empty()) c.token = std::string(base::trim(t));
  }
  c.cache_dir = hub_cache_dir(env);
  c.offline = truthy(env("HF_HUB_OFFLINE")) || truthy(env("TRANSFORMERS_OFFLINE"));
  return c;
}

RepoRef parse_repo_ref(const std::string& s) {
  RepoRef r;
  std::string id = s;
  if (auto c = s.rfind(':'); c != std::string::npos) {
    r.quant = s.substr(c + 1);
    id = s.substr(0, c);
    if (!id_part(*r.quant))
      throw HubError(HubError::Kind::kBadId,
                     "'" + s + "': the part after ':' must name a GGUF quantisation, e.g. Q4_K_M");
  }
  auto parts = base::split(id, '/');
  if (parts.size() != 2 || !id_part(parts[0]) || !id_part(parts[1]))
    throw HubError(HubError::Kind::kBadId,
                   "'" + s +
                       "' is neither an existing local file or directory nor a Hugging Face Hub "
                       "id (org/name, letters, digits, '-', '_' and '.')");
  r.repo = id;
  return r;
}

bool looks_like_repo_id(const std::string& s) {
  try {
    parse_repo_ref(s);
    return true;
  } catch (const HubError&) {
    return false;
  }
}

std::string quote(std::string_view s, bool keep_slash) {
  static const char* d = "0123456789ABCDEF";
  std::string o;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      o += char(c);
    } else {
      o += '%';
      o += d[c >> 4];
      o += d[c & 15];
    }
  }
  return o;
}

std::string api_url(const std::string& endpoint, const std::string& repo,
                    const std::optional<std::string>& revision) {
  std::string u = endpoint + "/api/models/" + repo;
  if (revision) u += "/revision/" + quote(*revision, false);
  return u;
}

std::string resolve_url(const std::string& endpoint, const std::string& repo,
                        const std::string& revision, const std::string& file) {
  return endpoint + "/" + repo + "/resolve/" + quote(revision, false) + "/" + quote(file, true);
}

HubError error_from_response(const http::ResponseHead& head, const std::string& body,
                             const std::string& url, const std::string& repo,
                             const std::string& revision, const std::string& file,
                             bool token_sent) {
  std::string code = head.header("X-Error-Code").value_or("");
  std::string text = head.header("X-Error-Message").value_or("");
  if (text.empty() && !body.empty()) {
    try {
      auto j = nlohmann::json::parse(body);
      if (j.is_object() && j.contains("error") && j["error"].is_string())
        text = j["error"].get<std::string>();
    } catch (const std::exception&) {
    }
  }
  std::string tail;
  if (!text.empty()) tail += " Server says: " + text;
  if (auto id = head.header("X-Request-Id")) tail += " (request id " + *id + ")";
  const std::string st = "HTTP " + std::to_string(head.status);
  const std::string where = " (" + st + " for " + url.substr(0, url.find('?')) + ").";
  const std::string page = origin_of(url) + "/" + repo;
  using K = HubError::Kind;
  if (code == "GatedRepo" || (code.empty() && head.status == 403))
    return HubError(
        K::kGated,
        "cannot access gated repository '" + repo + "'" + where +
            (token_sent ? " The token that was sent has no access to it: request access at " +
                              page + " with that account, or use a token that has it."
                        : " Set HF_TOKEN (or HUGGING_FACE_HUB_TOKEN) to a token of an "
                          "account that has been granted access at " +
                              page + ".") +
            tail);
  if (code == "RevisionNotFound")
    return HubError(K::kRevisionNotFound,
                    "revision '" + revision + "' not found in repository '" + repo + "'" + where +
                        " Pass an existing branch, tag or commit with --revision or "
                        "HF_MODEL_REVISION." +
                        tail);
  if (code == "EntryNotFound" || (code.empty() && head.status == 404 && !file.empty()))
    return HubError(K::kEntryNotFound, "file '" + file + "' not found in repository '" + repo +
                                           "' at revision '" + revision + "'" + where + tail);
  if (code == "RepoNotFound" || (code.empty() && (head.status == 401 || head.status == 404)))
    return HubError(K::kRepoNotFound,
                    "repository '" + repo + "' not found" + where +
                        " Check the id (org/name); if it is private or gated, set HF_TOKEN (or "
                        "HUGGING_FACE_HUB_TOKEN) to a token that can read it." +
                        tail);
  if (head.status == 429)
    return HubError(K::kHttp, "the Hub is rate-limiting requests for '" + repo + "'" + where +
                                  " Wait and try again, or set HF_TOKEN." + tail);
  return HubError(K::kHttp, "unexpected answer from the Hub for '" + repo + "'" + where + tail);
}

RepoInfo parse_repo_info(const std::string& json) {
  RepoInfo r;
  try {
    auto j = nlohmann::json::parse(json);
    r.id = j.value("id", j.value("modelId", std::string()));
    r.sha = j.value("sha", std::string());
    if (j.contains("siblings") && j["siblings"].is_array())
      for (auto& s : j["siblings"]) {
        Sibling x;
        x.rfilename = s.at("rfilename").get<std::string>();
        if (s.contains("size") && s["size"].is_number_unsigned())
          x.size = s["size"].get<uint64_t>();
        if (!safe_relative_path(x.rfilename))
          throw HubError(HubError::Kind::kProtocol,
                         "the Hub listed an unsafe file name '" + x.rfilename + "'");
        r.siblings.push_back(std::move(x));
      }
  } catch (const nlohmann::json::exception& e) {
    throw HubError(HubError::Kind::kProtocol,
                   std::string("the Hub's repository info is not the JSON expected: ") + e.what());
  }
  return r;
}

bool has_gguf(const RepoInfo& info) {
  for (auto& s : info.siblings)
    if (ends_with(base::to_lower(s.rfilename), ".gguf")) return true;
  return false;
}

std::vector<std::string> select_model_files(const RepoInfo& info, const std::string& repo,
                                            const std::string& revision,
                                            const std::string* index_json) {
  std::set<std::string> names;
  for (auto& s : info.siblings) names.insert(s.rfilename);
  std::vector<std::string> out;
  std::vector<std::string> weights, bins;
  for (auto& s : info.siblings) {
    const std::string& f = s.rfilename;
    if (!at_root(f)) continue;
    if (ends_with(f, ".safetensors")) {
      if (f.find("arguments") != f.npos || f.find("args") != f.npos || f.find("training") != f.npos)
        continue;
      weights.push_back(f);
    } else if (ends_with(f, ".bin") && f.find("training") == f.npos && f.find("args") == f.npos) {
      bins.push_back(f);
    }
  }
  if (index_json) {
    std::set<std::string> shards;
    try {
      auto j = nlohmann::json::parse(*index_json);
      for (auto& [k, v] : j.at("weight_map").items()) shards.insert(v.get<std::string>());
    } catch (const nlohmann::json::exception& e) {
      throw HubError(HubError::Kind::kNoWeights, "model.safetensors.index.json of '" + repo +
                                                     "' is not a valid index: " + e.what());
    }
    for (auto& s : shards)
      if (!names.count(s) || !safe_relative_path(s))
        throw HubError(HubError::Kind::kNoWeights,
                       "model.safetensors.index.json of '" + repo + "' at revision '" + revision +
                           "' names shard '" + s + "', which the repository does not have");
    weights.assign(shards.begin(), shards.end());
    out.push_back("model.safetensors.index.json");
  }
  if (weights.empty()) {
    if (!bins.empty()) {
      std::string list;
      for (auto& b : bins) list += (list.empty() ? "" : ", ") + b;
      throw HubError(HubError::Kind::kNoWeights,
                     "repository '" + repo + "' at revision '" + revision +
                         "' has only PyTorch .bin weights (" + list +
                         "); lmstream loads safetensors or GGUF. Convert them to safetensors "
                         "(e.g. TGI's or transformers' save_pretrained(safe_serialization=True)), "
                         "or pick a revision or repository that has .safetensors files");
    }
    throw HubError(HubError::Kind::kNoWeights,
                   "no .safetensors or .gguf weights at the root of repository '" + repo +
                       "' at revision '" + revision + "'");
  }
  for (const char* m : kModelFiles)
    if (names.count(m)) out.push_back(m);
  std::sort(weights.begin(), weights.end());
  out.insert(out.end(), weights.begin(), weights.end());
  return out;
}

std::vector<std::string> select_gguf_files(const RepoInfo& info, const std::string& repo,
                                           const std::optional<std::string>& quant,
                                           const std::optional<std::string>& file) {
  std::vector<std::string> ggufs;
  for (auto& s : info.siblings)
    if (ends_with(base::to_lower(s.rfilename), ".gguf")) ggufs.push_back(s.rfilename);
  std::sort(ggufs.begin(), ggufs.end());
  auto list = [&] {
    std::string l;
    for (auto& g : ggufs) l += (l.empty() ? "" : ", ") + g;
    return l.empty() ? std::string("none") : l;
  };
  if (file) {
    if (std::find(ggufs.begin(), ggufs.end(), *file) == ggufs.end())
      throw HubError(HubError::Kind::kEntryNotFound, "--gguf-file '" + *file +
                                                         "' is not a GGUF file of repository '" +
                                                         repo + "' (it has: " + list() + ")");
    return {*file};
  }
  auto pick = [&](const std::string& q) {
    std::vector<std::string> m;
    std::string ql = base::to_lower(q);
    for (auto& g : ggufs)
      if (base::to_lower(g).find(ql) != std::string::npos) m.push_back(g);
    return m;
  };
  std::vector<std::string> m;
  if (quant) {
    m = pick(*quant);
    if (m.empty())
      throw HubError(HubError::Kind::kEntryNotFound, "repository '" + repo +
                                                         "' has no GGUF file for quantisation '" +
                                                         *quant + "' (it has: " + list() + ")");
  } else if (ggufs.size() == 1) {
    m = ggufs;
  } else {
    m = pick("Q4_K_M");
    if (m.empty())
      throw HubError(HubError::Kind::kEntryNotFound,
                     "repository '" + repo + "' has several GGUF files (" + list() +
                         "): choose one with " + repo + ":QUANT (e.g. :Q8_0) or --gguf-file NAME");
  }
  // Several matches are fine only when they are the parts of one split file.
  if (m.size() > 1) {
    bool split = std::all_of(m.begin(), m.end(), [](const std::string& g) {
      return g.find("-of-") != std::string::npos;
    });
    if (!split) {
      std::string l;
      for (auto& g : m) l += (l.empty() ? "" : ", ") + g;
      throw HubError(
          HubError::Kind::kEntryNotFound,
          "several GGUF files of '" + repo + "' match (" + l + "): name one with --gguf-file");
    }
  }
  return m;
}

http::ClientHeaders Client::auth_headers() const {
  http::ClientHeaders h;
  h.emplace_back("User-Agent", "lmstream/0.1.0; hf_hub-compatible");
  if (cfg_.token) h.emplace_back("Authorization", "Bearer " + *cfg_.token);
  return h;
}

http::ClientOptions Client::api_options() const {
  http::ClientOptions o;
  o.connect_timeout = dl_.connect_timeout;
  o.stall_timeout = dl_.stall_timeout;
  o.cancel = dl_.cancel;
  o.redirects.follow = true;  // a renamed repository (a relative 307); never used for HEAD
  return o;
}

RepoInfo Client::repo_info(const std::string& repo, const std::optional<std::string>& revision) {
  const std::string url = api_url(cfg_.endpoint, repo, revision);
  for (int attempt = 0;; ++attempt) {
    http::ClientRequest req;
    req.url = url + "?blobs=True";  // adds siblings[].size (the progress total)
    req.headers = auth_headers();
    http::ClientResponse resp;
    try {
      resp = http::fetch(req, api_options(), 16 << 20);
    } catch (const http::ClientError& e) {
      if (attempt < dl_.retries && retryable(e)) {
        sleep_backoff(dl_, attempt);
        continue;
      }
      throw HubError(HubError::Kind::kHttp,
                     "cannot reach the Hub for '" + repo + "': " + e.what() +
                         (cfg_.endpoint.empty() ? "" : " (HF_ENDPOINT " + cfg_.endpoint + ")") +
                         "; with the files already cached, HF_HUB_OFFLINE=1 uses them offline");
    }
    if (retryable_status(resp.head.status) && attempt < dl_.retries) {
      sleep_backoff(dl_, attempt);
      continue;
    }
    if (resp.head.status != 200)
      throw error_from_response(resp.head, resp.body, url, repo, revision.value_or("main"), "",
                                cfg_.token.has_value());
    RepoInfo info = parse_repo_info(resp.body);
    if (!is_commit_hash(info.sha))
      throw HubError(HubError::Kind::kProtocol,
                     "the Hub's info for '" + repo + "' has no commit sha (" + url + ")");
    return info;
  }
}

FileMeta Client::file_meta(const std::string& repo, const std::string& revision,
                           const std::string& file) {
  std::string url = resolve_url(cfg_.endpoint, repo, revision, file);
  const std::string first = url;
  for (int attempt = 0, hops = 0;;) {
    http::ClientRequest req;
    req.method = "HEAD";
    req.url = url;
    req.headers = auth_headers();
    req.headers.emplace_back("Accept-Encoding", "identity");
    http::ResponseHead h;
    try {
      http::ClientOptions ho = api_options();
      ho.redirects.follow = false;  // redirects are read here: a CDN Location is the download URL
      h = http::perform(req, ho, {});
    } catch (const http::ClientError& e) {
      if (attempt < dl_.retries && retryable(e)) {
        sleep_backoff(dl_, attempt++);
        continue;
      }
      throw HubError(HubError::Kind::kHttp,
                     "cannot reach the Hub for '" + repo + "/" + file + "': " + e.what());
    }
    if (retryable_status(h.status) && attempt < dl_.retries) {
      sleep_backoff(dl_, attempt++);
      continue;
    }
    auto loc = h.header("Location");
    if (h.status >= 300 && h.status < 400 && loc && !loc->empty() && (*loc)[0] == '/') {
      if (++hops > 10) throw HubError(HubError::Kind::kProtocol, "too many redirects for " + first);
      url = origin_of(url) + *loc;  // renamed repo: follow with the same method
      continue;
    }
    if (h.status >= 400)
      throw error_from_response(h, "", url, repo, revision, file, cfg_.token.has_value());
    FileMeta m;
    m.commit = h.header("X-Repo-Commit").value_or("");
    std::string etag = h.header("X-Linked-Etag").value_or(h.header("ETag").value_or(""));
    m.etag = normalize_etag(etag);
    std::string size = h.header("X-Linked-Size").value_or(h.header("Content-Length").value_or(""));
    long long sz = -1;
    if (m.commit.empty() || m.etag.empty() || !base::parse_int64(size, sz) || sz < 0)
      throw HubError(HubError::Kind::kProtocol,
                     "HEAD " + url +
                         " did not answer with X-Repo-Commit, an ETag and a size: "
                         "HF_ENDPOINT does not seem to be a Hugging Face Hub");
    if (m.etag.find('/') != std::string::npos || m.etag == "." || m.etag == "..")
      throw HubError(HubError::Kind::kProtocol, "unusable ETag '" + m.etag + "' from " + url);
    m.size = uint64_t(sz);
    m.url = (h.status >= 300 && h.status < 400 && loc) ? *loc : url;
    return m;
  }
}

RemoteFile Client::remote_file(const std::string& name, const FileMeta& meta) const {
  RemoteFile f;
  f.name = name;
  f.size = meta.size;
  bool hex = std::all_of(meta.etag.begin(), meta.etag.end(),
                         [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
  if (hex && meta.etag.size() == 64) f.sha256 = meta.etag;
  if (hex && meta.etag.size() == 40) f.git_sha1 = meta.etag;
  const bool same_host = host_of(meta.url) == host_of(cfg_.endpoint);
  http::ClientHeaders headers;
  headers.emplace_back("User-Agent", "lmstream/0.1.0; hf_hub-compatible");
  headers.emplace_back("Accept-Encoding", "identity");
  if (same_host && cfg_.token) headers.emplace_back("Authorization", "Bearer " + *cfg_.token);
  std::string url = meta.url;
  f.request = [url, headers](std::optional<http::ByteRange> range) {
    http::ClientRequest r;
    r.url = url;
    r.headers = headers;
    r.range = range;
    return r;
  };
  return f;
}

Result Client::fetch_offline(const Request& r) {
  Cache cache(cfg_.cache_dir);
  auto commit = cache.commit_of(r.repo, r.revision);
  const std::string hint = " Run once with the network (e.g. `lmstream download " + r.repo +
                           "`) or unset "
                           "HF_HUB_OFFLINE.";
  if (!commit || !fs::is_directory(cache.snapshot_dir(r.repo, *commit)))
    throw HubError(HubError::Kind::kOffline, "HF_HUB_OFFLINE is set and revision '" + r.revision +
                                                 "' of '" + r.repo + "' is not in the cache " +
                                                 cfg_.cache_dir + "." + hint);
  Result res;
  res.commit = *commit;
  res.dir = cache.snapshot_dir(r.repo, *commit);
  RepoInfo info;
  info.id = r.repo;
  info.sha = *commit;
  for (auto& f : list_tree(res.dir)) info.siblings.push_back({f, std::nullopt});
  std::vector<std::string> files;
  if (!r.include.empty()) {
    files = match_include(info, r.include, r.repo, r.revision);
  } else if (r.gguf_file || r.quant ||
             (has_gguf(info) &&
              !std::any_of(info.siblings.begin(), info.siblings.end(), [](const Sibling& s) {
                return ends_with(s.rfilename, ".safetensors");
              }))) {
    files = select_gguf_files(info, r.repo, r.quant, r.gguf_file);
    res.gguf = res.dir + "/" + files.front();
  } else {
    std::string idx;
    std::string idx_path = res.dir + "/model.safetensors.index.json";
    bool has_idx = fs::is_regular_file(idx_path);
    if (has_idx) idx = base::read_file(idx_path);
    files = select_model_files(info, r.repo, r.revision, has_idx ? &idx : nullptr);
  }
  if (dl_.progress) {
    for (auto& f : files) dl_.progress->file_cached(f, fs::file_size(res.dir + "/" + f));
    dl_.progress->note("offline (HF_HUB_OFFLINE): using " + res.dir);
  }
  res.files = files;
  return res;
}

Result Client::fetch(const Request& r) {
  if (cfg_.offline) {
    if (r.local_dir)
      throw HubError(HubError::Kind::kOffline,
                     "HF_HUB_OFFLINE is set: --local-dir needs the network (the cache is used "
                     "without it)");
    return fetch_offline(r);
  }
  Cache cache(cfg_.cache_dir);
  RepoInfo info = repo_info(r.repo, r.revision);
  const std::string commit = info.sha;
  if (!r.local_dir) cache.write_ref(r.repo, r.revision, commit);
  Progress* prog = dl_.progress;

  auto size_of = [&](const std::string& f) -> uint64_t {
    for (auto& s : info.siblings)
      if (s.rfilename == f) return s.size.value_or(0);
    return 0;
  };
  // One file into the cache (or local_dir); returns its local path.
  auto fetch_one = [&](const std::string& file) -> std::string {
    std::string final_path, meta_path;
    if (r.local_dir) {
      final_path = *r.local_dir + "/" + file;
      meta_path = *r.local_dir + "/.cache/huggingface/download/" + file + ".metadata";
      std::ifstream mf(meta_path);
      std::string c;
      if (mf && std::getline(mf, c) && c == commit && fs::is_regular_file(final_path)) {
        if (prog) prog->file_cached(file, fs::file_size(final_path));
        return final_path;
      }
    } else {
      std::string snap = cache.snapshot_path(r.repo, commit, file);
      if (fs::is_regular_file(snap)) {  // no request for a file of a known commit
        if (prog) prog->file_cached(file, fs::file_size(snap));
        return snap;
      }
    }
    FileMeta m = file_meta(r.repo, commit, file);
    RemoteFile rf = remote_file(file, m);
    if (r.local_dir) {
      fs::create_directories(fs::path(final_path).parent_path());
      if (fs::exists(final_path)) fs::remove(final_path);
      if (prog) prog->file_start(file, m.size, host_of(m.url));
      download(rf, final_path, dl_);
      fs::create_directories(fs::path(meta_path).parent_path());
      base::write_file_atomic(meta_path, commit + "\n" + m.etag + "\n");
      return final_path;
    }
    fs::create_directories(cache.blobs_dir(r.repo));
    std::string blob = cache.blob_path(r.repo, m.etag);
    if (fs::is_regular_file(blob)) {
      if (prog) prog->file_cached(file, m.size);
    } else {
      if (prog) prog->file_start(file, m.size, host_of(m.url));
      DownloadResult d = download(rf, blob, dl_);
      if (d.cached && prog) prog->file_cached(file, m.size);  // another process finished it
    }
    cache.link(r.repo, commit, file, m.etag);
    return cache.snapshot_path(r.repo, commit, file);
  };

  Result res;
  res.commit = commit;
  res.dir = r.local_dir ? *r.local_dir : cache.snapshot_dir(r.repo, commit);
  std::vector<std::string> files;
  bool any_st = std::any_of(info.siblings.begin(), info.siblings.end(), [](const Sibling& s) {
    return at_root(s.rfilename) && ends_with(s.rfilename, ".safetensors");
  });
  if (!r.include.empty()) {
    files = match_include(info, r.include, r.repo, r.revision);
  } else if (r.gguf_file || r.quant || (has_gguf(info) && !any_st)) {
    files = select_gguf_files(info, r.repo, r.quant, r.gguf_file);
  } else {
    bool has_idx = std::any_of(info.siblings.begin(), info.siblings.end(), [](const Sibling& s) {
      return s.rfilename == "model.safetensors.index.json";
    });
    if (has_idx) {
      std::string idx = base::read_file(fetch_one("model.safetensors.index.json"));
      files = select_model_files(info, r.repo, r.revision, &idx);
      files.erase(files.begin());  // the index itself: fetched above
    } else {
      files = select_model_files(info, r.repo, r.revision, nullptr);
    }
  }
  uint64_t total = 0, missing = 0;
  for (auto& f : files) {
    total += size_of(f);
    if (!r.local_dir && !fs::is_regular_file(cache.snapshot_path(r.repo, commit, f)))
      missing += size_of(f);
  }
  if (prog) prog->plan(int(files.size()), total);
  {  // free disk for the whole model first (each file is checked again before it starts)
    std::error_code ec;
    fs::path where = r.local_dir ? fs::path(*r.local_dir) : fs::path(cache.repo_dir(r.repo));
    fs::create_directories(where, ec);
    auto sp = fs::space(where, ec);
    if (!ec && sp.available < missing)
      throw DownloadError(DownloadError::Kind::kDisk,
                          "not enough free disk space for '" + r.repo + "' in " + where.string() +
                              ": " + Progress::bytes_text(double(missing)) + " needed, " +
                              Progress::bytes_text(double(sp.available)) +
                              " available (set HF_HUB_CACHE or HF_HOME to a larger disk)");
  }
  for (auto& f : files) fetch_one(f);
  if (r.gguf_file || r.quant || (r.include.empty() && has_gguf(info) && !any_st))
    res.gguf = res.dir + "/" + files.front();
  res.files = files;
  return res;
}

}  // namespace lmstream::store::hub
