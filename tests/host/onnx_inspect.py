"""What the export tests read of an ONNX file, through python3-onnx (Debian's 1.12): the checker (full_check) and
strict shape inference must pass; then one line per node and per initializer, for the C++ test to parse:
  node <op_type> <name> <input,...> <output,...> axis=<axis or ->
  init <name> <dtype> <numel> <min> <max> <distinct count> <first 8 distinct values, sorted>
usage: /usr/bin/python3 onnx_inspect.py MODEL.onnx"""
import sys

import numpy as np
import onnx
from onnx import numpy_helper

model = onnx.load(sys.argv[1])
onnx.checker.check_model(model, full_check=True)
onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
print("checked opset", model.opset_import[0].version, "ir", model.ir_version)
for n in model.graph.node:
    axis = next((a.i for a in n.attribute if a.name == "axis"), "-")
    print("node", n.op_type, n.name, ",".join(n.input), ",".join(n.output), f"axis={axis}")
for t in model.graph.initializer:
    a = numpy_helper.to_array(t)
    flat = a.reshape(-1)
    distinct = np.unique(flat)
    values = " ".join(repr(float(v)) for v in distinct[:8])
    print("init", t.name, a.dtype, flat.size, repr(float(flat.min())), repr(float(flat.max())), distinct.size, values)
