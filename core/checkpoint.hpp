#pragma once
/// Model weights on disk (LibTorch archives), written atomically.
#include <filesystem>
#include <string>
#include <vector>

#include <torch/nn/module.h>

namespace torch::serialize {
class InputArchive;
class OutputArchive;
}

namespace saq::host {

/// Throws std::runtime_error (the reason alone; callers name the file) when the zip archive's directory declares entries larger than the
/// file can hold: LibTorch allocates what a (corrupt) archive declares before reading it.
void check_archive_sizes(const std::filesystem::path& path);

/// Writes `archive` to `file` (not atomically: callers write a temporary file). The archive is serialised in
/// memory first: LibTorch's file writer throws from its destructor when the disk fills, which would abort.
void write_archive(torch::serialize::OutputArchive& archive, const std::filesystem::path& file);

/// Writes every parameter and buffer of `model` to `path` (temporary file, fsync, rename).
void save_weights(const torch::nn::Module& model, const std::filesystem::path& path);

/// Copies the tensors of `path` into `model` by name. Parameters and buffers missing from the file are an error,
/// except quantizer state ("*_quantizer.*"), which an FP32 checkpoint does not have; returns the names so skipped.
/// A tensor of another shape is an error naming it and both shapes. Errors are std::runtime_error naming the file.
std::vector<std::string> load_weights(torch::nn::Module& model, const std::filesystem::path& path);
/// The same from an archive already read (`path` names it in errors).
std::vector<std::string> load_weights(torch::nn::Module& model, torch::serialize::InputArchive& archive,
                                      const std::filesystem::path& path);

}  // namespace saq::host
