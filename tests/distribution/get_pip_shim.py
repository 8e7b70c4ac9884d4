# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Stand-in for the get-pip.py bootstrap that ansible-test downloads from ci-files.testing.ansible.com.

That host is not reachable from CI here; PyPI is. ansible-test runs this file inside each fresh
sanity/units virtual environment with pip-style arguments (``pip==24.2`` ...): install the pip that
ships with Python (ensurepip), then let it install the requested versions from the package index.
"""

import ensurepip
import os
import subprocess
import sys

# get-pip.py understands these two flags; pip itself does not.
GET_PIP_ONLY = ("--no-setuptools", "--no-wheel")

ensurepip.bootstrap(upgrade=True)
# ensurepip points PIP_CONFIG_FILE at /dev/null for itself; the real install must see the
# machine's pip configuration (index, CA bundle).
os.environ.pop("PIP_CONFIG_FILE", None)
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--quiet"] + [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]))
