// Archive tests: archives written in the test with libarchive's writer (gzip'd tar and plain
// tar), extracted for real into a temporary directory. Good archives (files, directories, a safe
// relative symlink, a hard link, serving.properties at the root or in the one top-level
// directory); hostile ones ('../', absolute paths, symlinks out, links through links, hard links
// out, device nodes), each refused before anything is written; too big for the (injected) free
// space; a corrupt and a truncated gzip; and that no temporary directory survives a failure.
// Then the archive source of the resolver (store/sources.h): local archives unpacked once into
// the lmstream cache, serving.properties' option.model_id followed (to a path, to another
// archive, and not forever).
#include "store/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "store/resolve.h"
#include "store/sources.h"

namespace lmstream::store {
namespace {

namespace fs = std::filesystem;

struct Item {
  std::string path;
  std::string data;        // regular files
  mode_t type = AE_IFREG;  // AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR
  std::string link;        // symlink target
  std::string hardlink;    // hard link target
};

Item file(std::string p, std::string d) { return {std::move(p), std::move(d)}; }
Item dir(std::string p) { return {std::move(p), "", AE_IFDIR}; }
Item symlink(std::string p, std::string t) { return {std::move(p), "", AE_IFLNK, std::move(t)}; }
Item hardlink(std::string p, std::string t) {
  return {std::move(p), "", AE_IFREG, "", std::move(t)};
}

void write_archive(const fs::path& path, const std::vector<Item>& items, bool gzip = true) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (gzip) archive_write_add_filter_gzip(a);
  ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK);
  for (const Item& it : items) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, it.path.c_str());
    archive_entry_set_filetype(e, it.type);
    archive_entry_set_perm(e, it.type == AE_IFDIR ? 0755 : 0644);
    if (it.type == AE_IFLNK) archive_entry_set_symlink(e, it.link.c_str());
    if (!it.hardlink.empty()) archive_entry_set_hardlink(e, it.hardlink.c_str());
    if (it.type == AE_IFCHR) archive_entry_set_rdev(e, 0x0103);
    archive_entry_set_size(e, it.type == AE_IFREG && it.hardlink.empty() ? it.data.size() : 0);
    ASSERT_EQ(archive_write_header(a, e), ARCHIVE_OK) << archive_error_string(a);
    if (it.type == AE_IFREG && it.hardlink.empty() && !it.data.empty()) {
      ASSERT_EQ(archive_write_data(a, it.data.data(), it.data.size()), la_ssize_t(it.data.size()));
    }
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class Archive : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("lms-archive-test-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "out");
    fs::create_directories(root_ / "outside");
  }
  void TearDown() override { fs::remove_all(root_); }

  // Extracting must fail with a message holding `expect`, and leave `out/` exactly empty (no
  // model directory, no temporary directory) and `outside/` untouched.
  void expect_refused(const std::vector<Item>& items, const std::string& expect,
                      ExtractOptions options = {}) {
    const fs::path a = root_ / "bad.tar.gz";
    write_archive(a, items);
    try {
      extract_archive(a.string(), (root_ / "out" / "model").string(), options);
      ADD_FAILURE() << "extraction of a hostile archive succeeded (" << expect << ")";
    } catch (const ArchiveError& e) {
      EXPECT_NE(std::string(e.what()).find(expect), std::string::npos) << e.what();
    }
    EXPECT_TRUE(fs::is_empty(root_ / "out")) << "something was written";
    EXPECT_TRUE(fs::is_empty(root_ / "outside")) << "something escaped";
  }

  fs::path root_;
};

TEST_F(Archive, GoodArchiveIsExtractedWithItsServingProperties) {
  const fs::path a = root_ / "model.tar.gz";
  const std::string big(300000, 'w');
  write_archive(
      a, {file("serving.properties", "engine=Python\noption.model_id=s3://b/p/\n"),
          file("config.json", "{\"a\": 1}"), dir("weights"), file("weights/model.safetensors", big),
          symlink("model.safetensors", "weights/model.safetensors"),
          hardlink("copy.json", "config.json"), file("./tokenizer.json", "{}")});
  EXPECT_TRUE(is_archive_path(a.string()));
  const ArchiveSummary scanned = scan_archive(a.string());
  EXPECT_EQ(scanned.files, 4u);
  EXPECT_EQ(scanned.serving_properties, "serving.properties");

  const fs::path dest = root_ / "out" / "model";
  const ArchiveSummary s = extract_archive(a.string(), dest.string());
  EXPECT_EQ(s.files, 4u);
  EXPECT_EQ(s.directories, 1u);
  EXPECT_EQ(s.links, 2u);
  EXPECT_EQ(s.bytes, big.size() + 40 + 8 + 2);
  EXPECT_EQ(s.serving_properties, "serving.properties");
  EXPECT_EQ(slurp(dest / "serving.properties"), "engine=Python\noption.model_id=s3://b/p/\n");
  EXPECT_EQ(slurp(dest / "weights" / "model.safetensors"), big);
  EXPECT_TRUE(fs::is_symlink(dest / "model.safetensors"));
  EXPECT_EQ(slurp(dest / "model.safetensors"), big);
  EXPECT_EQ(slurp(dest / "copy.json"), "{\"a\": 1}");
  EXPECT_EQ(slurp(dest / "tokenizer.json"), "{}");
  // Only the model directory is left in out/: the temporary one was renamed.
  std::vector<std::string> names;
  for (const auto& d : fs::directory_iterator(root_ / "out")) names.push_back(d.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{"model"});
  EXPECT_EQ(model_root(dest.string()), dest.string());

  // A second extraction into the same place is refused rather than merged.
  EXPECT_THROW(extract_archive(a.string(), dest.string()), ArchiveError);
}

TEST_F(Archive, OneTopLevelDirectoryAndPlainTar) {
  const fs::path a = root_ / "model.tar";
  write_archive(a,
                {dir("chat_llama2"), file("chat_llama2/serving.properties", "engine=MPI\n"),
                 file("chat_llama2/config.json", "{}"), file(".hidden", "x")},
                /*gzip=*/false);
  const fs::path dest = root_ / "out" / "m";
  const ArchiveSummary s = extract_archive(a.string(), dest.string());
  EXPECT_EQ(s.serving_properties, "");  // two top-level names (.hidden): no single directory
  EXPECT_EQ(model_root(dest.string()), (dest / "chat_llama2").string());  // hidden ones ignored
  const fs::path b = root_ / "nested.tgz";
  write_archive(b, {file("chat_llama2/serving.properties", "engine=MPI\n")});
  EXPECT_EQ(scan_archive(b.string()).serving_properties, "chat_llama2/serving.properties");
}

TEST_F(Archive, DotDotEntryIsRefused) {
  expect_refused({file("config.json", "{}"), file("../outside/evil", "x")},
                 "refusing entry '../outside/evil': '..' would leave the model directory");
  expect_refused({file("a/../../outside/evil", "x")}, "'..' would leave");
}

TEST_F(Archive, AbsolutePathIsRefused) {
  const std::string target = (root_ / "outside" / "evil").string();
  expect_refused({file("config.json", "{}"), file(target, "x")}, "absolute path");
}

TEST_F(Archive, SymlinkEscapesAreRefused) {
  expect_refused({symlink("link", "../outside")}, "points outside the model directory");
  expect_refused({symlink("sub/link", "../../outside/x")}, "points outside the model directory");
  expect_refused({symlink("link", (root_ / "outside").string())}, "absolute path");
  // A file written through a symlink (the classic two-step escape).
  expect_refused({symlink("link", "sub"), dir("sub"), file("link/x", "x")},
                 "written through symbolic link 'link'");
  // A link whose path goes through another link: 'l' -> '.', 'sub/l2' -> '../l/..' is
  // lexically inside but physically one level up.
  expect_refused({symlink("l", "."), dir("sub"), symlink("sub/l2", "../l/..")},
                 "goes through another symbolic link");
}

TEST_F(Archive, HardLinksOutsideAndDevicesAreRefused) {
  expect_refused({file("a", "x"), hardlink("b", "../outside/a")}, "refusing hard link target");
  expect_refused({symlink("s", "a"), file("a", "x"), hardlink("h", "s")},
                 "hard link to a symbolic link");
  expect_refused({Item{"dev", "", AE_IFCHR}}, "device node");
}

TEST_F(Archive, TooBigForTheFreeDiskIsRefusedFirst) {
  ExtractOptions tight;
  tight.free_space = [](const std::string&) { return uint64_t(40) << 20; };  // 40 MiB
  tight.headroom = 0;
  const std::string chunk(30 << 20, 'z');  // 2 x 30 MiB of zeros compress to almost nothing
  expect_refused({file("a.bin", chunk), file("b.bin", chunk)},
                 "unpacking needs 61 MiB (2 files, 60 MiB uncompressed) but", tight);
  // With room, the same archive extracts.
  ExtractOptions roomy;
  roomy.free_space = [](const std::string&) { return uint64_t(1) << 40; };
  const fs::path a = root_ / "bad.tar.gz";
  EXPECT_EQ(extract_archive(a.string(), (root_ / "out" / "m").string(), roomy).bytes, uint64_t(60)
                                                                                          << 20);
}

TEST_F(Archive, CorruptAndTruncatedGzipAreRefused) {
  const fs::path a = root_ / "model.tar.gz";
  std::string payload;
  for (int i = 0; i < 200000; ++i) payload += std::to_string(i * 7919 % 100003) + ",";
  write_archive(a, {file("config.json", "{}"), file("model.safetensors", payload)});
  std::string bytes = slurp(a);
  ASSERT_GT(bytes.size(), 4000u);
  std::string corrupt = bytes;
  for (size_t i = bytes.size() / 2; i < bytes.size() / 2 + 64; ++i) corrupt[i] ^= 0x5a;
  std::ofstream(root_ / "corrupt.tar.gz", std::ios::binary) << corrupt;
  std::ofstream(root_ / "short.tar.gz", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  std::ofstream(root_ / "junk.tar.gz", std::ios::binary) << "this is not an archive at all";
  for (const char* name : {"corrupt.tar.gz", "short.tar.gz", "junk.tar.gz"}) {
    try {
      extract_archive((root_ / name).string(), (root_ / "out" / "model").string());
      ADD_FAILURE() << name << " was extracted";
    } catch (const ArchiveError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(name), std::string::npos) << m;
      EXPECT_NE(m.find("nothing was extracted"), std::string::npos) << m;
    }
    EXPECT_TRUE(fs::is_empty(root_ / "out")) << name;
  }
  EXPECT_THROW(
      extract_archive((root_ / "missing.tar.gz").string(), (root_ / "out" / "model").string()),
      ArchiveError);
}

// ---- the resolver's archive source ----

Env env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(Sources, CacheDirHashAndServingProperties) {
  EXPECT_EQ(lmstream_cache_dir(env_of({{"LMSTREAM_CACHE", "/c"}, {"HOME", "/h"}})), "/c");
  EXPECT_EQ(lmstream_cache_dir(env_of({{"XDG_CACHE_HOME", "/x"}, {"HOME", "/h"}})), "/x/lmstream");
  EXPECT_EQ(lmstream_cache_dir(env_of({{"HOME", "/h"}})), "/h/.cache/lmstream");
  EXPECT_EQ(short_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a3");  // SHA-256 prefix
  const fs::path p = fs::temp_directory_path() / ("lms-props-" + std::to_string(::getpid()));
  std::ofstream(p) << "# comment\n! also\nengine = Python\noption.s3url=s3://old/x/\n"
                      "option.model_id : s3://models/llama/\n";
  EXPECT_EQ(serving_properties_model_id(p.string()), "s3://models/llama/");
  std::ofstream(p) << "engine=Python\noption.s3url=s3://old/x/\n";
  EXPECT_EQ(serving_properties_model_id(p.string()), "s3://old/x/");
  std::ofstream(p) << "engine=Python\n";
  EXPECT_EQ(serving_properties_model_id(p.string()), "");
  fs::remove(p);
}

TEST_F(Archive, LocalArchiveIsUnpackedOnceIntoTheCache) {
  const fs::path a = root_ / "model.tar.gz";
  write_archive(a, {file("chat/config.json", "{}"),
                    file("chat/serving.properties", "option.model_id=/opt/ml/model\n")});
  ResolveOptions o;
  o.env = env_of({{"LMSTREAM_CACHE", (root_ / "cache").string()}});
  const std::string dir = resolve_model(a.string(), o);
  // Under cache/archives/<hash>/, the one top-level directory (DJL's rule); the SageMaker path in
  // option.model_id does not exist here, so the unpacked directory is the model.
  EXPECT_EQ(fs::path(dir).filename(), "chat");
  EXPECT_EQ(fs::path(dir).parent_path().parent_path(), root_ / "cache" / "archives");
  EXPECT_EQ(slurp(fs::path(dir) / "config.json"), "{}");
  // A second resolve does not unpack again (a mark left in the directory survives) ...
  std::ofstream(fs::path(dir) / "mark") << "x";
  EXPECT_EQ(resolve_model(a.string(), o), dir);
  EXPECT_TRUE(fs::exists(fs::path(dir) / "mark"));
  // ... until the archive changes (its size and mtime key the cache entry).
  write_archive(a, {file("chat/config.json", "{\"v\": 2}")});
  fs::last_write_time(a, fs::last_write_time(a) + std::chrono::seconds(5));
  const std::string dir2 = resolve_model(a.string(), o);
  EXPECT_NE(dir2, dir);
  EXPECT_EQ(slurp(fs::path(dir2) / "config.json"), "{\"v\": 2}");
}

TEST_F(Archive, ServingPropertiesModelIdIsFollowed) {
  const fs::path weights = root_ / "weights";
  fs::create_directories(weights);
  std::ofstream(weights / "config.json") << "{}";
  // option.model_id naming an existing directory ...
  const fs::path a = root_ / "pointer.tar.gz";
  write_archive(a, {file("serving.properties", "option.model_id=" + weights.string() + "\n")});
  ResolveOptions o;
  o.env = env_of({{"LMSTREAM_CACHE", (root_ / "cache").string()}});
  EXPECT_EQ(resolve_model(a.string(), o), weights.string());
  // ... another archive (resolved in turn) ...
  const fs::path b = root_ / "outer.tar";
  write_archive(b, {file("serving.properties", "option.model_id=file://" + a.string() + "\n")},
                false);
  EXPECT_EQ(resolve_model(b.string(), o), weights.string());
  // ... a path relative to the unpacked directory ...
  const fs::path c = root_ / "relative.tar.gz";
  write_archive(
      c, {file("serving.properties", "option.model_id=sub\n"), file("sub/config.json", "{}")});
  EXPECT_EQ(fs::path(resolve_model(c.string(), o)).filename(), "sub");
  // ... but an archive pointing at itself stops with a clear error.
  const fs::path self = root_ / "self.tar.gz";
  write_archive(self, {file("serving.properties", "option.model_id=" + self.string() + "\n")});
  try {
    resolve_model(self.string(), o);
    ADD_FAILURE() << "a self-referencing archive resolved";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("leads through more than 4 archives"), std::string::npos)
        << e.what();
  }
}

TEST(ArchivePath, Suffixes) {
  EXPECT_TRUE(is_archive_path("/x/model.tar.gz"));
  EXPECT_TRUE(is_archive_path("MODEL.TGZ"));
  EXPECT_TRUE(is_archive_path("m.tar"));
  EXPECT_FALSE(is_archive_path("model.gguf"));
  EXPECT_FALSE(is_archive_path(".tar"));
  EXPECT_FALSE(is_archive_path("/x/model.tar.gz/"));
}

}  // namespace
}  // namespace lmstream::store
