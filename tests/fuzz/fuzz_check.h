// FUZZ_CHECK(cond): what every fuzz target asserts its invariants with. abort() rather than
// assert(): the checks must hold in release builds, where the replay tests run, and the message
// says which invariant broke (libFuzzer then keeps the input as a crash). Building with
// -D'FUZZ_FAIL()=(void)0' gives a keep-going replay that lists every invariant an input violates.
#pragma once

#include <cstdio>
#include <cstdlib>

#ifndef FUZZ_FAIL
#define FUZZ_FAIL() std::abort()
#endif

#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond); \
      FUZZ_FAIL();                                                                        \
    }                                                                                     \
  } while (0)
