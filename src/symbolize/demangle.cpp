#include <cxxabi.h>

#include <cstdlib>
#include <memory>

#include "symbolize/symbolizer.h"

namespace leakwatch::symbolize {

std::string demangle(const std::string& name) {
  // Only Itanium-ABI symbol names ("_Z..."): __cxa_demangle also accepts bare type
  // encodings, and would turn a C function called "i" into "int".
  if (!name.starts_with("_Z")) return name;
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> out(
      abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &status), &std::free);
  if (status != 0 || !out) return name;
  return out.get();
}

}  // namespace leakwatch::symbolize
