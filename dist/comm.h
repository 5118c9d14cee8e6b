// The communicator tensor parallelism runs on: MPI_COMM_WORLD when the process was started by
// mpirun, a single rank otherwise. Everything above (engine/, the serving side) knows ranks only
// through this interface, never MPI directly. Collectives are called by one thread at a time
// (MPI_THREAD_SERIALIZED: the engine's step thread; a heartbeat under the same lock). Waits that
// can last (a worker waiting for the next step plan, a barrier) are non-blocking operations polled
// with a backoff sleep and a deadline, after which the whole job is aborted: a lost rank never
// leaves the others hanging.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lmstream::dist {

// True when an MPI launcher (mpirun/orterun, PMIx) started this process.
bool launched_by_mpi();

class Comm {
 public:
  // The world communicator. The first call initializes MPI when launched_by_mpi(); otherwise the
  // communicator has one rank and every collective is a local no-op.
  static Comm& world();

  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_rank() const { return local_rank_; }  // among the ranks on this host
  int local_size() const { return local_size_; }
  bool mpi() const { return mpi_; }  // MPI is initialized (and not yet finalized)
  std::string host() const { return host_; }

  // x[0..n) summed over all ranks, in place (fp32).
  void allreduce_sum(float* x, size_t n);
  int64_t allreduce_min(int64_t v);
  int64_t allreduce_max(int64_t v);
  // Rank 0's buf reaches every rank (resized there). Non-root ranks wait at most timeout_s for
  // it (polling with a backoff sleep, so an idle worker does not spin), then abort the job.
  void bcast(std::vector<uint8_t>& buf, double timeout_s);
  // Every rank sends send[0..n); rank 0 receives them in rank order into recv, whose layout is
  // counts[r] floats from rank r (counts is the same on every rank). recv is ignored elsewhere.
  void gatherv(const float* send, int n, float* recv, std::span<const int> counts);
  // Each rank's string, in rank order, on rank 0 (empty elsewhere).
  std::vector<std::string> gather_strings(const std::string& s);
  // All ranks meet; a rank that is not there within timeout_s aborts the job.
  void barrier(double timeout_s);
  // Logs why and ends every rank of the job with code (MPI_Abort); exit(code) without MPI.
  [[noreturn]] void abort(int code, std::string_view why);
  // Ends MPI (collective: every rank must call it); idempotent.
  void finalize();

 private:
  Comm();
  void wait(void* request, double timeout_s, const char* what);
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  bool mpi_ = false;
  std::string host_;
};

}  // namespace lmstream::dist
