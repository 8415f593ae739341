#pragma once
/// Include this instead of <doctest/doctest.h>, before anything else: Debian's LibTorch logs through glog,
/// whose CHECK, CHECK_EQ, ... macros would otherwise replace doctest's.
#include <c10/util/Logging.h>

#undef CHECK
#undef CHECK_EQ
#undef CHECK_NE
#undef CHECK_LT
#undef CHECK_LE
#undef CHECK_GT
#undef CHECK_GE
#undef CHECK_NOTNULL
#include <doctest/doctest.h>
