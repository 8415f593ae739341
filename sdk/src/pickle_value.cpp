// The values the unpickler builds, and the typed reads of them that builders and callers share.
#include <saq/pickle.hpp>

#include <stdexcept>

namespace saq::pickle {

Value::~Value() {
  // Children held only here are released one by one, not recursively: a pickle can nest lists a million deep
  // in a few megabytes, and recursive destruction would overflow the stack.
  std::vector<ValuePtr> pending;
  auto adopt = [&pending](Value& v) {
    for (auto& c : v.items) pending.push_back(std::move(c));
    for (auto& [k, c] : v.entries) pending.push_back(std::move(k)), pending.push_back(std::move(c));
    for (auto& [k, c] : v.attrs) pending.push_back(std::move(c));
    v.items.clear();
    v.entries.clear();
    v.attrs.clear();
  };
  adopt(*this);
  while (!pending.empty()) {
    ValuePtr v = std::move(pending.back());
    pending.pop_back();
    if (v && v.use_count() == 1) adopt(*v);
  }
}

ValuePtr Value::make(Type type) {
  auto v = std::make_shared<Value>();
  v->type = type;
  return v;
}
ValuePtr Value::of_int(std::int64_t i) {
  auto v = make(Type::Int);
  v->integer = i;
  return v;
}
ValuePtr Value::of_str(std::string s) {
  auto v = make(Type::Str);
  v->text = std::move(s);
  return v;
}
ValuePtr Value::of_bytes(std::string s) {
  auto v = make(Type::Bytes);
  v->text = std::move(s);
  return v;
}
ValuePtr Value::of_tensor(at::Tensor t, std::string cls) {
  auto v = make(Type::Tensor);
  v->tensor = std::move(t);
  v->cls = std::move(cls);
  return v;
}

ValuePtr Value::find(const std::string& key) const {
  for (const auto& [k, v] : entries)
    if (k->is_text() && k->text == key) return v;
  return nullptr;
}

std::string Value::describe() const {
  switch (type) {
    case Type::None: return "None";
    case Type::Bool: return "bool";
    case Type::Int: return "int";
    case Type::Float: return "float";
    case Type::Str: return "str";
    case Type::Bytes: return "bytes";
    case Type::List: return "list";
    case Type::Tuple: return "tuple";
    case Type::Dict: return cls.empty() ? "dict" : cls;
    case Type::Tensor: return "tensor";
    case Type::Global: return "global " + cls;
    case Type::Object: return cls + " object";
  }
  return "?";
}

std::int64_t as_int(const ValuePtr& v, const std::string& what) {
  if (v && v->type == Value::Type::Int) return v->integer;
  if (v && v->type == Value::Type::Bool) return v->boolean;
  throw std::runtime_error(what + ": expected an int, got " + (v ? v->describe() : "nothing"));
}
const std::string& as_text(const ValuePtr& v, const std::string& what) {
  if (v && v->is_text()) return v->text;
  throw std::runtime_error(what + ": expected a string, got " + (v ? v->describe() : "nothing"));
}
const std::vector<ValuePtr>& as_sequence(const ValuePtr& v, const std::string& what) {
  if (v && (v->type == Value::Type::List || v->type == Value::Type::Tuple)) return v->items;
  throw std::runtime_error(what + ": expected a tuple or list, got " + (v ? v->describe() : "nothing"));
}
const at::Tensor& as_tensor(const ValuePtr& v, const std::string& what) {
  if (v && v->type == Value::Type::Tensor) return v->tensor;
  throw std::runtime_error(what + ": expected an array or tensor, got " + (v ? v->describe() : "nothing"));
}

}  // namespace saq::pickle
