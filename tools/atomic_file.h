// Whole-or-nothing file writes for everything the CLI produces (.npy, models' side files,
// checkpoints' companions, CSV, PNG, JSON): the bytes go to a temporary file next to `path`
// (created 0600 by mkstemp, then given the permissions an ordinary new file gets), which is
// fsync'ed and renamed over `path`. Readers never see a partial file; on failure nothing is left
// behind and convoy::Error names the path and the reason.
#pragma once
#include <string>

namespace convoy::cli {

void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace convoy::cli
