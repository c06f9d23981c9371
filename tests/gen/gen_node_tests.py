#!/usr/bin/python3
"""Generate the ONNX node conformance tests (Debian python3-onnx 1.12) into OUT.

OUT defaults to $CONVOY_TEST_DATA/node. Writes OUT/test_*/model.onnx +
test_data_set_*/{input,output}_*.pb (TensorProto), then OUT/.stamp (sha256 of this script)
once everything is in place (generated into a temporary sibling directory, then renamed).

onnx 1.12's generator still uses numpy aliases removed in numpy 1.24 (np.float, np.int, ...):
they are restored to the builtins before the onnx test cases are imported. The generator also
writes 'real'/'simple'/'pytorch-*' model cases; only 'node' is kept.
"""
import argparse
import builtins
import hashlib
import os
import shutil
import sys
import tempfile
import time

import numpy as np

for alias in ("float", "int", "bool", "object", "complex", "str"):
    if alias not in np.__dict__:
        setattr(np, alias, getattr(builtins, alias))

from onnx.backend.test import cmd_tools  # noqa: E402  (needs the aliases above)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--out", default=os.path.join(os.environ.get(
        "CONVOY_TEST_DATA", os.path.expanduser("~/.cache/convoy-testdata")), "node"))
    args = ap.parse_args()

    t0 = time.time()
    final = os.path.abspath(args.out)
    os.makedirs(os.path.dirname(final), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(final), prefix=".node-tmp-") as tmp:
        sys.argv = ["backend-test-tools", "generate-data", "-o", tmp]
        cmd_tools.main()
        generated = os.path.join(tmp, "node")
        cases = [d for d in os.listdir(generated) if d.startswith("test_")]
        if len(cases) < 500:
            sys.exit(f"gen_node_tests: only {len(cases)} node cases generated; expected ~900")
        if os.path.exists(final):
            shutil.rmtree(final)
        os.replace(generated, final)

    with open(__file__, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    with open(os.path.join(final, ".stamp"), "w") as f:
        f.write(digest + "\n")
    print(f"gen_node_tests: {len(cases)} node cases in {time.time() - t0:.1f} s -> {final}")


if __name__ == "__main__":
    main()
