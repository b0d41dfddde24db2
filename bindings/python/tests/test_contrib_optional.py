"""The frameworks stay optional: importing keyward (and keyward.contrib, and the DRF app
package Django loads from INSTALLED_APPS) imports none of them."""
from __future__ import annotations

import subprocess
import sys

FRAMEWORKS = ("django", "rest_framework", "fastapi", "starlette", "flask", "werkzeug", "httpx")


def test_importing_keyward_imports_no_framework() -> None:
    code = (
        "import sys, keyward, keyward.middleware, keyward.contrib, keyward.contrib.drf\n"
        f"loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set({FRAMEWORKS!r}))\n"
        "assert not loaded, loaded\n"
        "assert not hasattr(keyward, 'contrib') or 'keyward.contrib.fastapi' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
