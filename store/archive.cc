// Safe model-archive extraction with libarchive (see archive.h): pass 1 reads and checks every
// header, pass 2 writes through archive_write_disk into a temporary directory that is renamed
// into place. libarchive's own SECURE_NODOTDOT/SECURE_SYMLINKS checks stay on in pass 2 as a
// second line of defence behind pass 1's.
#include "store/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/statvfs.h>
#include <zlib.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <system_error>
#include <vector>

#include "base/strings.h"

namespace lmstream::store {
namespace {

namespace fs = std::filesystem;

struct ReadCloser {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct WriteCloser {
  void operator()(archive* a) const { archive_write_free(a); }
};
using Reader = std::unique_ptr<archive, ReadCloser>;
using Writer = std::unique_ptr<archive, WriteCloser>;

std::string mib(uint64_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }

std::string lib_error(archive* a) {
  const char* e = archive_error_string(a);
  return e ? e : "unknown libarchive error";
}

// The bytes come through zlib's gzread rather than libarchive's gzip filter: zlib checks the
// gzip trailer's CRC-32 and length (libarchive 3.6 skips them), so a corrupted model.tar.gz fails
// in pass 1 instead of unpacking garbage. gzread passes a plain (uncompressed) .tar through.
struct GzSource {
  gzFile file = nullptr;
  std::vector<char> buf = std::vector<char>(1 << 17);
};

la_ssize_t gz_read(archive* a, void* client, const void** out) {
  auto* src = static_cast<GzSource*>(client);
  const int n = gzread(src->file, src->buf.data(), unsigned(src->buf.size()));
  if (n < 0) {
    int code = 0;
    const char* msg = gzerror(src->file, &code);
    archive_set_error(a, EIO, "gzip data is corrupt or truncated: %s", msg ? msg : "zlib error");
    return -1;
  }
  *out = src->buf.data();
  return n;
}

int gz_close(archive*, void* client) {
  auto* src = static_cast<GzSource*>(client);
  if (src->file) gzclose(src->file);
  delete src;
  return ARCHIVE_OK;
}

Reader open_reader(const std::string& path) {
  Reader r(archive_read_new());
  if (!r) throw ArchiveError(path + ": cannot allocate an archive reader");
  archive_read_support_format_tar(r.get());  // ustar, pax, GNU tar
  auto* src = new GzSource;
  src->file = gzopen(path.c_str(), "rb");
  if (!src->file) {
    const int err = errno;
    delete src;
    throw ArchiveError(path + ": cannot open the archive (" + std::strerror(err) + ")");
  }
  gzbuffer(src->file, 1 << 17);
  // archive_read_open calls gz_close on failure too, so src is owned by the reader from here.
  if (archive_read_open(r.get(), src, nullptr, gz_read, gz_close) != ARCHIVE_OK) {
    throw ArchiveError(path + ": not a readable .tar/.tar.gz archive (" + lib_error(r.get()) +
                       "); nothing was extracted");
  }
  return r;
}

// The entry path as a clean relative path ("a/b"), or an error saying why it is refused.
std::string clean_path(std::string_view raw, const std::string& archive_path,
                       std::string_view what = "entry") {
  auto refuse = [&](const std::string& why) -> ArchiveError {
    return ArchiveError(archive_path + ": refusing " + std::string(what) + " '" +
                        std::string(raw.substr(0, 200)) + "': " + why +
                        "; nothing was extracted (rebuild the archive with paths relative to "
                        "the model directory, e.g. tar czf model.tar.gz -C mydir .)");
  };
  if (raw.empty()) throw refuse("empty name");
  if (raw.front() == '/') throw refuse("absolute path");
  std::string out;
  for (std::string_view part : base::split(raw, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") throw refuse("'..' would leave the model directory");
    if (!out.empty()) out.push_back('/');
    out.append(part);
  }
  return out;  // "" for "./" (the root itself)
}

struct Entry {
  std::string path;  // clean, relative
  mode_t type = 0;
  uint64_t size = 0;
  std::string symlink;   // target as stored (for symlinks)
  std::string hardlink;  // clean target (for hard links)
};

std::vector<std::string> parents_of(const std::string& path) {
  std::vector<std::string> out;
  for (size_t i = path.find('/'); i != std::string::npos; i = path.find('/', i + 1)) {
    out.push_back(path.substr(0, i));
  }
  return out;
}

struct Scan {
  ArchiveSummary summary;
  std::vector<Entry> entries;
};

Scan scan(const std::string& archive_path) {
  Reader r = open_reader(archive_path);
  Scan s;
  archive_entry* e = nullptr;
  for (;;) {
    const int rc = archive_read_next_header(r.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN) {
      throw ArchiveError(archive_path + ": not a readable .tar/.tar.gz archive (" +
                         lib_error(r.get()) + "); nothing was extracted");
    }
    const char* name = archive_entry_pathname(e);
    Entry en;
    en.path = clean_path(name ? name : "", archive_path);
    en.type = archive_entry_filetype(e);
    if (const char* h = archive_entry_hardlink(e)) {
      en.hardlink = clean_path(h, archive_path, "hard link target");
      if (en.hardlink.empty()) {
        throw ArchiveError(archive_path + ": refusing hard link '" + en.path +
                           "' to the archive root");
      }
    }
    if (en.path.empty()) {
      if (en.type != AE_IFDIR) {
        throw ArchiveError(archive_path + ": refusing entry '" + std::string(name) +
                           "': not a directory, yet it names the root");
      }
      continue;  // "./": the root itself
    }
    if (en.hardlink.empty()) {
      switch (en.type) {
        case AE_IFREG:
          en.size = archive_entry_size_is_set(e) ? uint64_t(archive_entry_size(e)) : 0;
          s.summary.files++;
          s.summary.bytes += en.size;
          break;
        case AE_IFDIR:
          s.summary.directories++;
          break;
        case AE_IFLNK: {
          const char* t = archive_entry_symlink(e);
          en.symlink = t ? t : "";
          s.summary.links++;
          break;
        }
        default:
          throw ArchiveError(archive_path + ": refusing entry '" + en.path +
                             "': a device node, FIFO or socket has no place in a model "
                             "directory; nothing was extracted");
      }
    } else {
      s.summary.links++;
    }
    // Skipping the data still decompresses it: a corrupt stream fails here, in pass 1.
    if (archive_read_data_skip(r.get()) != ARCHIVE_OK) {
      throw ArchiveError(archive_path + ": the archive is damaged at entry '" + en.path + "' (" +
                         lib_error(r.get()) + "); nothing was extracted");
    }
    s.entries.push_back(std::move(en));
  }

  // Whole-archive checks: links and what passes through them.
  std::set<std::string> symlinks, non_dirs;
  for (const Entry& en : s.entries) {
    if (en.type == AE_IFLNK && en.hardlink.empty()) symlinks.insert(en.path);
    if (en.type != AE_IFDIR || !en.hardlink.empty()) non_dirs.insert(en.path);
  }
  auto refuse = [&](const Entry& en, const std::string& why) {
    return ArchiveError(archive_path + ": refusing entry '" + en.path + "': " + why +
                        "; nothing was extracted");
  };
  for (const Entry& en : s.entries) {
    for (const std::string& p : parents_of(en.path)) {
      if (symlinks.count(p))
        throw refuse(en, "it would be written through symbolic link '" + p + "'");
      if (non_dirs.count(p)) throw refuse(en, "'" + p + "' is a file in the same archive");
    }
    if (!en.hardlink.empty()) {
      for (const std::string& p : parents_of(en.hardlink)) {
        if (symlinks.count(p))
          throw refuse(en, "its hard link target goes through a symbolic link");
      }
      if (symlinks.count(en.hardlink)) throw refuse(en, "it is a hard link to a symbolic link");
    }
    if (en.type == AE_IFLNK && en.hardlink.empty()) {
      if (en.symlink.empty()) throw refuse(en, "symbolic link with an empty target");
      if (en.symlink.front() == '/') {
        throw refuse(en, "symbolic link to the absolute path '" + en.symlink.substr(0, 200) +
                             "' points outside the model directory");
      }
      std::vector<std::string> stack;
      for (const std::string& p : parents_of(en.path)) {
        stack.push_back(p.substr(p.rfind('/') == std::string::npos ? 0 : p.rfind('/') + 1));
      }
      const std::vector<std::string_view> parts = base::split(en.symlink, '/');
      for (size_t i = 0; i < parts.size(); ++i) {
        const std::string_view part = parts[i];
        if (part.empty() || part == ".") continue;
        if (part == "..") {
          if (stack.empty()) {
            throw refuse(en, "symbolic link to '" + en.symlink.substr(0, 200) +
                                 "' points outside the model directory");
          }
          stack.pop_back();
          continue;
        }
        stack.emplace_back(part);
        std::string joined;
        for (const std::string& c : stack) joined += (joined.empty() ? "" : "/") + c;
        const bool last = i + 1 == parts.size();
        if (!last && symlinks.count(joined)) {
          throw refuse(en, "symbolic link to '" + en.symlink.substr(0, 200) +
                               "' goes through another symbolic link ('" + joined + "')");
        }
      }
    }
  }

  // serving.properties at the root, or inside the one top-level directory.
  std::set<std::string> tops;
  bool root_props = false;
  for (const Entry& en : s.entries) {
    tops.insert(en.path.substr(0, en.path.find('/')));
    if (en.path == "serving.properties" && en.type == AE_IFREG) root_props = true;
  }
  if (root_props) {
    s.summary.serving_properties = "serving.properties";
  } else if (tops.size() == 1) {
    const std::string nested = *tops.begin() + "/serving.properties";
    for (const Entry& en : s.entries) {
      if (en.path == nested && en.type == AE_IFREG) s.summary.serving_properties = nested;
    }
  }
  return s;
}

uint64_t statvfs_free(const std::string& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) {
    throw ArchiveError("cannot read the free space of " + dir + ": " + std::strerror(errno));
  }
  return uint64_t(st.f_bavail) * uint64_t(st.f_frsize);
}

void copy_data(archive* in, archive* out, const std::string& archive_path,
               const std::string& entry) {
  const void* buf = nullptr;
  size_t size = 0;
  la_int64_t offset = 0;
  for (;;) {
    const int rc = archive_read_data_block(in, &buf, &size, &offset);
    if (rc == ARCHIVE_EOF) return;
    if (rc < ARCHIVE_WARN) {
      throw ArchiveError(archive_path + ": the archive is damaged at entry '" + entry + "' (" +
                         lib_error(in) + ")");
    }
    if (archive_write_data_block(out, buf, size, offset) < ARCHIVE_WARN) {
      throw ArchiveError(archive_path + ": cannot write '" + entry + "' (" + lib_error(out) + ")");
    }
  }
}

void extract_into(const std::string& archive_path, const Scan& checked, const fs::path& tmp) {
  Reader r = open_reader(archive_path);
  Writer w(archive_write_disk_new());
  if (!w) throw ArchiveError("cannot allocate an archive writer");
  archive_write_disk_set_options(w.get(), ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                              ARCHIVE_EXTRACT_SECURE_SYMLINKS);
  archive_entry* e = nullptr;
  size_t index = 0;
  for (;;) {
    const int rc = archive_read_next_header(r.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN) {
      throw ArchiveError(archive_path + ": not a readable archive on the second pass (" +
                         lib_error(r.get()) + ")");
    }
    const std::string path = clean_path(archive_entry_pathname(e), archive_path);
    if (path.empty()) continue;
    // The archive must read the same both times (it is not being replaced under us).
    if (index >= checked.entries.size() || checked.entries[index].path != path) {
      throw ArchiveError(archive_path + ": the archive changed while it was being extracted");
    }
    const Entry& en = checked.entries[index++];
    archive_entry_set_pathname(e, (tmp / en.path).c_str());
    if (!en.hardlink.empty()) archive_entry_set_hardlink(e, (tmp / en.hardlink).c_str());
    archive_entry_set_uid(e, ::geteuid());
    archive_entry_set_gid(e, ::getegid());
    archive_entry_set_perm(e, (archive_entry_perm(e) & 0755) | (en.type == AE_IFDIR ? 0700 : 0600));
    if (archive_write_header(w.get(), e) < ARCHIVE_WARN) {
      throw ArchiveError(archive_path + ": cannot create '" + en.path + "' (" + lib_error(w.get()) +
                         ")");
    }
    if (en.type == AE_IFREG && en.hardlink.empty())
      copy_data(r.get(), w.get(), archive_path, en.path);
    if (archive_write_finish_entry(w.get()) < ARCHIVE_WARN) {
      throw ArchiveError(archive_path + ": cannot finish '" + en.path + "' (" + lib_error(w.get()) +
                         ")");
    }
  }
  if (archive_write_close(w.get()) != ARCHIVE_OK) {
    throw ArchiveError(archive_path + ": cannot finish extraction (" + lib_error(w.get()) + ")");
  }
}

}  // namespace

bool is_archive_path(std::string_view path) {
  const std::string p = base::to_lower(path);
  auto ends = [&](std::string_view suffix) {
    return p.size() > suffix.size() &&
           p.compare(p.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return ends(".tar.gz") || ends(".tgz") || ends(".tar");
}

ArchiveSummary scan_archive(const std::string& archive) { return scan(archive).summary; }

ArchiveSummary extract_archive(const std::string& archive, const std::string& dest,
                               const ExtractOptions& options) {
  std::error_code ec;
  if (fs::exists(dest, ec)) {
    throw ArchiveError("cannot unpack " + archive + " into " + dest + ": it already exists");
  }
  const fs::path parent = fs::canonical(fs::absolute(fs::path(dest)).parent_path(), ec);
  if (ec) {
    throw ArchiveError("cannot unpack " + archive + " into " + dest + ": its parent directory " +
                       "is not usable (" + ec.message() + ")");
  }
  const Scan checked = scan(archive);

  const uint64_t entries = checked.entries.size();
  const uint64_t need = checked.summary.bytes + entries * 4096 + options.headroom;
  const uint64_t free =
      options.free_space ? options.free_space(parent.string()) : statvfs_free(parent.string());
  if (need > free) {
    throw ArchiveError(archive + ": unpacking needs " + mib(need) + " (" +
                       std::to_string(checked.summary.files) + " files, " +
                       mib(checked.summary.bytes) + " uncompressed) but " + parent.string() +
                       " has only " + mib(free) +
                       " free; free some disk space or unpack elsewhere (LMSTREAM_CACHE); "
                       "nothing was extracted");
  }

  std::string templ =
      (parent / ("." + fs::path(dest).filename().string() + ".tmp-XXXXXX")).string();
  if (!::mkdtemp(templ.data())) {
    throw ArchiveError("cannot create a temporary directory in " + parent.string() + ": " +
                       std::strerror(errno));
  }
  const fs::path tmp = templ;
  try {
    extract_into(archive, checked, tmp);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  const fs::path final_path = parent / fs::path(dest).filename();
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    const int err = errno;
    fs::remove_all(tmp, ec);
    if ((err == EEXIST || err == ENOTEMPTY) && fs::is_directory(final_path, ec)) {
      return checked.summary;  // another process finished the same extraction first
    }
    throw ArchiveError("cannot move the unpacked " + archive + " to " + final_path.string() + ": " +
                       std::strerror(err));
  }
  return checked.summary;
}

std::string model_root(const std::string& dir) {
  fs::path current = dir;
  for (int depth = 0; depth < 16; ++depth) {
    std::error_code ec;
    fs::path only;
    int visible = 0;
    for (const fs::directory_entry& d : fs::directory_iterator(current, ec)) {
      const std::string name = d.path().filename().string();
      if (name.empty() || name.front() == '.') continue;
      ++visible;
      only = d.path();
    }
    if (ec || visible != 1 || !fs::is_directory(only, ec) || fs::is_symlink(only, ec)) break;
    current = only;
  }
  return current.string();
}

}  // namespace lmstream::store
