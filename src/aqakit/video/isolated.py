"""Decoding in a child process under a time limit: a video that blocks the decoder (a read that
never returns, a demuxer waiting on a pipe, a decoder stuck in a loop) or kills it (a crash inside
FFmpeg, the out-of-memory killer) becomes one :class:`~aqakit.errors.DataError` naming the file,
and the calling process carries on with the next video.

The child decodes clips with :func:`aqakit.video.decode.iter_timed_clips` and sends them through a
pipe; it counts every decoded source frame in shared memory. The limit is on progress, not on the
whole video: the decoder is stopped when the parent has waited ``timeout`` seconds and no frame was
decoded meanwhile, so a long video is never cut short. Children come from a fork server (a small
process started once, with PyAV imported), which costs milliseconds per video. Unix only (fork
server, ``poll``). docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import resource
import select
import signal
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any, Iterator, NoReturn

import numpy as np

from aqakit.errors import AqakitError, ConfigError, DataError, one_line_reason
from aqakit.video.decode import DecodeOptions, iter_timed_clips

#: Seconds the decoder may go without decoding a frame before it is stopped (``--decode-timeout``).
DEFAULT_DECODE_TIMEOUT = 60.0

#: How often the parent looks at the decoder's progress while it waits for a clip.
_POLL_SECONDS = 0.05


def _context() -> multiprocessing.context.BaseContext:
    """The fork-server context, its server loading PyAV and this module once for all children."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["av", "aqakit.video.isolated"])
    return context


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Hide the main module while a child starts. multiprocessing runs the main script again in every
    child it starts (the fork server's preload of ``__main__`` never gets the script's path: a
    mismatched key in CPython's forkserver.py); for the ``aqakit`` command that imports the whole
    command line (about a second) per video, and the child needs nothing from it."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def isolated_timed_clips(
    path: Path, clip_len: int, options: DecodeOptions, timeout: float = DEFAULT_DECODE_TIMEOUT
) -> Iterator[tuple[float, np.ndarray]]:
    """:func:`~aqakit.video.decode.iter_timed_clips` of ``path``, decoded in a child process.

    Raises:
        DataError: as ``iter_timed_clips``; also when the decoder decodes no frame for ``timeout``
            seconds while this process waits for a clip, or when the decoder process dies.
        ConfigError: ``timeout`` is not positive (``math.inf``: no limit).
    """
    if not timeout > 0:
        raise ConfigError(f"the decode time limit must be a positive number of seconds, got {timeout}")
    path = Path(path)
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    decoded = context.RawValue("Q", 0)  # source frames the child has decoded so far
    child = context.Process(target=_decode_into, args=(sender, decoded, path, clip_len, options),
                            name=f"aqakit-decode {path.name}", daemon=True)
    with _main_module_hidden():
        child.start()
    sender.close()  # the child holds the only write end: its death reads as end of file
    try:
        while True:
            message = _next_message(receiver, decoded, timeout, path, child)
            if message[0] == "clip":
                yield message[1], _receive_clip(receiver, message[2], path, child)
            elif message[0] == "error":
                raise message[1]
            else:
                return
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receiver.close()


def isolated_frames(path: Path, options: DecodeOptions, timeout: float = DEFAULT_DECODE_TIMEOUT) -> Iterator[np.ndarray]:
    """:func:`~aqakit.video.decode.iter_frames` of ``path``, decoded in a child process (as
    :func:`isolated_timed_clips` of one-frame clips, with its errors)."""
    for _, clip in isolated_timed_clips(path, 1, options, timeout):
        yield clip[0]


def _next_message(receiver, decoded, timeout: float, path: Path, child) -> tuple[Any, ...]:
    """The child's next message; DataError when it stalls for ``timeout`` seconds or dies."""
    seen, since = decoded.value, time.monotonic()
    while not receiver.poll(_POLL_SECONDS):
        if decoded.value != seen:
            seen, since = decoded.value, time.monotonic()
        elif time.monotonic() - since > timeout:
            raise DataError(
                f"{path}: the decoder decoded no frame for {timeout:g} s (a read that never returns or a decoder "
                f"stuck in a loop) and was stopped; a slow disk may need a longer --decode-timeout"
            )
    try:
        return receiver.recv()
    except (EOFError, OSError):
        _raise_died(path, child)


def _receive_clip(receiver, shape: tuple[int, ...], path: Path, child) -> np.ndarray:
    """The uint8 clip of ``shape`` the child sends as raw bytes after its ``("clip", ...)`` header."""
    clip = np.empty(shape, np.uint8)
    try:
        receiver.recv_bytes_into(clip.reshape(-1))  # a flat view: Connection sizes buffers by their first axis
    except (EOFError, OSError):  # OSError: the child ended in the middle of a message
        _raise_died(path, child)
    return clip


def _raise_died(path: Path, child) -> NoReturn:
    child.join()
    raise DataError(f"{path}: the decoder process died ({_exit_reason(child.exitcode)}) while reading this "
                    "video; the file probably crashes FFmpeg") from None


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit status {exitcode}"


def _decode_into(sender, decoded, path: Path, clip_len: int, options: DecodeOptions) -> None:
    """The child: send ``("clip", seconds, shape)`` and the clip's bytes per clip, then ``("done",)`` or
    ``("error", DataError)``."""
    _exit_when_the_parent_ends(sender)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops this child
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a decoder crashing on a hostile file leaves no core dump

    def count() -> None:
        decoded.value += 1

    try:
        for start, clip in iter_timed_clips(path, clip_len, options, on_frame=count):
            sender.send(("clip", start, clip.shape))
            sender.send_bytes(clip.reshape(-1))  # raw bytes, not pickled: a copy less each way
        sender.send(("done",))
    except AqakitError as exc:
        sender.send(("error", exc))
    except Exception as exc:  # noqa: BLE001 - a hostile file can make PyAV raise anything
        sender.send(("error", DataError(f"{path}: cannot be decoded ({type(exc).__name__}: {one_line_reason(exc)})")))


def _exit_when_the_parent_ends(sender) -> None:
    """End this process when the parent's end of the pipe closes (the extraction was killed), from a
    thread: the decoding thread may be blocked in C, which PyAV runs without holding the GIL."""
    watch = select.poll()
    watch.register(sender.fileno(), 0)  # a pipe's write end reports POLLERR once its read end is closed

    def wait() -> None:
        watch.poll()
        os._exit(1)

    threading.Thread(target=wait, name="aqakit-decode-watch", daemon=True).start()
