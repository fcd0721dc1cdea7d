"""Operations: `cmake --install` and the .deb CPack makes put the binaries, the packaged config,
the examples, the systemd unit and the logrotate entry in their places; the installed binary
validates the packaged config and prints its manual; systemd's Type=notify protocol (READY=1,
RELOADING=1, STOPPING=1) reaches $NOTIFY_SOCKET."""

import gzip
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

from harness.base import PhoenixTestCase
from harness.config import simple_config
from harness.process import free_port, require_phoenix_bin

INSTALLED = [
    "usr/bin/phoenix", "usr/bin/phoenix-cp", "usr/bin/phoenixctl",
    "etc/phoenix/phoenix.yaml", "etc/logrotate.d/phoenix",
    "usr/lib/systemd/system/phoenix.service",
    "usr/share/phoenix/examples/phoenix-app.yaml",
    "usr/share/man/man1/phoenix.1.gz", "usr/share/man/man1/phoenix-cp.1.gz",
    "usr/share/man/man1/phoenixctl.1.gz",
]


def build_dir():
    return os.path.dirname(os.path.abspath(require_phoenix_bin()))


def skip_unless_system_layout():
    """The layout checked is the default prefix's, /usr (/etc for config); a build directory
    configured with another prefix (or before packaging landed: /usr/local) lays out others."""
    try:
        with open(os.path.join(build_dir(), "CMakeCache.txt")) as f:
            prefix = next((line.split("=", 1)[1].strip() for line in f
                           if line.startswith("CMAKE_INSTALL_PREFIX:")), None)
    except OSError:
        prefix = None
    if prefix != "/usr":
        raise unittest.SkipTest(f"install prefix is {prefix}, not /usr: reconfigure with "
                                "-DCMAKE_INSTALL_PREFIX=/usr")


class InstallTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(os.path.join(build_dir(), "cmake_install.cmake")):
            raise unittest.SkipTest("PHOENIX_BIN is not in a CMake build directory")
        skip_unless_system_layout()
        cls.root = tempfile.mkdtemp(prefix="phoenix-install-")
        env = dict(os.environ, DESTDIR=cls.root)
        result = subprocess.run(["cmake", "--install", build_dir()], env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)

    def test_files_are_in_their_places(self):
        for path in INSTALLED:
            self.assertTrue(os.path.isfile(os.path.join(self.root, path)), path)
        self.assertTrue(os.access(os.path.join(self.root, "usr/bin/phoenix"), os.X_OK))

    def test_the_unit_runs_the_installed_binary_as_type_notify(self):
        with open(os.path.join(self.root, "usr/lib/systemd/system/phoenix.service")) as f:
            unit = f.read()
        self.assertIn("Type=notify", unit)
        self.assertIn("ExecStart=/usr/bin/phoenix -c /etc/phoenix/phoenix.yaml", unit)
        self.assertIn("ExecReload=/bin/kill -HUP $MAINPID", unit)
        if shutil.which("systemd-analyze"):
            # Syntax only: this host has no /usr/bin/phoenix, and maybe no running systemd.
            result = subprocess.run(
                ["systemd-analyze", "verify",
                 os.path.join(self.root, "usr/lib/systemd/system/phoenix.service")],
                capture_output=True, text=True, timeout=60)
            for complaint in ("Unknown key", "Unknown section", "Failed to parse", "Invalid"):
                self.assertNotIn(complaint, result.stderr)

    def test_the_installed_binary_validates_the_packaged_config(self):
        logs = tempfile.mkdtemp(prefix="phoenix-logs-")
        self.addCleanup(shutil.rmtree, logs, True)
        with open(os.path.join(self.root, "etc/phoenix/phoenix.yaml")) as f:
            config = f.read().replace("/var/log/phoenix", logs)
        path = os.path.join(logs, "phoenix.yaml")
        with open(path, "w") as f:
            f.write(config)
        result = subprocess.run([os.path.join(self.root, "usr/bin/phoenix"), "--mode",
                                 "validate", "-c", path], capture_output=True, text=True,
                                timeout=30)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("OK", result.stdout)

    def test_manual_pages_are_roff_made_from_help(self):
        with gzip.open(os.path.join(self.root, "usr/share/man/man1/phoenix.1.gz"), "rt") as f:
            page = f.read()
        self.assertTrue(page.startswith(".TH PHOENIX 1 "), page[:100])
        for section in ("NAME", "SYNOPSIS", "SIGNALS", "EXIT STATUS"):
            self.assertIn(f"\n.SH {section}\n", page)

    def test_help_is_a_manual(self):
        result = subprocess.run([os.path.join(self.root, "usr/bin/phoenix"), "--help"],
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 0)
        for section in ("NAME", "SYNOPSIS", "OPTIONS", "SIGNALS", "FILES", "EXIT STATUS"):
            self.assertIn(f"\n{section}", "\n" + result.stdout)
        self.assertIn("SIGUSR1", result.stdout)
        result = subprocess.run([os.path.join(self.root, "usr/bin/phoenix"), "--bogus"],
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 2)
        self.assertLess(len(result.stderr.splitlines()), 4, result.stderr)


class DebianPackageTest(unittest.TestCase):

    def test_cpack_makes_a_deb_with_conffiles_and_dependencies(self):
        skip_unless_system_layout()
        config = os.path.join(build_dir(), "CPackConfig.cmake")
        if not os.path.exists(config) or not shutil.which("dpkg-deb"):
            self.skipTest("no CPack config or dpkg-deb")
        out = tempfile.mkdtemp(prefix="phoenix-deb-")
        self.addCleanup(shutil.rmtree, out, True)
        result = subprocess.run(["cpack", "-G", "DEB", "--config", config, "-B", out],
                                capture_output=True, text=True, timeout=300)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        debs = [f for f in os.listdir(out) if f.endswith(".deb")]
        self.assertEqual(len(debs), 1, os.listdir(out))
        deb = os.path.join(out, debs[0])
        listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True,
                                 check=True).stdout
        for path in INSTALLED:
            self.assertIn(f"./{path}", listing)
        conffiles = subprocess.run(["dpkg-deb", "-I", deb, "conffiles"], capture_output=True,
                                   text=True, check=True).stdout.split()
        self.assertEqual(sorted(conffiles), ["/etc/logrotate.d/phoenix",
                                             "/etc/phoenix/phoenix.yaml"])
        control = subprocess.run(["dpkg-deb", "-f", deb, "Depends"], capture_output=True,
                                 text=True, check=True).stdout
        self.assertIn("libuv1", control)


class ServiceNotifyTest(PhoenixTestCase):

    def test_ready_reloading_and_stopping_reach_notify_socket(self):
        directory = tempfile.mkdtemp(prefix="phoenix-notify-")
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "notify")
        sink = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sink.close)
        sink.bind(path)
        sink.settimeout(15)
        app = self.start_upstream("app")
        config = simple_config(free_port(), free_port(), [app.port])
        os.environ["NOTIFY_SOCKET"] = path
        try:
            px = self.start_phoenix(config)
        finally:
            del os.environ["NOTIFY_SOCKET"]
        ready = sink.recv(4096).decode()
        self.assertIn("READY=1", ready)
        self.assertIn(f"MAINPID={px.pid}", ready)
        px.proc.send_signal(signal.SIGHUP)
        self.assertEqual(sink.recv(4096).decode(), "RELOADING=1")
        self.assertIn("READY=1", sink.recv(4096).decode())
        px.proc.send_signal(signal.SIGTERM)
        self.assertIn("STOPPING=1", sink.recv(4096).decode())
        self.assertEqual(px.proc.wait(timeout=15), 0)


if __name__ == "__main__":
    unittest.main()
