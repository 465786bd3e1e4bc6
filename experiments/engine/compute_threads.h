// Thread settings of the engine and the ML jobs (Engine::Load applies EngineOptions::num_threads
// through it). libtorch's at::set_num_threads does not reach OpenBLAS,
// which keeps its own pthread pool (one thread per core) whose idle threads spin in
// sched_yield: on a shared 2-core machine a "1-thread" job then ran 50-100x slower (9 s per
// pretraining step instead of ~0.1 s). SetComputeThreads sets both.
// Thread-safety: call once at job start, before any parallel work.
#ifndef PCSWEEP_EXPERIMENTS_ENGINE_COMPUTE_THREADS_H_
#define PCSWEEP_EXPERIMENTS_ENGINE_COMPUTE_THREADS_H_

namespace pcsweep::engine {

// threads > 0: at::set_num_threads(threads) and, when the process uses OpenBLAS,
// openblas_set_num_threads(threads). threads <= 0 leaves the defaults.
void SetComputeThreads(int threads);

}  // namespace pcsweep::engine

#endif  // PCSWEEP_EXPERIMENTS_ENGINE_COMPUTE_THREADS_H_
