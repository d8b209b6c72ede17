# heddle's gdb extension: see tasks as gdb sees threads.
#
#   info heddle-tasks      every live task: id, state (and the leaf it is
#                          parked at), name, spawn site; `*` marks the task
#                          selected with heddle-task
#   heddle-bt [ID]         the backtrace of parked task ID (default: the
#                          selected task), unwound from its saved registers
#   heddle-task ID         selects parked task ID: gdb's frame #1 and up are
#                          now the task's frames, so `bt`, `frame N`,
#                          `info locals` and `print` work in them (frame #0
#                          stays the thread's own innermost frame)
#   heddle-task            back to the thread's own frames
#   $heddle_task_id("name")  the id of the live task with that name, for
#                          scripts: heddle-bt $heddle_task_id("acceptor")
#
# Loaded automatically from the .debug_gdb_scripts section heddle puts in
# every program that links it, once gdb trusts the program's path
# (`add-auto-load-safe-path /path/to/program`); or by hand with
# `source <prefix>/share/heddle/gdb/heddle.py`.
#
# It reads the inferior's memory only (never calls into it), through the
# layout heddle publishes in `heddle_debug_descriptor` (src/core/debug_descriptor.cpp),
# so it works on release builds without debug information for heddle, on
# running programs and on core files. Selecting a task installs an unwinder
# that gives frame #0 the task's saved registers as its caller's: the
# inferior's registers are never written, so `continue` is always safe; any
# resumption of the program drops the selection, since the task may run.
#
# Tested by tests/tools/gdb_test.sh (x86-64). The AArch64 frame layout is
# handled from include/heddle/arch/switch_frame_aarch64.h but not tested
# under gdb in CI.

import struct

import gdb
import gdb.unwinder

_MAGIC = 0x6264656C64646568  # "heddledb"
_VERSION = 1
_FIELDS = (
    "magic", "version", "architecture", "chunks_head", "blocks_per_chunk",
    "block_size", "chunk_next_offset", "state_offset", "id_offset",
    "name_offset", "name_size", "leaf_offset", "saved_sp_offset",
    "running_thread_offset", "interruptible_offset", "spawn_file_offset",
    "spawn_line_offset", "spawn_function_offset", "stack_low_offset",
    "stack_size_offset", "stack_kind_offset", "stack_kind_names",
    "stack_kind_count", "phase_mask", "cancel_requested_bit",
    "generation_unit",
)
_PHASES = ("running", "parking", "parked", "finished")
_MAX_CHUNKS = 1 << 22  # a corrupt list must not loop for ever

# Where the switch frame keeps each register (include/heddle/arch/
# switch_frame_*.h), and how far the stack pointer moves when it is popped.
_X86_64 = {
    "frame_size": 64,
    "registers": {"r15": 8, "r14": 16, "r13": 24, "r12": 32, "rbx": 40, "rbp": 48},
    "pc": ("rip", 56),
    "sp": "rsp",
}
_AARCH64 = {
    "frame_size": 176,
    "registers": dict([("x%d" % (19 + i), 80 + 8 * i) for i in range(10)] + [("x29", 160)]),
    "pc": ("pc", 168),
    "sp": "sp",
}
_ARCHITECTURES = {1: _X86_64, 2: _AARCH64}


def _inferior():
    inferior = gdb.selected_inferior()
    if inferior is None or inferior.pid == 0 and not inferior.threads():
        raise gdb.GdbError("heddle: no program is running (start it, or load a core file)")
    return inferior


def _u64(data, offset):
    return struct.unpack_from("<Q", data, offset)[0]


def _read(address, size):
    return bytes(_inferior().read_memory(address, size))


def _string(address, limit=512):
    if address == 0:
        return None
    try:
        data = _read(address, limit)
    except gdb.MemoryError:
        return "<unreadable>"
    end = data.find(b"\0")
    return data[: end if end >= 0 else limit].decode("utf-8", "replace")


def _descriptor():
    try:
        address = int(gdb.parse_and_eval("(char*)&heddle_debug_descriptor"))
    except gdb.error:
        raise gdb.GdbError("heddle: this program does not link heddle (no heddle_debug_descriptor symbol)")
    data = _read(address, 8 * len(_FIELDS))
    d = dict(zip(_FIELDS, struct.unpack("<%dQ" % len(_FIELDS), data)))
    if d["magic"] != _MAGIC:
        raise gdb.GdbError("heddle: heddle_debug_descriptor has the wrong magic number: memory corrupt?")
    if d["version"] != _VERSION:
        raise gdb.GdbError(
            "heddle: the program's heddle has debug layout version %d, this script knows %d: "
            "use the heddle.py installed with the program's heddle" % (d["version"], _VERSION))
    if d["architecture"] not in _ARCHITECTURES:
        raise gdb.GdbError("heddle: unknown architecture %d in heddle_debug_descriptor" % d["architecture"])
    return d


class Task(object):
    """One live task, read from its control block."""

    def __init__(self, d, block, data):
        self.block = block
        self.state = _u64(data, d["state_offset"])
        self.phase = _PHASES[self.state & d["phase_mask"]]
        self.id = _u64(data, d["id_offset"])
        raw_name = data[d["name_offset"]: d["name_offset"] + d["name_size"]]
        self.name = raw_name.split(b"\0", 1)[0].decode("utf-8", "replace")
        self.leaf_address = _u64(data, d["leaf_offset"])
        self.saved_sp = _u64(data, d["saved_sp_offset"])
        self.running_thread = struct.unpack_from("<I", data, d["running_thread_offset"])[0]
        self.interruptible = data[d["interruptible_offset"]] != 0
        self.spawn_file_address = _u64(data, d["spawn_file_offset"])
        self.spawn_line = struct.unpack_from("<I", data, d["spawn_line_offset"])[0]
        self.spawn_function_address = _u64(data, d["spawn_function_offset"])
        self.stack_low = _u64(data, d["stack_low_offset"])
        self.stack_size = _u64(data, d["stack_size_offset"])
        self.stack_kind = data[d["stack_kind_offset"]]
        self.cancel_requested = (self.state & d["cancel_requested_bit"]) != 0

    def state_text(self):
        if self.phase == "running":
            if self.running_thread == 0:
                text = "runnable"
            else:
                text = "running on thread %d" % self.running_thread
                number = _gdb_thread_number(self.running_thread)
                if number is not None:
                    text += " (gdb thread %d)" % number
        else:
            text = self.phase
            leaf = _string(self.leaf_address)
            if leaf and self.phase in ("parking", "parked"):
                text += " at " + leaf
        if self.cancel_requested:
            text += ", cancel requested"
        if self.phase != "running" and not self.interruptible:
            text += ", uninterruptible"
        return text

    def spawn_site(self):
        where = "%s:%d" % (_string(self.spawn_file_address) or "?", self.spawn_line)
        function = _string(self.spawn_function_address)
        return where + (" in " + function if function else "")


def _live(d, state):
    return state // d["generation_unit"] != 0 and _PHASES[state & d["phase_mask"]] != "finished"


def live_tasks():
    """Every live task, by id."""
    d = _descriptor()
    chunk = _u64(_read(d["chunks_head"], 8), 0)
    chunk_bytes = d["blocks_per_chunk"] * d["block_size"]
    tasks = []
    seen = 0
    while chunk != 0:
        seen += 1
        if seen > _MAX_CHUNKS:
            raise gdb.GdbError("heddle: the list of control blocks does not end: memory corrupt?")
        data = _read(chunk, max(chunk_bytes, d["chunk_next_offset"] + 8))
        for i in range(d["blocks_per_chunk"]):
            start = i * d["block_size"]
            block = data[start: start + d["block_size"]]
            if _live(d, _u64(block, d["state_offset"])):
                tasks.append(Task(d, chunk + start, block))
        chunk = _u64(data, d["chunk_next_offset"])
    tasks.sort(key=lambda t: t.id)
    return tasks


def find_task(task_id):
    for task in live_tasks():
        if task.id == task_id:
            return task
    raise gdb.GdbError("heddle: no live task has id %d (see `info heddle-tasks`)" % task_id)


def _gdb_thread_number(linux_tid):
    for thread in gdb.selected_inferior().threads():
        if thread.ptid[1] == linux_tid:
            return thread.num
    return None


def _parse_id(argument, command):
    try:
        return int(gdb.parse_and_eval(argument))
    except (gdb.error, ValueError):
        raise gdb.GdbError("%s: expected a task id (a number from `info heddle-tasks`), got %r" % (command, argument))


def saved_registers(task):
    """The registers a parked task resumes with: {name: value} and its pc."""
    if task.phase != "parked":
        if task.phase == "running" and task.running_thread:
            number = _gdb_thread_number(task.running_thread)
            raise gdb.GdbError(
                "heddle: task %d is running on thread %d%s: its frames are that thread's (`thread %s`, `bt`)"
                % (task.id, task.running_thread, " (gdb thread %d)" % number if number else "",
                   number if number else "N"))
        raise gdb.GdbError("heddle: task %d is %s: only a parked task has saved registers" % (task.id, task.state_text()))
    layout = _ARCHITECTURES[_descriptor()["architecture"]]
    low, high = task.stack_low, task.stack_low + task.stack_size
    if not (low <= task.saved_sp and task.saved_sp + layout["frame_size"] <= high):
        raise gdb.GdbError("heddle: task %d's saved stack pointer 0x%x is outside its stack [0x%x, 0x%x)"
                           % (task.id, task.saved_sp, low, high))
    frame = _read(task.saved_sp, layout["frame_size"])
    registers = {name: _u64(frame, offset) for name, offset in layout["registers"].items()}
    pc_name, pc_offset = layout["pc"]
    registers[pc_name] = _u64(frame, pc_offset)
    registers[layout["sp"]] = task.saved_sp + layout["frame_size"]
    return registers


class _FrameId(object):
    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


class TaskUnwinder(gdb.unwinder.Unwinder):
    """While a task is selected, frame #0's caller is the task's resume frame."""

    def __init__(self):
        super(TaskUnwinder, self).__init__("heddle-task")
        self.task_id = None
        self.registers = None
        self.thread = None  # the gdb thread whose frames carry the task

    def select(self, task_id, registers):
        self.task_id = task_id
        self.registers = registers
        self.thread = gdb.selected_thread().ptid
        gdb.invalidate_cached_frames()

    def clear(self):
        if self.registers is not None:
            self.task_id = self.registers = self.thread = None
            gdb.invalidate_cached_frames()

    def __call__(self, pending_frame):
        if self.registers is None or pending_frame.level() != 0:
            return None
        thread = gdb.selected_thread()
        if thread is None or thread.ptid != self.thread:
            return None
        layout = _ARCHITECTURES[_descriptor()["architecture"]]
        sp = pending_frame.read_register(layout["sp"])
        pc = pending_frame.read_register(layout["pc"][0])
        info = pending_frame.create_unwind_info(_FrameId(sp, pc))
        for name, value in self.registers.items():
            register_type = pending_frame.read_register(name).type
            info.add_saved_register(name, gdb.Value(value).cast(register_type))
        return info


_unwinder = TaskUnwinder()
gdb.unwinder.register_unwinder(None, _unwinder, replace=True)


def _drop_selection(_event=None):
    _unwinder.clear()


# The task may run (and its registers change) as soon as the program does.
gdb.events.cont.connect(_drop_selection)
gdb.events.exited.connect(_drop_selection)


def _frame_text(number, frame):
    name = frame.name() or "??"
    text = "#%-3d0x%016x in %s" % (number, frame.pc(), name)
    sal = frame.find_sal()
    if sal.symtab is not None and sal.line:
        text += " at %s:%d" % (sal.symtab.filename, sal.line)
    else:
        library = gdb.solib_name(frame.pc())
        if library:
            text += " from " + library
    return text


def task_frames(task_id, limit=256):
    """Text lines of a parked task's backtrace, innermost first."""
    task = find_task(task_id)
    registers = saved_registers(task)
    previous = (_unwinder.task_id, _unwinder.registers, _unwinder.thread)
    _unwinder.select(task_id, registers)
    lines = []
    try:
        frame = gdb.newest_frame().older()
        number = 0
        while frame is not None and number < limit:
            lines.append(_frame_text(number, frame))
            number += 1
            try:
                frame = frame.older()
            except gdb.error as error:
                lines.append("(backtrace stopped: %s)" % error)
                break
        if frame is not None and number >= limit:
            lines.append("(more than %d frames: stopped)" % limit)
    finally:
        if previous[1] is None:
            _unwinder.clear()
        else:
            _unwinder.task_id, _unwinder.registers, _unwinder.thread = previous
            gdb.invalidate_cached_frames()
    return task, lines


class InfoHeddleTasks(gdb.Command):
    """List heddle's live tasks: id, state, name and spawn site.
Usage: info heddle-tasks"""

    def __init__(self):
        super(InfoHeddleTasks, self).__init__("info heddle-tasks", gdb.COMMAND_STATUS)

    def invoke(self, argument, from_tty):
        if argument.strip():
            raise gdb.GdbError("info heddle-tasks takes no argument")
        tasks = live_tasks()
        gdb.write("heddle: %d live task%s\n" % (len(tasks), "" if len(tasks) == 1 else "s"))
        if not tasks:
            return
        gdb.write("  %-6s %-48s %-20s %s\n" % ("Id", "State", "Name", "Spawned at"))
        for task in tasks:
            mark = "*" if task.id == _unwinder.task_id else " "
            gdb.write("%s %-6d %-48s %-20s %s\n" % (mark, task.id, task.state_text(),
                                                     '"%s"' % task.name, task.spawn_site()))


class HeddleBacktrace(gdb.Command):
    """Backtrace of a parked heddle task, from its saved registers.
Usage: heddle-bt [ID]   (default: the task selected with heddle-task)"""

    def __init__(self):
        super(HeddleBacktrace, self).__init__("heddle-bt", gdb.COMMAND_STACK)

    def invoke(self, argument, from_tty):
        argument = argument.strip()
        if argument:
            task_id = _parse_id(argument, "heddle-bt")
        elif _unwinder.task_id is not None:
            task_id = _unwinder.task_id
        else:
            raise gdb.GdbError("heddle-bt: which task? (heddle-bt ID; ids from `info heddle-tasks`)")
        task, lines = task_frames(task_id)
        gdb.write('task %d "%s": %s\n' % (task.id, task.name, task.state_text()))
        for line in lines:
            gdb.write(line + "\n")


class HeddleTask(gdb.Command):
    """Select a parked heddle task: frames #1 and up become its frames.
Usage: heddle-task ID   select task ID (ids from `info heddle-tasks`)
       heddle-task      back to the thread's own frames
Frame #0 stays the thread's innermost frame; the task's innermost frame is
#1, which is selected. Continuing the program drops the selection."""

    def __init__(self):
        super(HeddleTask, self).__init__("heddle-task", gdb.COMMAND_STACK)

    def invoke(self, argument, from_tty):
        argument = argument.strip()
        if not argument:
            if _unwinder.task_id is None:
                gdb.write("heddle: no task is selected\n")
            else:
                gdb.write("heddle: task %d is no longer selected\n" % _unwinder.task_id)
                _unwinder.clear()
            return
        task_id = _parse_id(argument, "heddle-task")
        task = find_task(task_id)
        _unwinder.select(task_id, saved_registers(task))
        gdb.write('heddle: selected task %d "%s" (%s); its innermost frame is #1\n'
                  % (task.id, task.name, task.state_text()))
        gdb.execute("frame 1", from_tty)


class HeddleTaskId(gdb.Function):
    """$heddle_task_id("name"): the id of the live task called `name` (the
lowest id when several are)."""

    def __init__(self):
        super(HeddleTaskId, self).__init__("heddle_task_id")

    def invoke(self, name):
        wanted = name.string()
        for task in live_tasks():
            if task.name == wanted:
                return task.id
        raise gdb.GdbError('$heddle_task_id: no live task is called "%s"' % wanted)


InfoHeddleTasks()
HeddleTaskId()
HeddleBacktrace()
HeddleTask()
