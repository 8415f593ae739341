#include "convert.hpp"

#include <torch/serialize/input-archive.h>

#include <saq/torch_file.hpp>

#include "checkpoint.hpp"
#include "errors.hpp"

namespace saq::host {

namespace {

/// Module::save nests one archive per child module: their tensors, under PyTorch's dotted names.
void collect(torch::serialize::InputArchive& archive, const std::string& prefix, StateDict& out) {
  for (const std::string& key : archive.keys()) {
    at::Tensor t;
    torch::serialize::InputArchive sub;
    if (archive.try_read(key, t, /*is_buffer=*/true)) out.put_tensor(prefix + key, t);
    else if (archive.try_read(key, sub)) collect(sub, prefix + key + ".", out);
    else throw InputError("'" + prefix + key + "' is neither a tensor nor a module");
  }
}

}  // namespace

std::size_t convert_checkpoint(const std::filesystem::path& from, const std::filesystem::path& to,
                               spdlog::logger& log) {
  if (!std::filesystem::exists(from)) throw InputError("convert: " + from.string() + ": no such file");
  if (std::filesystem::exists(to)) throw InputError("convert: " + to.string() + " exists; name a new file");
  if (!is_torchscript_archive(from.string()))
    throw InputError("convert: " + from.string() + ": not a TorchScript archive (a torch.save file needs no "
                     "conversion; saqhost reads it as it is)");
  log.warn("convert: reading {} with LibTorch's TorchScript reader (convert only files you trust)", from.string());
  StateDict weights;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(from.string());
    for (const char* key : {"format", "generator", "sampled"}) {
      at::Tensor t;
      torch::serialize::InputArchive sub;
      if (archive.try_read(key, t) || archive.try_read(key, sub))
        throw InputError(from.string() + ": a resume checkpoint or search state (it has '" + std::string(key) +
                         "'), which cannot be converted: start the run again, with init = a converted stage "
                         "checkpoint");
    }
    collect(archive, "", weights);
  } catch (const InputError& e) {
    throw InputError("convert: " + std::string(e.what()));
  } catch (const std::exception& e) {
    std::string what = e.what();
    throw InputError("convert: " + from.string() + ": not a readable archive (" + what.substr(0, what.find('\n')) + ")");
  }
  save_weights(weights, to);
  return weights.size();
}

}  // namespace saq::host
