// Loads libpcsweep_sentencepiece_bridge.so in its own symbol scope (see
// sentencepiece_bridge.h) and forwards to it.
#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>

#include "experiments/inputs/sentencepiece_bridge.h"

namespace pcsweep::inputs::internal {
namespace {

constexpr char kModuleName[] = "libpcsweep_sentencepiece_bridge.so";

// The sanitizer runtimes refuse RTLD_DEEPBIND (google/sanitizers#611). Their builds load only
// the torch-free tests, where no second protobuf competes for the bridge's symbols, so the
// module's own scope (RTLD_LOCAL) is enough there.
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PCSWEEP_SANITIZER_RUNTIME 1
#endif
#endif
#if defined(PCSWEEP_SANITIZER_RUNTIME) || defined(__SANITIZE_ADDRESS__) || \
    defined(__SANITIZE_THREAD__)
constexpr int kOpenFlags = RTLD_NOW | RTLD_LOCAL;
#else
constexpr int kOpenFlags = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
#endif

struct BridgeModule {
  CreateSentencePieceModelFn create = nullptr;
  TrainSentencePieceFn train = nullptr;
  std::string error;  // why loading failed, naming every path tried
};

std::string ExecutableDir() {
  char buffer[4096];
  const ssize_t n = readlink("/proc/self/exe", buffer, sizeof(buffer) - 1);
  if (n <= 0) return "";
  std::string path(buffer, static_cast<size_t>(n));
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

const BridgeModule& Module() {
  static const BridgeModule* module = [] {
    auto* m = new BridgeModule();  // lives for the process: the module is never unloaded
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("PCSWEEP_SENTENCEPIECE_BRIDGE");
        env != nullptr && *env != '\0') {
      candidates.emplace_back(env);
    }
#ifdef PCSWEEP_SENTENCEPIECE_BRIDGE_BUILD_PATH
    candidates.emplace_back(PCSWEEP_SENTENCEPIECE_BRIDGE_BUILD_PATH);
#endif
    if (const std::string dir = ExecutableDir(); !dir.empty()) {
      candidates.push_back(dir + "/" + kModuleName);
      candidates.push_back(dir + "/../lib/" + kModuleName);
    }
    candidates.emplace_back(kModuleName);
    std::string tried;
    for (const auto& path : candidates) {
      void* handle = dlopen(path.c_str(), kOpenFlags);
      if (handle == nullptr) {
        const char* why = dlerror();
        tried += (tried.empty() ? "" : "; ") + (why != nullptr ? std::string(why) : path);
        continue;
      }
      m->create = reinterpret_cast<CreateSentencePieceModelFn>(
          dlsym(handle, kCreateSentencePieceModelSymbol));
      m->train = reinterpret_cast<TrainSentencePieceFn>(dlsym(handle, kTrainSentencePieceSymbol));
      if (m->create != nullptr && m->train != nullptr) return m;
      tried += (tried.empty() ? "" : "; ") + path + ": entry points missing";
    }
    m->error = "cannot load the SentencePiece bridge " + std::string(kModuleName) +
               " (set PCSWEEP_SENTENCEPIECE_BRIDGE to its path): " + tried;
    return m;
  }();
  return *module;
}

}  // namespace

std::unique_ptr<SentencePieceModel> LoadSentencePieceModel(const std::string& bytes,
                                                           std::string* error) {
  const BridgeModule& module = Module();
  if (module.create == nullptr) {
    *error = module.error;
    return nullptr;
  }
  return std::unique_ptr<SentencePieceModel>(module.create(&bytes, error));
}

bool TrainSentencePiece(const std::map<std::string, std::string>& flags,
                        const std::vector<std::string>& sentences, std::string* serialized_model,
                        std::string* error) {
  const BridgeModule& module = Module();
  if (module.train == nullptr) {
    *error = module.error;
    return false;
  }
  return module.train(&flags, &sentences, serialized_model, error);
}

}  // namespace pcsweep::inputs::internal
