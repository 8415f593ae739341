#pragma once
/// A restricted unpickler: it reads the pickles that data sets (CIFAR's python release) and PyTorch files
/// (`torch.save`) hold, building plain data and tensors, and never runs code. Every global a pickle names must
/// be on the caller's list, each mapped to a C++ builder; any other global, and any opcode outside the small
/// set such files use, is refused with its name and byte offset.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include <saq/abi.hpp>

namespace saq::pickle {

class Value;
using ValuePtr = std::shared_ptr<Value>;

/// One Python object the unpickler built. Lists and dicts are shared (the pickle memo refers to them).
class SAQ_VISIBLE Value {
 public:
  enum class Type { None, Bool, Int, Float, Str, Bytes, List, Tuple, Dict, Tensor, Global, Object };

  Type type = Type::None;
  bool boolean = false;
  std::int64_t integer = 0;
  double real = 0;
  std::string text;                                    ///< Str (UTF-8) or Bytes (raw; also Python 2 `str`)
  std::vector<ValuePtr> items;                         ///< List and Tuple
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;  ///< Dict, in insertion order
  at::Tensor tensor;                                   ///< Tensor (numpy arrays become tensors too)
  std::string cls;  ///< Global: "module.name"; otherwise the global that built the value ("" for literals)
  std::map<std::string, ValuePtr> attrs;  ///< Object: what its builder recorded

  Value() = default;
  Value(const Value&) = delete;
  Value& operator=(const Value&) = delete;
  ~Value();

  static ValuePtr make(Type type);
  static ValuePtr of_int(std::int64_t v);
  static ValuePtr of_str(std::string v);
  static ValuePtr of_bytes(std::string v);
  static ValuePtr of_tensor(at::Tensor t, std::string cls = "");

  bool is_text() const { return type == Type::Str || type == Type::Bytes; }
  /// The value under the str or bytes key `key` of a Dict (Python 2 pickles key by bytes), or null.
  ValuePtr find(const std::string& key) const;
  /// "int", "dict", "numpy.dtype object", ... for messages.
  std::string describe() const;
};

/// What the unpickler may do with one global.
struct Global {
  /// REDUCE / NEWOBJ on the global: builds a value from the argument tuple's items. Null: the global may only
  /// be referred to (a storage type inside a persistent id, say), never called.
  std::function<ValuePtr(const std::vector<ValuePtr>& args)> call;
  /// BUILD on a value the global made (its `cls`): applies the state. Null: BUILD is refused.
  std::function<void(Value& self, const ValuePtr& state)> set_state;
};

using Globals = std::map<std::string, Global>;  ///< keyed "module.name"

struct Options {
  std::string source;  ///< the file (and member), for messages
  Globals globals;     ///< every other global is refused
  /// BINPERSID: the object a persistent id (PyTorch: a storage) stands for. Null: persistent ids are refused.
  std::function<ValuePtr(const ValuePtr& pid)> persistent_load;
  /// Values the pickle may push (each costs ~200 bytes): a hostile pickle's memory stays bounded. CIFAR's
  /// largest batch file pushes ~100k, a ResNet-50 checkpoint ~10k.
  std::size_t max_values = std::size_t{1} << 20;
};

/// Runs the pickle (protocols 2–5) in `data` and returns the object STOP finds. Throws std::runtime_error
/// "source: message at byte N" for a refused global or opcode, truncated input, or a malformed stream.
ValuePtr load(const std::uint8_t* data, std::size_t size, const Options& options);

/// Reads `path` whole and runs it; `options.source` defaults to the path.
ValuePtr load_file(const std::string& path, Options options);

/// numpy arrays (to tensors of the same dtype and shape), numpy dtypes and scalars, and what protocol 2 uses
/// for Python 3 `bytes` (`_codecs.encode`, `builtins.bytes`): enough for pickled dicts of numpy arrays.
Globals numpy_globals();

/// `collections.OrderedDict`, as a Dict whose attributes (`_metadata`) are dropped.
Globals ordered_dict_globals();

/// Reads a value of the expected type or throws std::runtime_error naming `what`.
std::int64_t as_int(const ValuePtr& v, const std::string& what);
const std::string& as_text(const ValuePtr& v, const std::string& what);
const std::vector<ValuePtr>& as_sequence(const ValuePtr& v, const std::string& what);  ///< List or Tuple
const at::Tensor& as_tensor(const ValuePtr& v, const std::string& what);

}  // namespace saq::pickle
