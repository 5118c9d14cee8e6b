// The model resolver's dispatch (see resolve.h).
#include "store/resolve.h"

#include <filesystem>
#include <stdexcept>

#include "base/strings.h"
#include "store/hub.h"
#include "store/progress.h"

namespace lmstream::store {

namespace fs = std::filesystem;

namespace {
bool ends_with(std::string_view s, std::string_view t) {
  return s.size() >= t.size() && s.substr(s.size() - t.size()) == t;
}
bool archive_name(const std::string& p) {
  std::string l = base::to_lower(p);
  return ends_with(l, ".tar.gz") || ends_with(l, ".tgz") || ends_with(l, ".tar");
}
}  // namespace

ModelSource classify(const std::string& spec) {
  std::error_code ec;
  if (!spec.empty() && fs::exists(spec, ec))
    return {archive_name(spec) && !fs::is_directory(spec, ec) ? SourceKind::kArchive
                                                              : SourceKind::kLocal,
            spec};
  if (base::istarts_with(spec, "file://")) {
    std::string p = base::percent_decode(spec.substr(7));
    return {archive_name(p) ? SourceKind::kArchive : SourceKind::kFileUrl, p};
  }
  if (base::istarts_with(spec, "s3://")) return {SourceKind::kS3, spec};
  if (spec.find("://") != std::string::npos) return {SourceKind::kUnsupported, spec};
  if (spec.empty() || spec[0] == '/' || spec[0] == '.' || spec[0] == '~')
    return {SourceKind::kLocal, spec};  // a path that does not exist: load_model says so
  if (hub::looks_like_repo_id(spec)) return {SourceKind::kHub, spec};
  return {SourceKind::kLocal, spec};
}

std::string resolve_model(const std::string& spec, const ResolveOptions& o) {
  ModelSource s = classify(spec);
  switch (s.kind) {
    case SourceKind::kLocal:
      return s.location;
    case SourceKind::kFileUrl: {
      std::error_code ec;
      if (!fs::exists(s.location, ec))
        throw std::runtime_error("'" + spec + "': no such file or directory: " + s.location);
      return s.location;
    }
    case SourceKind::kArchive:
      return resolve_archive(s.location, o);
    case SourceKind::kS3:
      return resolve_s3(s.location, o);
    case SourceKind::kUnsupported:
      throw std::runtime_error("'" + spec +
                               "': unsupported model location; use a local path, file://, "
                               "s3://bucket/key or a Hugging Face Hub id org/name");
    case SourceKind::kHub:
      break;
  }
  hub::RepoRef ref = hub::parse_repo_ref(spec);
  hub::Request r;
  r.repo = ref.repo;
  r.quant = ref.quant;
  r.gguf_file = o.gguf_file;
  r.include = o.include;
  r.local_dir = o.local_dir;
  if (o.revision && !o.revision->empty())
    r.revision = *o.revision;
  else if (auto v = o.env("HF_MODEL_REVISION"); v && !v->empty())
    r.revision = *v;
  hub::Config cfg = hub::Config::from_env(o.env);
  DownloadOptions dl = o.download;
  hub::Client client(cfg, dl);
  if (dl.progress)
    dl.progress->note("model " + r.repo + " revision " + r.revision + " from " +
                      (cfg.offline ? std::string("the cache (offline)") : cfg.endpoint) +
                      ", cache " + cfg.cache_dir);
  hub::Result res = [&] {
    try {
      return client.fetch(r);
    } catch (const hub::HubError& e) {
      if (e.kind() != hub::HubError::Kind::kRepoNotFound && e.kind() != hub::HubError::Kind::kHttp)
        throw;
      throw hub::HubError(e.kind(), std::string(e.what()) + " (No local file or directory '" +
                                        spec + "' exists either.)");
    }
  }();
  if (dl.progress) dl.progress->summary();
  return res.path();
}

}  // namespace lmstream::store
