// heddle: eager stackful tasks for C++20. The umbrella header: every public
// layer (stack, core, sched, sync, io). Include a layer's own headers instead to
// keep compile times down.
#pragma once

#include "heddle/core/cancelled.hpp"
#include "heddle/core/combinators.hpp"
#include "heddle/core/dump.hpp"
#include "heddle/core/suspend.hpp"
#include "heddle/core/task.hpp"
#include "heddle/core/task_local.hpp"
#include "heddle/io/address.hpp"
#include "heddle/io/backend.hpp"
#include "heddle/io/blocking.hpp"
#include "heddle/io/file.hpp"
#include "heddle/io/net.hpp"
#include "heddle/sched/loop.hpp"
#include "heddle/sched/pool.hpp"
#include "heddle/sched/time.hpp"
#include "heddle/stack/stack.hpp"
#include "heddle/sync/barrier.hpp"
#include "heddle/sync/channel.hpp"
#include "heddle/sync/cond_var.hpp"
#include "heddle/sync/event.hpp"
#include "heddle/sync/mutex.hpp"
#include "heddle/sync/once.hpp"
#include "heddle/sync/semaphore.hpp"
#include "heddle/sync/shared_mutex.hpp"
#include "heddle/sync/wait_group.hpp"
