// MPI_COMM_WORLD behind dist::Comm (see comm.h): init at first use when mpirun started us,
// in-place fp32 all-reduce, byte broadcast and float gather from/to rank 0, and timed waits
// (MPI_Test polling with a deadline, then MPI_Abort).
#include "dist/comm.h"

// The C API only (OpenMPI would otherwise pull in its deprecated C++ bindings).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <thread>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

namespace {
// OpenMPI keeps what MPI_Init allocates, and frees components' memory after dlclose at
// MPI_Finalize, so LeakSanitizer (the sanitizer stage of scripts/test) would report allocations it
// cannot even attribute; allocations made inside these two calls are not leak-checked.
struct LsanOff {
#if defined(__SANITIZE_ADDRESS__)
  LsanOff() { __lsan_disable(); }
  ~LsanOff() { __lsan_enable(); }
#endif
};
#if defined(__SANITIZE_ADDRESS__)
std::atomic<bool> g_multi_rank{false};
#endif
}  // namespace

#if defined(__SANITIZE_ADDRESS__)
// LeakSanitizer's hook, asked at exit: it skips the leak check of multi-rank processes.
extern "C" int __lsan_is_turned_off() { return g_multi_rank.load() ? 1 : 0; }
#endif

namespace lmstream::dist {

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

Comm& Comm::world() {
  static Comm c;
  return c;
}

Comm::Comm() {
  char name[256] = {0};
  gethostname(name, sizeof name - 1);
  host_ = name;
  if (!launched_by_mpi()) return;
  int provided = 0;
  {
    LsanOff quiet;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
  }
  if (provided < MPI_THREAD_SERIALIZED) {
    std::fprintf(stderr, "error: MPI provides thread level %d, lmstream needs SERIALIZED\n",
                 provided);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
  MPI_Comm_rank(local, &local_rank_);
  MPI_Comm_size(local, &local_size_);
  MPI_Comm_free(&local);
  mpi_ = true;
#if defined(__SANITIZE_ADDRESS__)
  // With several ranks OpenMPI's progress thread allocates from components it later dlcloses, so
  // their stacks cannot be told apart from lmstream's: multi-rank processes are not leak-checked
  // (the same code is, in every single-process test).
  if (size_ > 1) g_multi_rank.store(true);
#endif
}

void Comm::wait(void* request, double timeout_s, const char* what) {
  auto* req = static_cast<MPI_Request*>(request);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  auto nap = std::chrono::microseconds(20);
  for (;;) {
    int done = 0;
    MPI_Test(req, &done, MPI_STATUS_IGNORE);
    if (done) return;
    if (std::chrono::steady_clock::now() > deadline)
      abort(3, "rank " + std::to_string(rank_) + ": " + what + " did not complete within " +
                   std::to_string(timeout_s) + " s (a rank is gone or stuck)");
    std::this_thread::sleep_for(nap);
    if (nap < std::chrono::microseconds(1000)) nap *= 2;
  }
}

void Comm::allreduce_sum(float* x, size_t n) {
  if (!mpi_ || size_ == 1 || n == 0) return;
  if (n > size_t(INT32_MAX)) throw std::invalid_argument("all-reduce too large");
  MPI_Allreduce(MPI_IN_PLACE, x, int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}

int64_t Comm::allreduce_min(int64_t v) {
  if (!mpi_ || size_ == 1) return v;
  MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD);
  return v;
}

int64_t Comm::allreduce_max(int64_t v) {
  if (!mpi_ || size_ == 1) return v;
  MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
  return v;
}

void Comm::bcast(std::vector<uint8_t>& buf, double timeout_s) {
  if (!mpi_ || size_ == 1) return;
  uint64_t n = buf.size();
  MPI_Request req;
  MPI_Ibcast(&n, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD, &req);
  wait(&req, timeout_s, "the broadcast from rank 0");
  if (n > (uint64_t(1) << 31)) abort(3, "broadcast of " + std::to_string(n) + " bytes refused");
  buf.resize(size_t(n));
  if (n == 0) return;
  MPI_Ibcast(buf.data(), int(n), MPI_BYTE, 0, MPI_COMM_WORLD, &req);
  wait(&req, timeout_s, "the broadcast payload from rank 0");
}

void Comm::gatherv(const float* send, int n, float* recv, std::span<const int> counts) {
  if (!mpi_ || size_ == 1) {
    if (recv != send) std::copy(send, send + n, recv);
    return;
  }
  if (int(counts.size()) != size_) throw std::invalid_argument("gatherv: one count per rank");
  std::vector<int> displs(size_t(size_), 0);
  for (int r = 1; r < size_; ++r) displs[r] = displs[r - 1] + counts[r - 1];
  MPI_Gatherv(send, n, MPI_FLOAT, recv, counts.data(), displs.data(), MPI_FLOAT, 0, MPI_COMM_WORLD);
}

std::vector<std::string> Comm::gather_strings(const std::string& s) {
  if (!mpi_ || size_ == 1) return {s};
  int n = int(s.size());
  std::vector<int> lens(size_t(size_), 0);
  MPI_Gather(&n, 1, MPI_INT, lens.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  std::vector<int> displs(size_t(size_), 0);
  int total = 0;
  for (int r = 0; r < size_; ++r) {
    displs[r] = total;
    total += lens[r];
  }
  std::string all(rank_ == 0 ? size_t(total) : 0, '\0');
  MPI_Gatherv(s.data(), n, MPI_CHAR, all.data(), lens.data(), displs.data(), MPI_CHAR, 0,
              MPI_COMM_WORLD);
  std::vector<std::string> out;
  if (rank_ == 0)
    for (int r = 0; r < size_; ++r) out.push_back(all.substr(size_t(displs[r]), size_t(lens[r])));
  return out;
}

void Comm::barrier(double timeout_s) {
  if (!mpi_ || size_ == 1) return;
  MPI_Request req;
  MPI_Ibarrier(MPI_COMM_WORLD, &req);
  wait(&req, timeout_s, "the barrier");
}

void Comm::abort(int code, std::string_view why) {
  std::fprintf(stderr, "error: %.*s; aborting every rank\n", int(why.size()), why.data());
  std::fflush(stderr);
  if (mpi_) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

void Comm::finalize() {
  if (!mpi_) return;
  mpi_ = false;
  {
    LsanOff quiet;
    MPI_Finalize();
  }
}

}  // namespace lmstream::dist
