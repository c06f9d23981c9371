// convoy: command-line front end. Dispatches to one Command per verb (tools/cmd_<verb>.cpp).
//
// Exit codes: 0 success, 1 error (one line "convoy: <message>" on stderr), 2 usage error
// (message plus the verb's synopsis).
#include <cstdio>
#include <exception>
#include <new>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "tools/cli_common.h"

namespace {

using convoy::cli::Command;

const Command* const kCommands[] = {&convoy::cli::kRunCommand, &convoy::cli::kInspectCommand, &convoy::cli::kDenseCommand,
                                    &convoy::cli::kConvertCommand, &convoy::cli::kBenchCommand,
                                    &convoy::cli::kFinetuneCommand};

void print_main_help(FILE* out) {
  std::fprintf(out, "usage: convoy <command> [args]   |   convoy --help   |   convoy --version\n\ncommands:\n");
  for (const Command* c : kCommands)
    std::fprintf(out, "  %-10.*s %.*s\n", int(c->name.size()), c->name.data(), int(c->summary.size()), c->summary.data());
  std::fprintf(out, "\n'convoy <command> --help' describes a command.\n");
}

// Errors are reported on one line, whatever the message holds.
void report_error(const std::string& message) {
  std::string line;
  for (char c : message) {
    if (c == '\n') {
      if (!line.empty() && line.back() != ' ') line += "; ";
    } else if (c != '\r') {
      line += c;
    }
  }
  while (!line.empty() && (line.back() == ' ' || line.back() == ';')) line.pop_back();
  std::fprintf(stderr, "convoy: %s\n", line.c_str());
}

int usage_error(const std::string& message, const Command* c) {
  report_error(message);
  if (c) {
    std::fprintf(stderr, "usage: %.*s\nTry 'convoy %.*s --help'.\n", int(c->usage.size()), c->usage.data(), int(c->name.size()),
                 c->name.data());
  } else {
    print_main_help(stderr);
  }
  return 2;
}

bool wants_help(const std::vector<std::string>& args) {
  for (const auto& a : args) {
    if (a == "--") return false;
    if (a == "--help" || a == "-h") return true;
  }
  return false;
}

int dispatch(int argc, char** argv, const Command*& command) {
  if (argc < 2) return usage_error("missing command", nullptr);
  const std::string verb = argv[1];
  if (verb == "--help" || verb == "-h" || verb == "help") {
    print_main_help(stdout);
    return 0;
  }
  if (verb == "--version") {
    std::printf("convoy %s\n", convoy::version().c_str());
    return 0;
  }
  for (const Command* c : kCommands)
    if (c->name == verb) command = c;
  if (!command) return usage_error("unknown command '" + verb + "'", nullptr);

  const std::vector<std::string> args(argv + 2, argv + argc);
  if (wants_help(args)) {
    std::printf("usage: %.*s\n\n%.*s", int(command->usage.size()), command->usage.data(), int(command->help.size()),
                command->help.data());
    return 0;
  }
  return command->run(args);
}

}  // namespace

int main(int argc, char** argv) {
  const Command* command = nullptr;
  try {
    return dispatch(argc, argv, command);
  } catch (const convoy::cli::UsageError& e) {
    return usage_error(e.what(), command);
  } catch (const std::bad_alloc&) {
    report_error("out of memory");
  } catch (const cv::Exception& e) {
    report_error("OpenCV: " + e.err);
  } catch (const std::exception& e) {
    report_error(e.what());
  } catch (...) {
    report_error("unknown internal error");
  }
  return 1;
}
