#include "chat/value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/check.h"

namespace meshlm::jinja {

Value Value::from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null: return none();
    case nlohmann::json::value_t::boolean: return boolean(j.get<bool>());
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: return integer(j.get<int64_t>());
    case nlohmann::json::value_t::number_float: return number(j.get<double>());
    case nlohmann::json::value_t::string: return string(j.get<std::string>());
    case nlohmann::json::value_t::array: {
      Array a;
      for (const auto& x : j) a.push_back(from_json(x));
      return array(std::move(a));
    }
    case nlohmann::json::value_t::object: {
      Object o;
      for (const auto& [k, x] : j.items()) o.emplace_back(k, from_json(x));
      return object(std::move(o));
    }
    default: return Value();
  }
}

bool Value::truthy() const {
  switch (kind) {
    case Kind::kUndefined:
    case Kind::kNone: return false;
    case Kind::kBool: return b;
    case Kind::kInt: return i != 0;
    case Kind::kFloat: return f != 0;
    case Kind::kString: return !s.empty();
    case Kind::kArray: return !a->empty();
    case Kind::kObject: return !o->empty();
  }
  return false;
}

const Value* Value::find(const std::string& key) const {
  if (kind != Kind::kObject) return nullptr;
  for (const auto& [k, v] : *o)
    if (k == key) return &v;
  return nullptr;
}

void Value::set(const std::string& key, Value v) {
  for (auto& [k, x] : *o)
    if (k == key) {
      x = std::move(v);
      return;
    }
  o->emplace_back(key, std::move(v));
}

const char* Value::type_name() const {
  static const char* names[] = {"undefined", "none", "bool", "int", "float", "str", "list", "dict"};
  return names[int(kind)];
}

bool equal(const Value& x, const Value& y) {
  if (x.is_number() && y.is_number()) return x.as_double() == y.as_double();
  if (x.kind == Value::Kind::kBool && y.is_number()) return double(x.b) == y.as_double();
  if (y.kind == Value::Kind::kBool && x.is_number()) return double(y.b) == x.as_double();
  if (x.kind != y.kind) return false;
  switch (x.kind) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone: return true;
    case Value::Kind::kBool: return x.b == y.b;
    case Value::Kind::kString: return x.s == y.s;
    case Value::Kind::kArray:
      return x.a->size() == y.a->size() && std::equal(x.a->begin(), x.a->end(), y.a->begin(), equal);
    case Value::Kind::kObject:
      if (x.o->size() != y.o->size()) return false;
      for (const auto& [k, v] : *x.o) {
        const Value* w = y.find(k);
        if (!w || !equal(v, *w)) return false;
      }
      return true;
    default: return false;
  }
}

namespace {

std::string float_repr(double f) {  // Python's repr: shortest round-trip, always with a dot or exponent
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
  char buf[32];
  for (int p = 1; p <= 17; ++p) {
    std::snprintf(buf, sizeof buf, "%.*g", p, f);
    if (std::strtod(buf, nullptr) == f) break;
  }
  std::string s = buf;
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

std::string py_quote(const std::string& s) {  // repr() of a str: single quotes unless the text has one
  const char q = s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
  std::string out(1, q);
  for (char c : s) {
    if (c == q || c == '\\') out += '\\', out += c;
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else out += c;
  }
  return out + q;
}

std::string repr(const Value& v) { return v.is(Value::Kind::kString) ? py_quote(v.s) : to_string(v); }

void json_string(const std::string& s, std::string& out) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += char(c);
        }
    }
  }
  out += '"';
}

void json_value(const Value& v, int indent, bool sort_keys, int depth, std::string& out) {
  check_text(out.size() + size_t(indent) * size_t(depth + 1));
  const std::string nl = indent > 0 ? "\n" + std::string(size_t(indent * (depth + 1)), ' ') : "";
  const std::string close = indent > 0 ? "\n" + std::string(size_t(indent * depth), ' ') : "";
  const char* sep = indent > 0 ? "," : ", ";
  switch (v.kind) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone: out += "null"; return;
    case Value::Kind::kBool: out += v.b ? "true" : "false"; return;
    case Value::Kind::kInt: out += std::to_string(v.i); return;
    case Value::Kind::kFloat: out += float_repr(v.f); return;
    case Value::Kind::kString: json_string(v.s, out); return;
    case Value::Kind::kArray:
      if (v.a->empty()) { out += "[]"; return; }
      out += "[";
      for (size_t k = 0; k < v.a->size(); ++k) {
        out += k ? std::string(sep) + nl : nl;
        json_value((*v.a)[k], indent, sort_keys, depth + 1, out);
      }
      out += close + "]";
      return;
    case Value::Kind::kObject: {
      if (v.o->empty()) { out += "{}"; return; }
      Object items = *v.o;
      if (sort_keys) std::stable_sort(items.begin(), items.end(), [](auto& x, auto& y) { return x.first < y.first; });
      out += "{";
      for (size_t k = 0; k < items.size(); ++k) {
        out += k ? std::string(sep) + nl : nl;
        json_string(items[k].first, out);
        out += ": ";
        json_value(items[k].second, indent, sort_keys, depth + 1, out);
      }
      out += close + "}";
      return;
    }
  }
}

}  // namespace

void check_text(size_t n) {
  MESH_CHECK(n <= kMaxText, "the chat template builds a string of more than ", kMaxText >> 20, " MiB");
}

namespace {
void check_nesting_at(const Value& v, const Object* inside, int depth) {
  if (!v.is(Value::Kind::kArray) && !v.is(Value::Kind::kObject)) return;
  MESH_CHECK(depth < kMaxValueDepth, "the chat template builds a value nested deeper than ", kMaxValueDepth,
             " levels");
  if (v.is(Value::Kind::kArray)) {
    for (const Value& x : *v.a) check_nesting_at(x, inside, depth + 1);
    return;
  }
  MESH_CHECK(v.o.get() != inside, "the chat template stores an object inside itself");
  for (const auto& [k, x] : *v.o) check_nesting_at(x, inside, depth + 1);
}
}  // namespace

void check_nesting(const Value& v, const Object* inside) { check_nesting_at(v, inside, 0); }

std::string to_string(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kUndefined: return "";
    case Value::Kind::kNone: return "None";
    case Value::Kind::kBool: return v.b ? "True" : "False";
    case Value::Kind::kInt: return std::to_string(v.i);
    case Value::Kind::kFloat: return float_repr(v.f);
    case Value::Kind::kString: return v.s;
    case Value::Kind::kArray: {
      std::string out = "[";
      for (size_t k = 0; k < v.a->size(); ++k) check_text(out.size()), out += (k ? ", " : "") + repr((*v.a)[k]);
      return out + "]";
    }
    case Value::Kind::kObject: {
      std::string out = "{";
      for (size_t k = 0; k < v.o->size(); ++k)
        check_text(out.size()), out += (k ? ", " : "") + py_quote((*v.o)[k].first) + ": " + repr((*v.o)[k].second);
      return out + "}";
    }
  }
  return "";
}

std::string to_json(const Value& v, int indent, bool sort_keys) {
  std::string out;
  json_value(v, indent, sort_keys, 0, out);
  return out;
}

}  // namespace meshlm::jinja
