#include "agent/label_selector.h"

#include <algorithm>
#include <cctype>

#include "common/text.h"

namespace leakwatch::agent {
namespace {

// Label keys: an optional DNS prefix and '/', then [A-Za-z0-9._-]; values the same without
// '/'.  Checked loosely: a selector only has to parse what Kubernetes accepts.
bool is_key_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
         c == '/';
}
bool is_value_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
}
bool all_of(std::string_view s, bool (*ok)(char)) {
  return std::all_of(s.begin(), s.end(), ok);
}

// Splits on commas outside parentheses.
std::vector<std::string_view> split_requirements(std::string_view s) {
  std::vector<std::string_view> out;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '(') ++depth;
    else if (s[i] == ')') --depth;
    else if (s[i] == ',' && depth == 0) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  out.push_back(s.substr(start));
  return out;
}

Result<LabelSelector::Requirement> parse_requirement(std::string_view r) {
  using Op = LabelSelector::Requirement::Op;
  LabelSelector::Requirement req;
  r = trim(r);
  if (r.empty()) return fail("empty requirement");
  if (r.front() == '!') {
    req.key = std::string(trim(r.substr(1)));
    req.op = Op::kNotExists;
    if (req.key.empty() || !all_of(req.key, is_key_char))
      return fail("expected a label key after '!' in \"{}\"", r);
    return req;
  }
  size_t key_end = 0;
  while (key_end < r.size() && is_key_char(r[key_end])) ++key_end;
  req.key = std::string(r.substr(0, key_end));
  if (req.key.empty()) return fail("expected a label key at \"{}\"", r);
  std::string_view rest = trim(r.substr(key_end));
  if (rest.empty()) {
    req.op = Op::kExists;
    return req;
  }
  auto value = [&](std::string_view v) -> Result<std::string> {
    v = trim(v);
    if (!all_of(v, is_value_char)) return fail("bad label value \"{}\"", v);
    return std::string(v);
  };
  if (rest.starts_with("!=")) {
    req.op = Op::kNotEquals;
    rest.remove_prefix(2);
  } else if (rest.starts_with("==")) {
    rest.remove_prefix(2);
  } else if (rest.starts_with("=")) {
    rest.remove_prefix(1);
  } else {
    bool in = rest.starts_with("in") && rest.size() > 2 && !is_key_char(rest[2]);
    bool notin = rest.starts_with("notin") && rest.size() > 5 && !is_key_char(rest[5]);
    if (!in && !notin) return fail("expected =, ==, !=, in or notin after \"{}\"", req.key);
    req.op = in ? Op::kIn : Op::kNotIn;
    rest = trim(rest.substr(in ? 2 : 5));
    if (!rest.starts_with('(') || !rest.ends_with(')'))
      return fail("expected a parenthesised list of values after \"{} {}\"", req.key,
                  in ? "in" : "notin");
    rest = rest.substr(1, rest.size() - 2);
    size_t start = 0;
    for (size_t i = 0; i <= rest.size(); ++i) {
      if (i == rest.size() || rest[i] == ',') {
        auto v = value(rest.substr(start, i - start));
        if (!v) return std::unexpected(v.error());
        if (v->empty()) return fail("empty value in the list of \"{}\"", req.key);
        req.values.push_back(*v);
        start = i + 1;
      }
    }
    return req;
  }
  auto v = value(rest);
  if (!v) return std::unexpected(v.error());
  req.values.push_back(*v);
  return req;
}

}  // namespace

bool LabelSelector::matches(const std::map<std::string, std::string>& labels) const {
  using Op = Requirement::Op;
  for (const Requirement& r : requirements) {
    auto it = labels.find(r.key);
    const bool has = it != labels.end();
    auto listed = [&] {
      return has && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end();
    };
    bool ok = false;
    switch (r.op) {
      case Op::kEquals: ok = has && it->second == r.values.at(0); break;
      case Op::kNotEquals: ok = !has || it->second != r.values.at(0); break;
      case Op::kIn: ok = listed(); break;
      case Op::kNotIn: ok = !listed(); break;
      case Op::kExists: ok = has; break;
      case Op::kNotExists: ok = !has; break;
    }
    if (!ok) return false;
  }
  return true;
}

Result<LabelSelector> parse_label_selector(std::string_view text) {
  LabelSelector sel;
  sel.text = std::string(trim(text));
  if (sel.text.empty()) return fail("expected a label selector such as app=web");
  for (std::string_view part : split_requirements(sel.text)) {
    auto r = parse_requirement(part);
    if (!r) return std::unexpected(r.error());
    sel.requirements.push_back(std::move(*r));
  }
  return sel;
}

}  // namespace leakwatch::agent
