"""Helpers for the serving tests: `sirnn serve` in a subprocess, its log, its memory."""

import os
import re
import subprocess
import sys
import threading
import time


class Server:
    """`python -m sirnn serve PATH --port 0 ARGS…` in a subprocess (or ``argv``, a command that logs
    like it); collects its log (stderr) and its stdout in threads."""

    def __init__(self, path, *args, argv=None):
        argv = argv or [sys.executable, "-m", "sirnn", "serve", str(path), "--port", "0", *args]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.out: list[str] = []
        self.eof = False
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self.out.extend(self.proc.stdout), daemon=True).start()
        line = self.wait_for(r"listening on [\d.]+:(\d+)", 60)
        self.port = int(re.search(r"listening on [\d.]+:(\d+)", line)[1])

    def _read(self):
        for line in self.proc.stderr:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait_for(self, pattern, timeout=60.0) -> str:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    if re.search(pattern, line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    raise AssertionError(f"server log has no {pattern!r}:\n" + "\n".join(self.lines))
                self.cond.wait(min(left, 0.5))

    def wait_count(self, text: str, n: int, timeout: float = 60.0) -> None:
        """Wait until ``text`` occurs ``n`` times in the log (a session is logged just after
        its client has its answer)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.log_unlocked().count(text) < n:
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    raise AssertionError(f"server log has {self.log_unlocked().count(text)} × {text!r}, "
                                         f"not {n}:\n" + self.log_unlocked())
                self.cond.wait(min(left, 0.5))

    def log_unlocked(self) -> str:
        return "\n".join(self.lines)

    def log(self) -> str:
        with self.cond:
            return "\n".join(self.lines)

    def finish(self, timeout=30.0) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


def sirnn_cli(*args, timeout=90, **kw):
    return subprocess.run([sys.executable, "-m", "sirnn", *args], capture_output=True, text=True,
                          timeout=timeout, **kw)


def proc_kb(pid: int, field: str = "VmRSS") -> int:
    """A size in KiB from /proc/PID/status (``VmRSS``: resident now, ``VmHWM``: peak)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def children(pid: int) -> list[int]:
    """The direct children of a process (Linux)."""
    kids = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:  # (it has ended)
        return []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return kids


def tree_pss_kb(pid: int) -> int:
    """Proportional set size (KiB) of a process and its children: the memory they use together,
    shared pages (a fork's copy-on-write) counted once."""
    total = 0
    for p in [pid] + children(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
        except (OSError, StopIteration):
            pass  # a session process that just ended
    return total
