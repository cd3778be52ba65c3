// Values of the Jinja subset used by chat templates: Python-like none/bool/int/float/str/list/dict, plus
// "undefined" (a missing variable or key: falsy, prints as nothing). Lists and dicts are shared, so that
// namespace() objects can be changed by `set ns.x = ...` inside loops, as in Jinja.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace meshlm::jinja {

struct Value;
using Array = std::vector<Value>;
using Object = std::vector<std::pair<std::string, Value>>;  // keys in insertion order, as Python dicts

struct Value {
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kArray, kObject };
  Kind kind = Kind::kUndefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::shared_ptr<Array> a;
  std::shared_ptr<Object> o;

  static Value none() { Value v; v.kind = Kind::kNone; return v; }
  static Value boolean(bool x) { Value v; v.kind = Kind::kBool; v.b = x; return v; }
  static Value integer(int64_t x) { Value v; v.kind = Kind::kInt; v.i = x; return v; }
  static Value number(double x) { Value v; v.kind = Kind::kFloat; v.f = x; return v; }
  static Value string(std::string x) { Value v; v.kind = Kind::kString; v.s = std::move(x); return v; }
  static Value array(Array x = {}) { Value v; v.kind = Kind::kArray; v.a = std::make_shared<Array>(std::move(x)); return v; }
  static Value object(Object x = {}) { Value v; v.kind = Kind::kObject; v.o = std::make_shared<Object>(std::move(x)); return v; }
  static Value from_json(const nlohmann::ordered_json& j);

  bool is(Kind k) const { return kind == k; }
  bool defined() const { return kind != Kind::kUndefined; }
  bool is_number() const { return kind == Kind::kInt || kind == Kind::kFloat; }
  bool truthy() const;
  double as_double() const { return kind == Kind::kInt ? double(i) : kind == Kind::kBool ? double(b) : f; }
  const Value* find(const std::string& key) const;  // dict lookup; null if absent
  void set(const std::string& key, Value v);         // dict insert or replace
  const char* type_name() const;
};

// Templates are untrusted: no string they build (output included) may exceed kMaxText, and no value they build may
// nest deeper than kMaxValueDepth (printing, comparing and freeing values recurse).
constexpr size_t kMaxText = size_t(16) << 20;
constexpr int kMaxValueDepth = 256;
// Throws Error unless n <= kMaxText.
void check_text(size_t n);
// Throws Error when v nests deeper than kMaxValueDepth or contains `inside` (an object that v would be stored in).
void check_nesting(const Value& v, const Object* inside = nullptr);

bool equal(const Value& x, const Value& y);
// str(v) as Python prints it (True, None, 1.5, ['a', 1] ...); undefined prints as nothing.
std::string to_string(const Value& v);
// json.dumps(v, ensure_ascii=False) with Python's default separators, or indent when > 0 (transformers' tojson).
std::string to_json(const Value& v, int indent = 0, bool sort_keys = false);

}  // namespace meshlm::jinja
