"""
The twistd drop-in must survive packaging (see twisted-style.md's pitfalls):
it must be in the wheel, and `twistd --help` must list `chatroom` once the
package is installed the regular (non-editable) way.
"""

import os
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata

from twisted.trial.unittest import SkipTest, TestCase

SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGIN = "twisted/plugins/chatsvc_plugin.py"


class PackagingTests(TestCase):
    timeout = 180

    def test_wheelHoldsDropIn(self):
        if not os.path.exists(os.path.join(SOURCE, "setup.cfg")):
            raise SkipTest("not run from a source checkout")
        try:
            import setuptools  # noqa: F401 (the build backend, from the test extra; 70.1+ builds wheels by itself)
        except ImportError:
            raise SkipTest("setuptools is not installed: pip install '.[test]'")
        # Build from a copy, so the checkout gets no build/ or egg-info.
        copy = os.path.abspath(self.mktemp())
        shutil.copytree(SOURCE, copy, ignore=shutil.ignore_patterns(
            ".git", ".venv", "venv", "build", "dist", "*.egg-info", "_trial_temp*",
            "__pycache__", "dropin.cache", "*.sqlite3*"))
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
             "--wheel-dir", "dist", "."],
            cwd=copy, capture_output=True, text=True, timeout=170, stdin=subprocess.DEVNULL)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        (wheel,) = [f for f in os.listdir(os.path.join(copy, "dist")) if f.endswith(".whl")]
        names = zipfile.ZipFile(os.path.join(copy, "dist", wheel)).namelist()
        self.assertIn(PLUGIN, names)
        self.assertIn("chatsvc/__init__.py", names)
        self.assertIn("chatsvc/tap.py", names)
        # The web page's files are package data, not modules.
        for asset in ("index.html", "account.js", "app.js", "chat.js", "commands.js",
                      "connection.js", "dom.js", "history.js", "irc.js", "room.js",
                      "signin.js", "ui.js", "style.css", "favicon.svg"):
            self.assertIn(f"chatsvc/web/{asset}", names)
        # Shipping these would overwrite Twisted's own and hide its plugins.
        self.assertNotIn("twisted/__init__.py", names)
        self.assertNotIn("twisted/plugins/__init__.py", names)

    def test_installedTwistdListsChatroom(self):
        # Not the chatsvc.egg-info that a build leaves in the checkout: the
        # installed distribution.
        elsewhere = [p for p in sys.path
                     if os.path.realpath(p or os.curdir) != os.path.realpath(SOURCE)]
        dist = next(iter(metadata.distributions(name="chatsvc", path=elsewhere)), None)
        if dist is None:
            raise SkipTest("chatsvc is not installed: pip install '.[test]' first")
        if not any(str(f) == PLUGIN for f in dist.files or []):
            raise SkipTest("chatsvc is installed in editable mode, which twistd cannot see")
        # From an empty folder and without PYTHONPATH, only the installed
        # drop-in can be found.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        result = subprocess.run(
            [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "--help"],
            cwd=folder, env=env, capture_output=True, text=True, timeout=60,
            stdin=subprocess.DEVNULL)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stdout, r"\n\s+chatroom\s+A line-based chat server")
        self.assertRegex(result.stdout, r"\n\s+chatclient\s+")
