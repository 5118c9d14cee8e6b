// The Hugging Face Hub client: the routes and headers huggingface_hub uses (repo info with a
// revision, HEAD of `resolve/{revision}/{file}` with its redirects, `X-Repo-Commit`, `ETag`,
// `X-Linked-Etag`, `X-Linked-Size`, `X-Error-Code`), `HF_ENDPOINT`, the token (sent only to the
// Hub's own host), `HF_HUB_OFFLINE`, and the files a model needs chosen as TGI chooses them
// (root safetensors, the shard index honoured, config and tokenizer files) or a GGUF file chosen
// as llama.cpp's `-hf org/name:QUANT` does. Files land in the huggingface_hub cache
// (store/hub_cache.h) through the downloader (store/download.h).
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "http/client.h"
#include "store/download.h"
#include "store/hub_cache.h"

namespace lmstream::store::hub {

struct Config {
  std::string endpoint = "https://huggingface.co";  // HF_ENDPOINT, no trailing slash
  std::optional<std::string> token;  // HF_TOKEN > HUGGING_FACE_HUB_TOKEN > HF_API_TOKEN > file
  std::string cache_dir;             // hub_cache_dir()
  bool offline = false;              // HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE in 1/on/yes/true
  static Config from_env(const Env& env);
};

class HubError : public std::runtime_error {
 public:
  enum class Kind {
    kBadId,
    kGated,
    kRepoNotFound,
    kRevisionNotFound,
    kEntryNotFound,
    kNoWeights,  // nothing lmstream can load (e.g. .bin only)
    kOffline,
    kHttp,
    kProtocol,  // a response without the headers the Hub always sends
  };
  HubError(Kind kind, const std::string& m) : std::runtime_error(m), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

struct Sibling {
  std::string rfilename;
  std::optional<uint64_t> size;
};

struct RepoInfo {
  std::string id, sha;
  std::vector<Sibling> siblings;
};

struct FileMeta {
  std::string commit;
  std::string etag;  // normalised: 64 hex = sha256 (LFS), 40 hex = git blob sha1
  uint64_t size = 0;
  std::string url;  // where to GET the bytes (the redirect target, or the resolve URL)
};

// A parsed model name: "org/name", "org/name:Q4_K_M" (a GGUF quant).
struct RepoRef {
  std::string repo;
  std::optional<std::string> quant;
};
// Throws HubError(kBadId) unless `s` is org/name[:tag] with Hub characters.
RepoRef parse_repo_ref(const std::string& s);
// Whether `s` looks like a Hub id (org/name[:tag]) rather than a path.
bool looks_like_repo_id(const std::string& s);

// URL building (percent-encoding as huggingface_hub: revision with safe="", path keeping "/").
std::string quote(std::string_view s, bool keep_slash);
std::string api_url(const std::string& endpoint, const std::string& repo,
                    const std::optional<std::string>& revision);
std::string resolve_url(const std::string& endpoint, const std::string& repo,
                        const std::string& revision, const std::string& file);

// The error for a non-2xx Hub answer, decided on X-Error-Code first, then the status; names the
// repo, the revision or file, the URL, the server's text and what to do.
HubError error_from_response(const http::ResponseHead& head, const std::string& body,
                             const std::string& url, const std::string& repo,
                             const std::string& revision, const std::string& file, bool token_sent);

RepoInfo parse_repo_info(const std::string& json);

// Which files of a repo to fetch for lmstream (TGI's rules): root *.safetensors without
// arguments/args/training in the name (only the shards named by model.safetensors.index.json when
// `index_json` is given), plus config/tokenizer files present. Throws HubError(kNoWeights) with a
// message naming the .bin files when only those exist.
std::vector<std::string> select_model_files(const RepoInfo& info, const std::string& repo,
                                            const std::string& revision,
                                            const std::string* index_json);
// GGUF choice: `file` exactly, else the root *.gguf whose name contains `quant`
// (case-insensitive, with all its -0000k-of-0000n split parts), else the only *.gguf, else
// Q4_K_M. Throws HubError naming the candidates when it cannot choose.
std::vector<std::string> select_gguf_files(const RepoInfo& info, const std::string& repo,
                                           const std::optional<std::string>& quant,
                                           const std::optional<std::string>& file);
bool has_gguf(const RepoInfo& info);

struct Request {
  std::string repo;
  std::string revision = "main";
  std::optional<std::string> quant;      // org/name:QUANT
  std::optional<std::string> gguf_file;  // --gguf-file
  std::vector<std::string> include;      // --include globs: exactly these files
  std::optional<std::string> local_dir;  // --local-dir: files there instead of the cache
};

// What a download produced: the directory (snapshot or local dir) and, for GGUF, the file.
struct Result {
  std::string dir;
  std::optional<std::string> gguf;
  std::string commit;
  std::vector<std::string> files;
  std::string path() const { return gguf ? *gguf : dir; }
};

class Client {
 public:
  Client(Config cfg, DownloadOptions dl) : cfg_(std::move(cfg)), dl_(std::move(dl)) {}
  const Config& config() const { return cfg_; }

  RepoInfo repo_info(const std::string& repo, const std::optional<std::string>& revision);
  FileMeta file_meta(const std::string& repo, const std::string& revision, const std::string& file);
  // A RemoteFile for `meta`: the token only when the URL is on the Hub's host.
  RemoteFile remote_file(const std::string& name, const FileMeta& meta) const;

  // Everything Request names, into the cache (or local_dir); offline: from the cache only.
  Result fetch(const Request& r);

 private:
  http::ClientHeaders auth_headers() const;
  Result fetch_offline(const Request& r);
  http::ClientOptions api_options() const;

  Config cfg_;
  DownloadOptions dl_;
};

}  // namespace lmstream::store::hub
