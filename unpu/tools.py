"""External tools: find them (environment variable or PATH) with one line naming what is missing and
where to get it, run them with a timeout and a log, retry the flaky ones. No shell, ever.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_fixed

from unpu.errors import ToolError

BUILD_TIMEOUT_S = 1800
FLASH_TIMEOUT_S = 300
VERSION_TIMEOUT_S = 60
_OVERFLOW = re.compile(r"region `(\w+)' overflowed by (\d+) bytes")


def require_tool(tool: str, how: str) -> str:
    """The path of `tool` on PATH, or ToolError saying how to get it."""
    path = shutil.which(tool)
    if path is None:
        raise ToolError(f"{tool} not found on PATH: {how}")
    return path


def require_dir(var: str, what: str, marker: str) -> Path:
    """The directory in environment variable `var`, which must contain `marker`."""
    value = os.environ.get(var)
    if not value:
        raise ToolError(f"{var} is not set: point it at {what}")
    path = Path(value).expanduser()
    if not (path / marker).exists():
        raise ToolError(f"{var}={value} is not {what} (no {marker} there)")
    return path


def tool_from_env(var: str, exe: str, how: str) -> str:
    """The tool `exe` under $var (its bin/ or itself), else on PATH; ToolError naming both otherwise."""
    root = os.environ.get(var)
    if root:
        for candidate in (Path(root) / exe, Path(root) / "bin" / exe, Path(root)):
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
        raise ToolError(f"{var}={root} has no executable {exe}: {how}")
    found = shutil.which(exe)
    if found is None:
        raise ToolError(f"{exe} not found ({var} unset, not on PATH): {how}")
    return found


def tool_version(cmd: list[str], pattern: str, what: str, timeout: float = VERSION_TIMEOUT_S) -> str:
    """The version a tool prints (first match of `pattern`, group 1); ToolError if it prints none."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolError(f"{what}: `{' '.join(cmd)}` failed: {exc}") from None
    match = re.search(pattern, proc.stdout + proc.stderr)
    if not match:
        raise ToolError(f"{what}: `{' '.join(cmd)}` printed no version")
    return match.group(1)


def run_logged(cmd: list[str], log_path: Path, what: str, timeout: float = BUILD_TIMEOUT_S,
               cwd: Path | None = None, stdin: str | None = None) -> str:
    """Run `cmd`, append its output to log_path and return its stdout; ToolError with the tail on failure
    (a linker's region overflow is said as such: the firmware does not fit)."""
    try:
        io = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, **io)
    except subprocess.TimeoutExpired:
        raise ToolError(f"{what} exceeded {timeout:g} s") from None
    except OSError as exc:
        raise ToolError(f"{what} could not start: {exc}") from None
    with open(log_path, "a") as f:
        f.write(f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        overflow = _OVERFLOW.search(proc.stderr)
        if overflow:
            raise ToolError(f"the firmware does not fit: region {overflow.group(1)} overflowed by "
                            f"{overflow.group(2)} B")
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise ToolError(f"{what} failed (exit {proc.returncode}): {tail[-400:]}")
    return proc.stdout


def run_with_retry(cmd: list[str], log_path: Path, what: str, timeout: float = FLASH_TIMEOUT_S,
                   cwd: Path | None = None, attempts: int = 2) -> str:
    """run_logged, tried `attempts` times (flashing over USB fails now and then; builds do not)."""
    runner = retry(stop=stop_after_attempt(attempts), wait=wait_fixed(1.0), reraise=True,
                   retry=retry_if_exception_type(ToolError))(run_logged)
    return runner(cmd, log_path, what, timeout=timeout, cwd=cwd)


def jobs() -> str:
    """make's -j for a build on this machine."""
    return f"-j{min(os.cpu_count() or 1, 8)}"
