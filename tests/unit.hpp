#pragma once
/// Include first in every test file. Debian's LibTorch logs through glog, whose CHECK, CHECK_EQ, ... macros
/// would replace doctest's: glog comes in first and its macros go before doctest defines its own.
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

#include "support.hpp"
