"""systemd's socket unit, played without PID 1: a process holding the listening socket
and `systemd-socket-activate` (Debian's systemd package) starting the service on it.

The socket stays open for the whole life of the `Activator`, as systemd keeps it:
a connection made while no server runs waits in its queue. `systemd-socket-activate`
receives the socket as fd 3 (``LISTEN_FDS``), waits for the first connection and
execs the service in its own process (so its pid is the server's); when the server
exits, the next `systemd-socket-activate` is started at once, as systemd rearms
the socket. Used by the benchmark and by tests/e2e/test_socket_activation.py.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import threading
from pathlib import Path

ACTIVATE = shutil.which("systemd-socket-activate") or "/usr/bin/systemd-socket-activate"
# fd 3 as systemd passes it; LISTEN_PID is the pid the service will have (exec keeps it).
_LAUNCH = 'exec 3>&"$SOCKET_FD" {fd}>&-; export LISTEN_FDS=1 LISTEN_PID=$$; exec "$@"'


class Activator:
    """Holds a listening socket on 127.0.0.1 and starts `argv` on it on demand."""

    def __init__(self, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.argv = argv
        self.log = log
        self.env = env or {}
        self.socket = socket.socket()
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(128)
        self.port: int = self.socket.getsockname()[1]
        # A copy above any fd the launch uses (bash moves it to 3, then closes it).
        self._fd = fcntl.fcntl(self.socket.fileno(), fcntl.F_DUPFD_CLOEXEC, 100)
        self.exits: list[int] = []  # return codes of the processes that ended, in order
        self.ended = threading.Condition()
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="activator", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Activator:
        self._launch()
        self._thread.start()
        return self

    def _launch(self) -> None:
        fd = self._fd
        passed = [f"--setenv={name}" for name in self.env]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                ["/bin/bash", "-c", _LAUNCH.format(fd=fd), "activate", ACTIVATE, *passed, *self.argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=(fd,),
                env=os.environ | {"SOCKET_FD": str(fd), "PYTHONUNBUFFERED": "1"} | self.env,
            )

    def _serve(self) -> None:
        while True:
            process = self.process
            assert process is not None
            code = process.wait()
            with self.ended:
                self.exits.append(code)
                self.ended.notify_all()
                if self._stopping:
                    return
                self._launch()

    def server_running(self) -> bool:
        """Whether the current process has become the server (exec'd past the activator)."""
        process = self.process
        if process is None or process.poll() is not None:
            return False
        try:
            exe = os.readlink(f"/proc/{process.pid}/exe")
        except OSError:
            return False
        return Path(exe).name != Path(ACTIVATE).name and Path(exe).name != "bash"

    def waiting(self) -> bool:
        """Whether systemd-socket-activate waits on the socket for the next connection."""
        process = self.process
        if process is None or process.poll() is not None:
            return False
        try:
            return Path(os.readlink(f"/proc/{process.pid}/exe")).name == Path(ACTIVATE).name
        except OSError:
            return False

    def wait_exits(self, count: int, timeout: float) -> bool:
        """Wait until `count` processes have ended; False on timeout."""
        with self.ended:
            return self.ended.wait_for(lambda: len(self.exits) >= count, timeout)

    def stop(self) -> None:
        with self.ended:
            self._stopping = True
            process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        self._thread.join(20)
        os.close(self._fd)
        self.socket.close()
