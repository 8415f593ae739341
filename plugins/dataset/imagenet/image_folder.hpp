#pragma once
// A split laid out as torchvision's ImageFolder reads it: dir/<class>/<image>.JPEG, class index = position of
// the folder name in sorted order, images sorted by name within each class.
#include <cstdint>
#include <string>
#include <vector>

namespace saq::plugins::imagenet {

/// The JPEG files of one split. Names are packed in one string: a million std::strings would cost 60 MB.
struct ImageFolder {
  std::string dir;
  std::vector<std::string> classes;   ///< folder names, in class-index order
  std::vector<std::int32_t> labels;   ///< per image
  std::string names;                  ///< file names within their class folder, back to back
  std::vector<std::uint64_t> offsets; ///< image i's name is names[offsets[i], offsets[i + 1])
  std::int64_t ignored = 0;           ///< files whose extension is not .jpeg/.jpg (any case)

  std::int64_t size() const { return static_cast<std::int64_t>(labels.size()); }
  std::string path(std::int64_t i) const;
};

/// Scans `dir`. With `wanted` (sorted wnids), exactly those class folders, others ignored; without, every
/// subfolder, and there must be `expected_classes` of them (0 = any number). Throws std::invalid_argument
/// naming the folder: missing, not a folder, missing classes (the first few listed), a class without images.
ImageFolder scan_image_folder(const std::string& dir, const std::vector<std::string>& wanted,
                              std::int64_t expected_classes);

/// Whitespace-separated class names ('#' starts a comment), sorted; throws std::invalid_argument on an empty
/// list or a repeated name, naming `origin`.
std::vector<std::string> parse_class_list(const std::string& text, const std::string& origin);

}  // namespace saq::plugins::imagenet
