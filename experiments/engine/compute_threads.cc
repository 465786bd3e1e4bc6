#include "experiments/engine/compute_threads.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>

namespace pcsweep::engine {

void SetComputeThreads(int threads) {
  if (threads <= 0) return;
  at::set_num_threads(threads);
  // Looked up at run time: the BLAS behind libtorch is whatever libblas.so.3 resolves to.
  using SetThreadsFn = void (*)(int);
  if (auto fn = reinterpret_cast<SetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    fn(threads);
}

}  // namespace pcsweep::engine
