"""``PhoenixTestCase``: the ``unittest.TestCase`` base class of the integration tests. It
starts phoenix and upstreams for a test or a class, stops them in the cleanups, and appends
their diagnostics to the message of a failing test."""

import functools
import os
import shutil
import subprocess
import tempfile
import unittest

from .phoenix import Phoenix
from .process import phoenix_bin
from .upstream import UpstreamServer


def _attach_logs(fn):
    """Wraps a test method: any failure carries ``self.diagnostics()`` in its message."""
    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        try:
            return fn(self, *args, **kwargs)
        except unittest.SkipTest:
            raise
        except AssertionError as e:
            # Same exception (and traceback), with the diagnostics appended to its message.
            first = e.args[0] if e.args else ""
            e.args = (f"{first}\n{self.diagnostics()}",) + tuple(e.args[1:])
            raise
        except Exception as e:
            raise AssertionError(f"{type(e).__name__}: {e}\n{self.diagnostics()}") from e
    return wrapper


class PhoenixTestCase(unittest.TestCase):
    """Base class: test methods failing get phoenix's log tails appended to the message.

    Use ``start_phoenix``/``start_upstream`` (per test) or their class variants (from
    ``setUpClass``); everything started is stopped by the cleanups."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name, fn in list(vars(cls).items()):
            if name.startswith("test") and callable(fn):
                setattr(cls, name, _attach_logs(fn))

    # per-test resources
    def start_phoenix(self, config, **kwargs):
        px = Phoenix(config, **kwargs)
        self.__dict__.setdefault("_phoenixes", []).append(px)
        self.addCleanup(px.close)
        return px

    def start_upstream(self, name="app", **kwargs):
        up = UpstreamServer(name, **kwargs)
        self.__dict__.setdefault("_upstreams", []).append(up)
        self.addCleanup(up.stop)
        return up

    # per-class resources (call from setUpClass)
    @classmethod
    def start_class_phoenix(cls, config, **kwargs):
        px = Phoenix(config, **kwargs)
        if "_class_phoenixes" not in cls.__dict__:
            cls._class_phoenixes = []
        cls._class_phoenixes.append(px)
        cls.addClassCleanup(px.close)
        return px

    @classmethod
    def start_class_upstream(cls, name="app", **kwargs):
        up = UpstreamServer(name, **kwargs)
        if "_class_upstreams" not in cls.__dict__:
            cls._class_upstreams = []
        cls._class_upstreams.append(up)
        cls.addClassCleanup(up.stop)
        return up

    def _all(self, attr, class_attr):
        return list(type(self).__dict__.get(class_attr, [])) + list(self.__dict__.get(attr, []))

    def diagnostics(self):
        parts = []
        for px in self._all("_phoenixes", "_class_phoenixes"):
            parts.append(px.logs())
        for up in self._all("_upstreams", "_class_upstreams"):
            if up.errors:
                parts.append(f"--- upstream {up.name} protocol errors: {up.errors[:10]!r}")
        return "\n".join(parts)

    def validate_config(self, text):
        """Runs ``phoenix --mode validate`` on ``text`` written to a temporary file; returns
        (exit code, the file's path, stdout + stderr)."""
        directory = tempfile.mkdtemp(prefix="phoenix-validate-")
        self.addCleanup(shutil.rmtree, directory)
        path = os.path.join(directory, "config.yaml")
        with open(path, "w") as f:
            f.write(text)
        result = subprocess.run([phoenix_bin(), "--mode", "validate", "-c", path],
                                capture_output=True, text=True, timeout=20,
                                stdin=subprocess.DEVNULL)
        return result.returncode, path, result.stdout + result.stderr

    def assertNoUpstreamErrors(self, *upstreams):
        for up in upstreams:
            self.assertEqual(up.errors, [], f"upstream {up.name} saw malformed traffic")

    def assertAlive(self, px):
        self.assertTrue(px.running(), f"phoenix is not running any more (rc={px.proc.poll()})")
