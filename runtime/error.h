// The one error type (convoy::Error, declared in the public header) and helpers that build
// its message with context: "<model>: node '<name>' (<Op>): <reason>".
#pragma once
#include <sstream>
#include <string>
#include <utility>

#include "convoy/convoy.hpp"

namespace convoy {

template <typename... Args>
std::string str_cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

[[noreturn]] inline void fail(const std::string& message) { throw Error(message); }

// Short file name of a model path for messages: keeps the path as the user gave it.
inline std::string node_context(const std::string& model, const std::string& node, const std::string& op) {
  return str_cat(model, ": node '", node, "' (", op, ")");
}

}  // namespace convoy
