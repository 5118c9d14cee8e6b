"""Runs the lmstream_client unit tests (python/tests) and checks that the package installs with
pip offline, both with and without build isolation (the in-tree build backend needs nothing)."""
import os
import subprocess
import sys
import tempfile
import unittest

from lmstest import python_client_dir, source_dir

SOURCE = source_dir()
PYTHON_DIR = python_client_dir()


class PythonClient(unittest.TestCase):
    def test_unit_tests_pass(self):
        if not os.path.isdir(os.path.join(PYTHON_DIR, "tests")):
            self.fail(f"no python/tests under {SOURCE}")
        run = subprocess.run([sys.executable, "-m", "unittest", "discover", "-s", "tests",
                              "-t", ".", "-v"], cwd=PYTHON_DIR, capture_output=True, text=True,
                             timeout=300)
        sys.stderr.write(run.stderr[-4000:])
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertNotIn("Ran 0 tests", run.stderr)

    def test_pip_install_works_offline(self):
        for extra in ([], ["--no-build-isolation"]):
            with self.subTest(extra=extra), tempfile.TemporaryDirectory() as target:
                run = subprocess.run(
                    [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps",
                     "--disable-pip-version-check", "--target", target, *extra, PYTHON_DIR],
                    capture_output=True, text=True, timeout=300)
                self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
                check = subprocess.run(
                    [sys.executable, "-c",
                     "import lmstream_client, sys; print(lmstream_client.__file__); "
                     "print(lmstream_client.build_llama2_prompt([{'role':'user','content':'hi'}]))"],
                    cwd=target, env=dict(os.environ, PYTHONPATH=target), capture_output=True,
                    text=True, timeout=60)
                self.assertEqual(check.returncode, 0, check.stderr)
                self.assertTrue(check.stdout.startswith(target), check.stdout)
                self.assertIn("<s>[INST] hi [/INST]", check.stdout)


if __name__ == "__main__":
    sys.exit(0 if unittest.main(exit=False, verbosity=2).result.wasSuccessful() else 1)
