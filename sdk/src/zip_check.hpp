#pragma once
// The zip directory of a file checked before a zip reader allocates what it declares.
#include <string>

namespace saq::detail {

/// Throws std::runtime_error (the reason alone; callers name the file) when the zip archive's directory is
/// damaged or declares entries larger than the file can hold: miniz allocates an entry's declared size before
/// reading it.
void check_archive_sizes(const std::string& path);

}  // namespace saq::detail
