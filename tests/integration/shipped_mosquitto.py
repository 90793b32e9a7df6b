"""Run the shipped broker configuration (config/mosquitto/) in a test, on free loopback ports.

`derive_config` turns the shipped mosquitto.conf into one a test can run: the system paths
(/etc/mosquitto/, /var/lib/mosquitto/, ...) move into a temporary directory, the listeners' ports
become free loopback ports, and mosquitto runs as the current user. Everything else is the shipped
file itself, so the tests check what we ship, not a copy. Anything the derivation does not
understand (a new absolute path, a listener it has no port for) is an error, not a silent gap.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Collection, Mapping
from pathlib import Path

from gateway.ingest.embedded_broker import free_port

SHIPPED_DIR = Path(__file__).resolve().parents[2] / "config" / "mosquitto"
SHIPPED_CONFIG = SHIPPED_DIR / "mosquitto.conf"
MAKE_CERTS = SHIPPED_DIR / "make-certs.sh"

# Where the shipped file expects things, and where they go under the test's directory.
SYSTEM_DIRS = {
    "/etc/mosquitto/": "etc",
    "/var/lib/mosquitto/": "lib",
    "/var/log/mosquitto/": "log",
    "/run/mosquitto/": "run",
}

# Debian puts mosquitto in /usr/sbin, which a user's PATH may leave out.
_SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"]
)

_OPTIONAL_START = re.compile(r"#\s*\[optional:\s*([\w-]+)\]")
_OPTIONAL_END = "# [end]"


def which(tool: str) -> str | None:
    """The path of a command on PATH or in the sbin directories, or None."""
    return shutil.which(tool, path=_SEARCH_PATH)


def derive_config(
    text: str,
    root: Path,
    ports: Mapping[int, int],
    *,
    enable: Collection[str] = (),
    without: Collection[str] = (),
) -> str:
    """The shipped configuration `text`, made runnable under `root` on the given ports.

    ports: shipped listener port -> the test's port (bound to 127.0.0.1).
    enable: optional blocks (``# [optional: NAME]`` ... ``# [end]``) to uncomment.
    without: lines to remove (exactly as shipped), to show what they protect against.
    """
    user = pwd.getpwuid(os.geteuid()).pw_name
    lines: list[str] = []
    found_blocks: set[str] = set()
    block: str | None = None
    removed: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        start = _OPTIONAL_START.match(line)
        if start:
            block = start.group(1)
            found_blocks.add(block)
        elif line == _OPTIONAL_END:
            block = None
        elif block in enable and re.match(r"#\S", line):
            line = line[1:]  # "#listener 8884" -> "listener 8884"; "# prose" stays a comment
        if line in without:
            removed.add(line)
            continue
        if not line or line.startswith("#"):
            lines.append(line)
            continue
        lines.append(_rewrite(line, number, root, ports, user))
    if block is not None:
        raise ValueError(f"optional block {block!r} has no '{_OPTIONAL_END}' line")
    if missing := set(enable) - found_blocks:
        raise ValueError(f"no optional block named {sorted(missing)} in the configuration")
    if missing := set(without) - removed:
        raise ValueError(f"no line {sorted(missing)} to remove in the configuration")
    return "\n".join(lines) + "\n"


def _rewrite(line: str, number: int, root: Path, ports: Mapping[int, int], user: str) -> str:
    option, *args = line.split()
    if option == "user":
        # As root, mosquitto would switch to the shipped user, who cannot write the test's files.
        return f"user {user}"
    if option == "listener":
        port = int(args[0])
        if port not in ports:
            raise ValueError(f"line {number}: no test port for listener {port}: {line!r}")
        return f"listener {ports[port]} 127.0.0.1"
    for system_dir, local in SYSTEM_DIRS.items():
        line = line.replace(system_dir, f"{root / local}/")
    if any(arg.startswith("/") and not arg.startswith(f"{root}/") for arg in line.split()[1:]):
        raise ValueError(f"line {number}: an absolute path the test cannot relocate: {line!r}")
    return line


def listener_ports(config: str) -> list[int]:
    """The ports of the listeners in a (derived) configuration."""
    return [int(m.group(1)) for m in re.finditer(r"^listener (\d+)", config, re.MULTILINE)]


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class ShippedMosquitto:
    """A mosquitto running the shipped configuration under `root` (see `derive_config`).

    `root/etc` must already hold what the configuration reads (password files, ACLs,
    certificates); `ports` maps each shipped listener port to the port used here.
    """

    START_ATTEMPTS = 3
    START_TIMEOUT_S = 10.0

    def __init__(
        self,
        executable: str,
        root: Path,
        *,
        enable: Collection[str] = (),
        without: Collection[str] = (),
    ) -> None:
        self.executable = executable
        self.root = root
        self.enable = enable
        self.without = without
        self.ports: dict[int, int] = {}
        self.config_path = root / "mosquitto.conf"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ShippedMosquitto:
        for name in SYSTEM_DIRS.values():
            (self.root / name).mkdir(parents=True, exist_ok=True)
        # Another process may take a free port before mosquitto binds it: then try others.
        for _ in range(self.START_ATTEMPTS):
            self.ports = {shipped: free_port() for shipped in (1883, 8883, 8884)}
            if self._start():
                return self
        raise RuntimeError(
            f"mosquitto did not start in {self.START_ATTEMPTS} attempts; its output ends with:\n"
            + self.output_tail()
        )

    def _start(self) -> bool:
        config = derive_config(
            SHIPPED_CONFIG.read_text(),
            self.root,
            self.ports,
            enable=self.enable,
            without=self.without,
        )
        self.config_path.write_text(config)
        with (self.root / "stderr.log").open("ab") as stderr:
            process = subprocess.Popen(
                [self.executable, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        deadline = time.monotonic() + self.START_TIMEOUT_S
        waiting = listener_ports(config)
        while process.poll() is None and time.monotonic() < deadline:
            waiting = [port for port in waiting if not _accepts_connections(port)]
            if not waiting:
                self._process = process
                return True
            time.sleep(0.05)
        _terminate(process)
        return False

    def reload(self) -> None:
        """Make mosquitto read its password files and ACLs again (what `systemctl reload` does)."""
        assert self._process is not None, "mosquitto is not running"
        self._process.send_signal(signal.SIGHUP)

    def output_tail(self) -> str:
        """The end of mosquitto's standard error and log, to explain a failure."""
        texts = []
        for path in (self.root / "stderr.log", self.root / "log" / "mosquitto.log"):
            if path.exists():
                texts.append(path.read_text(errors="replace")[-3000:])
        return "\n".join(texts).strip() or "(nothing)"

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None:
            _terminate(self._process)
            self._process = None


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
