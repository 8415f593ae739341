#pragma once
/// `saqhost convert OLD.pt NEW.pt`: a weights checkpoint of an earlier saqhost (a TorchScript archive written by
/// LibTorch's Module::save) rewritten as this version's checkpoint. The one place saqhost runs LibTorch's
/// TorchScript archive reader, and only on a file the user names to it: that reader can be crashed, or made to
/// allocate gigabytes, by a damaged or hostile file, so convert only files you trust.
#include <filesystem>

#include <spdlog/logger.h>

namespace saq::host {

/// Reads `from` (a TorchScript archive of module tensors), writes `to` atomically; returns the tensor count.
/// InputError naming the file when `from` is not such an archive (a resume or search state is refused: it
/// cannot be converted, the run starts again) or `to` exists.
std::size_t convert_checkpoint(const std::filesystem::path& from, const std::filesystem::path& to,
                               spdlog::logger& log);

}  // namespace saq::host
