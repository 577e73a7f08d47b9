"""Local machine images: build a test image, open one from disk, boot it.

The plugin's ``--ami-image`` target and the project's integration tests use
these modules to check an image on this machine, in a container, as if it had
been launched on EC2:

- :mod:`.build` builds a well-prepared Debian 12 root tree and caches it;
- :mod:`.source` turns a directory, tar archive or raw disk image into a root
  tree, read-only;
- :mod:`.boot` boots a root tree under ``systemd-nspawn`` on an overlay, with
  its own network namespace, and injects a launch key through cloud-init.

Everything here needs root and ``systemd-nspawn``.
"""

from __future__ import annotations
