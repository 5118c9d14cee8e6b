// `lmstream download MODEL`: fetches a model as `huggingface-cli download` does (into the
// huggingface_hub cache, or --local-dir) and prints the local path it resolved to on stdout, so
// `lmstream serve --model "$(lmstream download org/name)"` works. Progress goes to stderr.
#include <cstdio>

#include "cli/command.h"
#include "store/download.h"
#include "store/progress.h"
#include "store/resolve.h"

namespace lmstream::cli {
namespace {

struct DownloadArgs {
  std::string model, revision, local_dir, gguf_file;
  std::vector<std::string> include;
  int connections = 0;
  bool quiet = false;
};

void run(const DownloadArgs& a) {
  store::ResolveOptions ro;
  if (!a.revision.empty()) ro.revision = a.revision;
  if (!a.gguf_file.empty()) ro.gguf_file = a.gguf_file;
  if (!a.local_dir.empty()) ro.local_dir = a.local_dir;
  ro.include = a.include;
  ro.download = store::DownloadOptions::from_env();
  if (a.connections > 0) ro.download.connections = a.connections;
  store::Progress progress(a.quiet ? store::Progress::Mode::kQuiet : store::Progress::Mode::kAuto);
  ro.download.progress = &progress;
  std::string path = store::resolve_model(a.model, ro);
  std::printf("%s\n", path.c_str());
  std::fflush(stdout);
}

const Register reg(
    "download",
    "Download a model (Hugging Face Hub id org/name[:QUANT], s3://bucket/key, s3://bucket/prefix/, "
    "a model.tar.gz, file://, local path) and print its local path",
    [](CLI::App& sub) {
      auto a = std::make_shared<DownloadArgs>();
      sub.add_option("model", a->model,
                     "Hub id org/name (org/name:Q4_K_M picks a GGUF file), s3:// URL, archive, or "
                     "a path")
          ->required();
      sub.add_option("--revision", a->revision,
                     "branch, tag or commit (env HF_MODEL_REVISION; default main)");
      sub.add_option("--include", a->include,
                     "only the repository files matching this glob (repeatable); default: what "
                     "lmstream needs to serve the model");
      sub.add_option("--local-dir", a->local_dir,
                     "put the files in this directory instead of the Hugging Face cache");
      sub.add_option("--gguf-file", a->gguf_file, "the GGUF file of the repository to fetch");
      sub.add_option("--connections", a->connections,
                     "parallel ranged requests per file (env LMSTREAM_DOWNLOAD_CONNECTIONS; 8)")
          ->default_str("8")
          ->check(CLI::Range(1, 256));
      sub.add_flag("--quiet,-q", a->quiet, "no progress output");
      sub.footer(
          "Environment: HF_ENDPOINT, HF_TOKEN / HUGGING_FACE_HUB_TOKEN (or $HF_HOME/token), "
          "HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE=1 (cache only), HF_HUB_DOWNLOAD_TIMEOUT (stall "
          "seconds, 30), LMSTREAM_DOWNLOAD_CONNECTIONS, LMSTREAM_DOWNLOAD_PART_SIZE (32MiB), "
          "LMSTREAM_DOWNLOAD_RETRIES (5), LMSTREAM_DOWNLOAD_FSYNC (1; 0 = no flush to disk before "
          "the rename). S3: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN or "
          "AWS_PROFILE (~/.aws/credentials, ~/.aws/config), AWS_REGION, AWS_ENDPOINT_URL_S3 / "
          "AWS_ENDPOINT_URL (path-style, for S3-compatible stores); S3 objects and unpacked "
          "archives are kept under LMSTREAM_CACHE ($XDG_CACHE_HOME/lmstream or "
          "~/.cache/lmstream).");
      sub.callback([a] { run(*a); });
    });

}  // namespace
}  // namespace lmstream::cli
