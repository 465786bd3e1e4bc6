// The web view's stylesheet and script, compiled into the binary (the machines have no
// internet, so nothing comes from a CDN). The script (about 80 lines, no framework) polls a
// page's live parts and reloads its result fragments when the results change (pages.h).
#ifndef PCSWEEP_COORDINATOR_WEB_ASSETS_H_
#define PCSWEEP_COORDINATOR_WEB_ASSETS_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pcsweep::coordinator::web {

struct StaticAsset {
  absl::string_view content_type;
  absl::string_view body;
};

// "app.css" or "app.js". Possible errors: NotFound naming the file.
absl::StatusOr<StaticAsset> FindAsset(absl::string_view name);

}  // namespace pcsweep::coordinator::web

#endif  // PCSWEEP_COORDINATOR_WEB_ASSETS_H_
