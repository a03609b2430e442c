"""python-tuf interop client for the private repository tests.

Usage: ngclient.py METADATA_DIR BASE_URL TARGET_DIR TARGET_NAME

METADATA_DIR holds the trusted root.json (and, on later runs, the metadata
python-tuf cached): the client starts from it (bootstrap=None). Prints one JSON line: {"ok": true, "path", "length",
"sha256", "versions"} or {"ok": false, "error"} (exit status 1).
"""

import json
import os
import sys

from tuf.api.metadata import Metadata
from tuf.ngclient import Updater


def main() -> int:
    metadata_dir, base_url, target_dir, name = sys.argv[1:5]
    try:
        updater = Updater(
            metadata_dir=metadata_dir,
            metadata_base_url=base_url,
            target_base_url=base_url + "targets/",
            target_dir=target_dir,
            bootstrap=None,  # the trusted (cached) METADATA_DIR/root.json
        )
        updater.refresh()
        info = updater.get_targetinfo(name)
        if info is None:
            raise LookupError(f"target {name!r} not listed")
        path = updater.download_target(info)
        # The versions the client now trusts, from the metadata it cached.
        versions = {
            role: Metadata.from_file(
                os.path.join(metadata_dir, f"{role}.json")
            ).signed.version
            for role in ("root", "timestamp", "snapshot", "targets")
        }
        print(json.dumps({
            "ok": True,
            "path": path,
            "length": info.length,
            "sha256": info.hashes["sha256"],
            "versions": versions,
        }))
        return 0
    except Exception as e:  # reported to the test, which decides
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))
        return 1


if __name__ == "__main__":
    sys.exit(main())
