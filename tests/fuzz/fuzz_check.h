// tests/fuzz/fuzz_check.h
// FUZZ_CHECK(condition) << "details": how a fuzz target reports a broken property. It prints
// the condition and the details, then aborts, which both libFuzzer and tests/fuzz/fuzz_driver.cc
// treat as a crash (they save the input). Unlike assert(), it is on in every build type.
#pragma once

#include <cstdlib>
#include <iostream>
#include <sstream>

namespace fngate::fuzz {

class CheckFailure {
 public:
  CheckFailure(const char* condition, const char* file, int line) {
    stream_ << file << ":" << line << ": FUZZ_CHECK(" << condition << ") failed: ";
  }
  ~CheckFailure() {  // Never returns.
    std::cerr << stream_.str() << std::endl;
    std::abort();
  }
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// Turns the stream expression into void, so both branches of the ?: below have one type. `&`
// binds looser than `<<`: every streamed detail goes to the failure first.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace fngate::fuzz

// An expression, not an if: safe inside an unbraced if/else.
#define FUZZ_CHECK(condition)  \
  (condition) ? (void)0        \
              : ::fngate::fuzz::Voidify() & \
                    ::fngate::fuzz::CheckFailure(#condition, __FILE__, __LINE__).stream()
