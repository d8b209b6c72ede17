// heddle: eager stackful tasks for C++20. The umbrella header.
#pragma once

#include "heddle/core/cancelled.hpp"
#include "heddle/core/combinators.hpp"
#include "heddle/core/suspend.hpp"
#include "heddle/core/task.hpp"
#include "heddle/stack/stack.hpp"
