#pragma once
/// What the export CLI tests share: a short run of any model and quantizer on synthetic images, the ONNX file
/// as python3-onnx reads it (tests/host/onnx_inspect.py: checker and strict shape inference first), and the
/// ONNX Runtime check (tools/check_onnx.sh).
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "saqhost_cli.hpp"

namespace saq::export_test {

/// A pipeline of one quantized train stage (2 batches: enough to set data-initialised clips and BN statistics).
inline std::string pipeline(const std::string& out, const std::string& model, const std::string& quantizer,
                            int channels = 3, int size = 32, const std::string& extra = "") {
  return "[run]\nname = \"e\"\nout_dir = \"" + out + "\"\n[data]\nuse = \"synthetic\"\nchannels = " +
         std::to_string(channels) + "\nsize = " + std::to_string(size) +
         "\ntrain_samples = 64\ntest_samples = 96\nbatch_size = 16\neval_batch_size = 32\n[model]\n" + model +
         "\n[quantizer]\n" + quantizer + "\n[optimizer]\nuse = \"sgd\"\nlr = 0.005\n" + extra +
         "[[stage]]\nuse = \"train\"\nepochs = 1\nlimit_batches = 2\n";
}

struct Node {
  std::string op, name;
  std::vector<std::string> inputs, outputs;
  std::string axis;
};
struct Init {
  std::string dtype;
  long numel = 0, distinct = 0;
  double min = 0, max = 0;
  std::vector<double> values;  ///< the first 8 distinct values, ascending
};
struct Inspection {
  bool checked = false;
  std::string output;  ///< onnx_inspect.py's, for messages
  std::vector<Node> nodes;
  std::map<std::string, Init> inits;
  long count(const std::string& op) const {
    long n = 0;
    for (const auto& x : nodes) n += x.op == op;
    return n;
  }
};

inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, sep);) out.push_back(item);
  return out;
}

inline Inspection inspect(const std::string& onnx_file) {
  Inspection r;
  const int status = saq::test::run_command("/usr/bin/python3 " + saq::test::env("SAQ_SOURCE_ROOT") +
                                                "/tests/host/onnx_inspect.py " + onnx_file, r.output);
  r.checked = status == 0 && r.output.rfind("checked", 0) == 0;
  std::istringstream in(r.output);
  for (std::string line; std::getline(in, line);) {
    std::istringstream l(line);
    std::string kind;
    l >> kind;
    if (kind == "node") {
      Node n;
      std::string ins, outs, axis;
      l >> n.op >> n.name >> ins >> outs >> axis;
      n.inputs = split(ins, ','), n.outputs = split(outs, ','), n.axis = axis.substr(5);
      r.nodes.push_back(n);
    } else if (kind == "init") {
      std::string name;
      Init i;
      l >> name >> i.dtype >> i.numel >> i.min >> i.max >> i.distinct;
      for (double v; l >> v;) i.values.push_back(v);
      r.inits[name] = i;
    }
  }
  return r;
}

/// tools/check_onnx.sh RUN N [options]: exit 0 and "PASS" when ONNX Runtime agrees with saqhost's eval.
inline saq::test::CliResult check_onnx(const std::string& run, int samples, const std::string& options = "") {
  saq::test::CliResult r;
  r.status = saq::test::run_command("SAQHOST=" + saq::test::env("SAQHOST") + " " + saq::test::env("SAQ_SOURCE_ROOT") +
                                        "/tools/check_onnx.sh " + run + " " + std::to_string(samples) + " " + options,
                                    r.output);
  return r;
}

}  // namespace saq::export_test
