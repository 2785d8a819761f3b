# lit configuration of kiln's IR text tests (tests/lit). Run through ctest
# (`ctest -R lit`) or directly: python3 lit.py -v BUILD/tests/lit
import os
import re
import shutil

import lit.formats

config.name = "kiln"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".kir", ".test"]
config.excludes = ["Inputs", "CMakeLists.txt", "lit.cfg.py",
                   "lit.site.cfg.py.in"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = config.kiln_obj_root

# Whole words only, so that a path or an option containing "kiln" or "not"
# is left alone.
def tool(name, path):
    return (r"(?<![\w/.%-])" + re.escape(name) + r"(?![\w/.-])", path)

config.substitutions.append(
    ("%expect-exit1", f"{config.python} {config.test_source_root}/expect_exit1.py"))
config.substitutions.append(("%python", config.python))
# %numpy: a python3 that can import numpy (tests using it say REQUIRES: numpy).
if config.numpy_python:
    config.available_features.add("numpy")
    config.substitutions.append(("%numpy", config.numpy_python))
# kiln_bench is built beside kiln unless the benchmarks are off (asan preset).
if os.path.exists(os.path.join(os.path.dirname(os.path.dirname(config.kiln_bin)),
                               "bench", "kiln_bench")):
    config.available_features.add("kiln_bench")
# Graphviz's `dot` renders `kiln ir --dot` (tests using it say REQUIRES: dot;
# tools/install-deps.sh installs graphviz).
if shutil.which("dot"):
    config.available_features.add("dot")
# The emulated CUDA device (tests/cudaemu/README.md), when it was built:
# %cudaemu-env runs a command with kiln's CUDA libraries replaced by it
# (tests using it say REQUIRES: cudaemu).
_build_dir = os.path.dirname(os.path.dirname(config.kiln_bin))
_emu = {n: os.path.join(_build_dir, "tests", "cudaemu", f"libkiln_cudaemu_{n}.so")
        for n in ("driver", "nvrtc", "cublas")}
if all(os.path.exists(p) for p in _emu.values()):
    config.available_features.add("cudaemu")
    config.substitutions.append(
        ("%cudaemu-env",
         f"env KILN_CUDA_DRIVER={_emu['driver']} KILN_NVRTC={_emu['nvrtc']} "
         f"KILN_CUBLAS={_emu['cublas']} "
         f"KILN_CUDAEMU_CACHE={os.path.join(_build_dir, 'cudaemu-cache')} "
         "KILN_KERNEL_CACHE=0"))
config.substitutions.append(("%kiln_src", config.kiln_src_root))
config.substitutions.append(tool("kiln", config.kiln_bin))
config.substitutions.append(tool("FileCheck", config.filecheck))
config.substitutions.append(tool("not", config.not_tool))
