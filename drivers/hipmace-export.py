#!/usr/bin/env python3
"""hipmace-export: convert a trained HIP-MACE model (PyTorch, hip-mace) into the safetensors file
that the hipmace engine reads (format "hip-mace-safetensors-1", see docs/FORMATS.md).

Run it inside the Python environment used for training (it needs torch, numpy and the hip-mace
package to unpickle the model):

    python3 hipmace-export.py trained.model model.safetensors
    python3 hipmace-export.py checkpoint.pt model.safetensors --config config.json
    python3 hipmace-export.py trained.model model.safetensors --set interaction_cls=RealAgnosticResidualInteractionBlock

Inputs: a whole model saved with torch.save (a ScaleShiftMACE object), a checkpoint dict holding
one ({"model": module}), or a state_dict (bare, or {"model"/"state_dict"/"model_state_dict": ...})
plus the constructor arguments from --config / --set / the checkpoint's "config" entry.
Every state_dict tensor is written: floating tensors as float64, integer and boolean ones as int64.
Constructor arguments are read from the model object; an argument that cannot be recovered is an
error naming the --set flag that supplies it (nothing is guessed).

torch.load unpickles arbitrary code: only export files you trust.

The file writer and the config assembly are plain functions (no torch) so they can be tested with
numpy arrays and simple stand-in objects.
"""
import argparse
import json
import os
import re
import struct
import sys

import numpy as np

FORMAT = "hip-mace-safetensors-1"
EXPORTER = "hipmace-export 1"

# Constructor arguments of ScaleShiftMACE that the config must carry (MODEL_FORMAT.md 1.2), in order.
CONFIG_KEYS = [
    "r_max", "num_bessel", "num_polynomial_cutoff", "max_ell", "interaction_cls", "interaction_cls_first",
    "num_interactions", "num_elements", "hidden_irreps", "MLP_irreps", "atomic_energies", "avg_num_neighbors",
    "atomic_numbers", "correlation", "gate", "pair_repulsion", "apply_cutoff", "use_reduced_cg", "use_so3",
    "use_agnostic_product", "use_last_readout_only", "use_embedding_readout", "distance_transform", "edge_irreps",
    "radial_MLP", "radial_type", "heads", "embedding_specs", "readout_cls", "atomic_inter_scale",
    "atomic_inter_shift", "hip", "hessian_feature_dim", "hessian_use_last_layer_only", "hessian_r_max",
    "hessian_edge_lmax", "hessian_use_radial", "hessian_aggregation", "hessian_message_passing_layer",
    "hessian_separate_radial_network", "hessian_radial_MLP", "hessian_use_edge_gates", "num_interactions_hessian",
    "hessian_diag_norm", "hessian_off_diag_norm", "model_class",
]

# Keys whose value is stored in a tensor: the tensor is what the engine computes with, so it wins,
# and a user-supplied value that disagrees is an error rather than a silent override.
TENSOR_KEYS = ["r_max", "num_interactions", "atomic_numbers", "num_elements", "hessian_r_max", "atomic_energies",
               "atomic_inter_scale", "atomic_inter_shift", "num_bessel", "num_polynomial_cutoff"]


class ExportError(Exception):
    """A problem with the input model or the options; the message says what to do."""


class Missing(Exception):
    """A constructor argument that this path of the model object does not reveal."""


# ---------------------------------------------------------------------------------------------
# tensors


def to_array(value, name="tensor"):
    """A torch tensor, numpy array or number as a little-endian float64 or int64 numpy array.

    Floating types (float16/32/64, bfloat16) become float64; integer and boolean types int64."""
    if hasattr(value, "detach") and hasattr(value, "is_floating_point"):  # torch.Tensor, without importing torch
        t = value.detach().cpu()
        if t.is_complex():
            raise ExportError(f"tensor '{name}' is complex; the format has float64 and int64 only")
        # numpy has no bfloat16: widen inside torch first
        t = t.double() if t.is_floating_point() else t.long()
        arr = t.numpy()
    else:
        arr = np.asarray(value)
    kind = arr.dtype.kind
    if kind == "f":
        out = arr.astype("<f8", order="C")
    elif kind in "iub":
        if kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
            raise ExportError(f"tensor '{name}' has unsigned values beyond int64")
        out = arr.astype("<i8", order="C")
    else:
        raise ExportError(f"tensor '{name}' has dtype {arr.dtype}; expected a floating, integer or boolean type")
    # (np.ascontiguousarray would turn a 0-d scalar into shape [1])
    return out


def convert_state_dict(state_dict):
    """name -> float64/int64 array for every entry, in sorted-name order."""
    out = {}
    for name in sorted(state_dict):
        if not isinstance(name, str) or not name:
            raise ExportError(f"state_dict key {name!r} is not a non-empty string")
        if name == "__metadata__":
            raise ExportError("state_dict has a tensor named '__metadata__', which the format reserves")
        arr = to_array(state_dict[name], name)
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise ExportError(f"tensor '{name}' has non-finite values (NaN or Inf): the model is broken")
        out[name] = arr
    return out


def safetensors_header(tensors, metadata):
    """(header bytes incl. the 8-byte length, total data size) for tensors written in sorted-name order."""
    header = {}
    offset = 0
    for name in sorted(tensors):
        arr = tensors[name]
        if arr.dtype == np.dtype("<f8"):
            dtype = "F64"
        elif arr.dtype == np.dtype("<i8"):
            dtype = "I64"
        else:
            raise ExportError(f"tensor '{name}' has dtype {arr.dtype}; convert it with to_array first")
        header[name] = {"dtype": dtype, "shape": [int(s) for s in arr.shape], "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    meta = {}
    for key, val in (metadata or {}).items():
        if not isinstance(key, str) or not isinstance(val, str):
            raise ExportError(f"metadata entry {key!r}: keys and values must be strings")
        meta[key] = val
    header["__metadata__"] = meta
    text = json.dumps(header, ensure_ascii=False).encode("utf-8")
    # padding keeps the data section 8-byte aligned: 8 (length) + header is a multiple of 8
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text, offset


def write_safetensors(path, tensors, metadata):
    """Writes the file atomically (temporary name, then rename). tensors: name -> <f8/<i8 array."""
    head, _ = safetensors_header(tensors, metadata)
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(head)
            for name in sorted(tensors):
                f.write(tensors[name].tobytes(order="C"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


# ---------------------------------------------------------------------------------------------
# config


def plain(value):
    """JSON-ready form of an attribute: tensors/arrays to lists, irreps to strings, classes to names."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if type(value).__name__ in ("Irreps", "Irrep", "_MulIr"):  # e3nn irreps are tuples: keep their string form
        return str(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, np.ndarray) or hasattr(value, "detach"):
        return plain(to_array(value).tolist())
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, type):
        return value.__name__
    if callable(value) and hasattr(value, "__name__"):
        return value.__name__
    return str(value)


def normalise_user_value(value):
    """Config values written by other tools: "<class 'mace.modules.blocks.X'>" -> "X", "<function silu ...>" -> "silu"."""
    value = plain(value)
    if isinstance(value, str):
        m = re.fullmatch(r"<class '(?:[\w.]*\.)?(\w+)'>", value)
        if m:
            return m.group(1)
        m = re.fullmatch(r"<(?:function|built-in function) (\w+)(?: at 0x[0-9a-fA-F]+)?>", value)
        if m:
            return m.group(1)
    return value


def _attr(obj, path):
    cur = obj
    for part in path.split("."):
        if cur is None:
            raise Missing(f"no model object to read '{path}' from")
        if re.fullmatch(r"-?\d+", part):
            try:
                cur = cur[int(part)]
            except (IndexError, KeyError, TypeError):
                raise Missing(f"the model has no '{path}'") from None
        else:
            if not hasattr(cur, part):
                raise Missing(f"the model has no attribute '{path}'")
            cur = getattr(cur, part)
    return cur


def _first(model, *paths):
    reasons = []
    for p in paths:
        try:
            return _attr(model, p)
        except Missing as e:
            reasons.append(str(e))
    raise Missing("; ".join(reasons))


def _tensor(tensors, name):
    if name not in tensors:
        raise Missing(f"the state_dict has no tensor '{name}'")
    return tensors[name]


def parse_irreps(text):
    """'8x0e+8x1o' -> [(8, 0, 'e'), (8, 1, 'o')]; a bare '0e' has multiplicity 1."""
    out = []
    for block in str(text).replace(" ", "").split("+"):
        if not block:
            continue
        m = re.fullmatch(r"(?:(\d+)x)?(\d+)([eoy])", block)
        if not m:
            raise ExportError(f"cannot parse irreps '{text}'")
        out.append((int(m.group(1) or 1), int(m.group(2)), m.group(3)))
    return out


def _sh_lmax(model, path):
    try:
        return int(_attr(model, path + "._lmax"))
    except Missing:
        return max(l for _, l, _ in parse_irreps(_attr(model, path + ".irreps_out")))


def _mlp_hidden(model, tensors, path):
    """Hidden widths of an e3nn FullyConnectedNet: hs[1:-1], or from the layer weight shapes."""
    try:
        return [int(h) for h in _attr(model, path + ".hs")][1:-1]
    except Missing:
        shapes = []
        while f"{path}.layer{len(shapes)}.weight" in tensors:
            shapes.append(tensors[f"{path}.layer{len(shapes)}.weight"].shape)
        if not shapes:
            raise Missing(f"neither '{path}.hs' nor the tensors '{path}.layer*.weight' exist") from None
        return [int(s[1]) for s in shapes[:-1]]


def _correlation(model, tensors, nlayers):
    corr = []
    for t in range(nlayers):
        prefix = f"products.{t}.symmetric_contractions.contractions.0.U_matrix_"
        nus = [int(k[len(prefix):]) for k in tensors if k.startswith(prefix) and k[len(prefix):].isdigit()]
        if nus:
            corr.append(max(nus))
        else:
            corr.append(int(_attr(model, f"products.{t}.symmetric_contractions.contractions.0.correlation")))
    return corr[0] if len(set(corr)) == 1 else corr


def _gate(model):
    acts = _first(model, "readouts.-1.non_linearity.acts", "readouts.-1.non_linearity._modules.acts")
    act = acts[0]
    f = getattr(act, "f", act)  # e3nn wraps the function in normalize2mom(f)
    if not hasattr(f, "__name__"):
        raise Missing("the last readout's activation has no function name")
    return f.__name__


def _mlp_irreps(model):
    mlp = parse_irreps(_attr(model, "readouts.-1.hidden_irreps"))
    heads = len(plain(_attr(model, "heads"))) if hasattr(model, "heads") else 1
    # the readout holds (len(heads) * MLP_irreps).simplify(): one head's share of each block
    if any(mul % heads for mul, _, _ in mlp):
        raise Missing(f"readout irreps {mlp} do not divide among {heads} heads")
    return "+".join(f"{mul // heads}x{l}{p}" for mul, l, p in mlp)


def _distance_transform(model):
    radial = _attr(model, "radial_embedding")
    if not hasattr(radial, "distance_transform"):
        return "None"
    name = type(radial.distance_transform).__name__
    return {"AgnesiTransform": "Agnesi", "SoftTransform": "Soft"}.get(name, name)


def _radial_type(model, tensors):
    try:
        name = type(_attr(model, "radial_embedding.bessel_fn")).__name__
        return {"BesselBasis": "bessel", "GaussianBasis": "gaussian", "ChebychevBasis": "chebyshev"}.get(name, name)
    except Missing:
        if "radial_embedding.bessel_fn.bessel_weights" in tensors:
            return "bessel"
        raise


def _hessian_feature_dim(model, tensors):
    try:
        return parse_irreps(_attr(model, "hessian_proj_nodes_layerwise.irreps_out"))[0][0]
    except Missing:
        # hessian_proj_nodes: o3.Linear(F x0e + F x1e + F x2e -> 1x0e + 1x1e + 1x2e) has 3F weights
        return int(_tensor(tensors, "hessian_proj_nodes.weight").size // 3)


def _recoverers(model, tensors):
    """key -> zero-argument function returning the value or raising Missing."""
    def scalar(name, conv):
        return lambda: conv(_tensor(tensors, name).reshape(-1)[0])

    def attr(path, conv=plain):
        return lambda: conv(_attr(model, path))

    def optional_attr(name):
        # set by the constructor only when given (e.g. embedding_specs): absent means None
        def get():
            if model is None:
                raise Missing(f"no model object to read '{name}' from")
            return plain(getattr(model, name, None))
        return get

    def nlayers():
        return int(_tensor(tensors, "num_interactions").reshape(-1)[0])

    def interaction_cls():
        if nlayers() < 2:
            raise Missing("the model has a single interaction layer, so the class of later layers is not in it")
        return type(_attr(model, "interactions.-1")).__name__

    def mlp_of(block):
        """Hidden widths of the radial MLP of an interaction block: its attribute, else from its weights."""
        try:
            return [int(h) for h in _attr(model, block + ".radial_MLP")]
        except Missing:
            return _mlp_hidden(model, tensors, block + ".conv_tp_weights")

    def hessian_radial_mlp():
        separate = rec["hessian_separate_radial_network"]()
        if not separate:
            return None  # unused by the model (the main radial MLP is shared)
        return mlp_of("hessian_interaction")

    def separate():
        try:
            return bool(_attr(model, "hessian_separate_radial_network"))
        except Missing:
            return any(k.startswith("hessian_radial_embedding.") for k in tensors)

    def aggregation():
        try:
            return str(_attr(model, "hessian_aggregation"))
        except Missing:
            if "hessian_layer_weights_param" in tensors:
                return "learnable"
            raise

    def atomic_energies():
        e = _tensor(tensors, "atomic_energies_fn.atomic_energies")
        return plain(np.atleast_2d(e))

    def vector(name):
        return lambda: plain(np.atleast_1d(_tensor(tensors, name)))

    def radial_mlp():
        return mlp_of("interactions.0")

    def num_bessel():
        try:
            return int(_tensor(tensors, "radial_embedding.bessel_fn.bessel_weights").size)
        except Missing:
            return int(_attr(model, "radial_embedding.out_dim"))

    def hip():
        try:
            return bool(_attr(model, "hip"))
        except Missing:
            return "hessian_proj_nodes.weight" in tensors

    def num_interactions_hessian():
        try:
            return int(_attr(model, "num_interactions_hessian"))
        except Missing:
            # the extra Hessian layers are the hessian_interactions.k.* tensors (none: 0)
            return len({k.split(".")[1] for k in tensors if k.startswith("hessian_interactions.")})

    def model_class():
        if model is None:
            raise Missing("a bare state_dict does not name its model class")
        return type(model).__name__

    def edge_irreps():
        v = _attr(model, "edge_irreps")
        return None if v is None else str(v)

    rec = {
        "r_max": scalar("r_max", float),
        "num_bessel": num_bessel,
        "num_polynomial_cutoff": scalar("radial_embedding.cutoff_fn.p", int),
        "max_ell": lambda: _sh_lmax(model, "spherical_harmonics"),
        "interaction_cls": interaction_cls,
        "interaction_cls_first": lambda: type(_attr(model, "interactions.0")).__name__,
        "num_interactions": nlayers,
        "num_elements": lambda: int(_tensor(tensors, "atomic_numbers").size),
        "hidden_irreps": lambda: str(_first(model, "products.0.linear.irreps_out", "interactions.0.hidden_irreps")),
        "MLP_irreps": lambda: _mlp_irreps(model),
        "atomic_energies": atomic_energies,
        "avg_num_neighbors": attr("interactions.0.avg_num_neighbors", float),
        "atomic_numbers": vector("atomic_numbers"),
        "correlation": lambda: _correlation(model, tensors, nlayers()),
        "gate": lambda: _gate(model),
        "pair_repulsion": lambda: bool(getattr(model, "pair_repulsion", False)) or hasattr(model, "pair_repulsion_fn")
        or any(k.startswith("pair_repulsion_fn.") for k in tensors),
        "apply_cutoff": attr("apply_cutoff", bool),
        "use_reduced_cg": attr("use_reduced_cg", bool),
        "use_so3": attr("use_so3", bool),
        "use_agnostic_product": attr("use_agnostic_product", bool),
        "use_last_readout_only": attr("use_last_readout_only", bool),
        "use_embedding_readout": lambda: hasattr(model, "embedding_readout") or any(k.startswith("embedding_readout.") for k in tensors),
        "distance_transform": lambda: _distance_transform(model),
        "edge_irreps": edge_irreps,
        "radial_MLP": radial_mlp,
        "radial_type": lambda: _radial_type(model, tensors),
        "heads": attr("heads"),
        "embedding_specs": optional_attr("embedding_specs"),
        "readout_cls": lambda: type(_attr(model, "readouts.-1")).__name__,
        "atomic_inter_scale": vector("scale_shift.scale"),
        "atomic_inter_shift": vector("scale_shift.shift"),
        "hip": hip,
        "hessian_feature_dim": lambda: _hessian_feature_dim(model, tensors),
        "hessian_use_last_layer_only": attr("hessian_use_last_layer_only", bool),
        "hessian_r_max": scalar("hessian_r_max", float),
        "hessian_edge_lmax": lambda: _sh_lmax(model, "hessian_spherical_harmonics"),
        "hessian_use_radial": attr("hessian_use_radial", bool),
        "hessian_aggregation": aggregation,
        "hessian_message_passing_layer": attr("hessian_message_passing_layer"),
        "hessian_separate_radial_network": separate,
        "hessian_radial_MLP": hessian_radial_mlp,
        "hessian_use_edge_gates": attr("hessian_use_edge_gates", bool),
        "num_interactions_hessian": num_interactions_hessian,
        "hessian_diag_norm": attr("hessian_diag_norm", bool),
        "hessian_off_diag_norm": attr("hessian_off_diag_norm", bool),
        "model_class": model_class,
    }
    assert set(rec) == set(CONFIG_KEYS)
    return rec


def _same(a, b):
    """Equal up to float32 round-off (a model trained in float32 keeps float32 buffers)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))
    return a == b


def assemble_config(model, tensors, base=None, overrides=None):
    """The config JSON object: every ScaleShiftMACE constructor argument.

    model: the model object (torch module or any object with the same attributes), or None for a
    bare state_dict; tensors: converted state_dict (name -> array); base: constructor arguments
    from a file or the checkpoint; overrides: --set values (win over everything but tensors)."""
    given = {}
    for src in (base or {}), (overrides or {}):
        for k, v in src.items():
            given[k] = normalise_user_value(v)
    rec = _recoverers(model, tensors)
    config, missing = {}, []
    for key in CONFIG_KEYS:
        found = None
        try:
            found = (rec[key](),)
        except Missing as e:
            reason = str(e)
        if key in TENSOR_KEYS and found is not None and key in given and not _same(found[0], given[key]):
            raise ExportError(f"{key} = {json.dumps(given[key])} from the config or --set contradicts the model's tensors ({json.dumps(found[0])})")
        if key in given and key not in TENSOR_KEYS:
            config[key] = given[key]
        elif found is not None:
            config[key] = found[0]
        elif key in given:
            config[key] = given[key]
        else:
            missing.append(f"  {key}: {reason}; pass --set {key}=VALUE")
    if missing:
        raise ExportError("cannot recover these constructor arguments from the model:\n" + "\n".join(missing))
    if not config["hip"]:
        raise ExportError("the model has hip=False (no HIP Hessian head); hipmace evaluates HIP-MACE models only")
    if config["num_elements"] != len(config["atomic_numbers"]):
        raise ExportError(f"num_elements {config['num_elements']} differs from the {len(config['atomic_numbers'])} atomic numbers")
    json.dumps(config)  # anything that is not JSON would fail here, before a file is written
    return config


def export(model, state_dict, out_path, base=None, overrides=None, source=None):
    """Converts and writes; returns the config. model may be None (bare state_dict)."""
    tensors = convert_state_dict(state_dict)
    config = assemble_config(model, tensors, base, overrides)
    metadata = {"format": FORMAT, "config": json.dumps(config), "exporter": EXPORTER}
    if source:
        metadata["source"] = os.path.basename(source)
    write_safetensors(out_path, tensors, metadata)
    return config


# ---------------------------------------------------------------------------------------------
# loading (needs torch)


def _is_module(obj):
    return hasattr(obj, "state_dict") and callable(obj.state_dict) and hasattr(obj, "named_parameters")


def _is_tensor_dict(obj):
    return isinstance(obj, dict) and obj and all(hasattr(v, "shape") for v in obj.values())


def load_torch(path):
    """(model or None, state_dict, base config or None) from a torch file."""
    try:
        import torch
    except ImportError:
        raise ExportError("torch is not importable: run the exporter in the environment the model was trained in") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except TypeError:  # torch < 1.13 has no weights_only
        obj = torch.load(path, map_location="cpu")
    except RuntimeError as e:
        if "TorchScript" not in str(e) and "jit" not in str(e):
            raise
        obj = torch.jit.load(path, map_location="cpu")
    base = None
    if isinstance(obj, dict) and not _is_tensor_dict(obj):
        for key in ("config", "hyperparameters", "model_config"):
            if isinstance(obj.get(key), dict):
                base = obj[key]
        for key in ("model", "state_dict", "model_state_dict"):
            if key in obj:
                obj = obj[key]
                break
        else:
            raise ExportError(f"{path}: a dict without 'model', 'state_dict' or 'model_state_dict' (keys: {sorted(obj)[:10]})")
    if _is_module(obj):
        return obj, obj.state_dict(), base
    if _is_tensor_dict(obj):
        return None, obj, base
    raise ExportError(f"{path}: holds a {type(obj).__name__}, not a model, a checkpoint or a state_dict")


def _parse_set(items):
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ExportError(f"--set {item}: expected KEY=VALUE")
        key, text = item.split("=", 1)
        key = key.strip()
        if key not in CONFIG_KEYS:
            raise ExportError(f"--set {key}: not a constructor argument (known: {', '.join(CONFIG_KEYS)})")
        try:
            out[key] = json.loads(text)
        except ValueError:
            out[key] = text  # bare words: class names, "silu", irreps strings
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="Convert a trained HIP-MACE (PyTorch) model to hipmace's safetensors format.")
    ap.add_argument("model", help="model file saved by hip-mace (torch.save of a ScaleShiftMACE, a checkpoint or a state_dict)")
    ap.add_argument("output", help="output .safetensors file")
    ap.add_argument("--config", help="JSON file with ScaleShiftMACE constructor arguments (needed for a bare state_dict)")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE", help="set one constructor argument (VALUE is JSON or a bare word); repeatable")
    args = ap.parse_args(argv)
    try:
        base = None
        if args.config:
            with open(args.config, encoding="utf-8") as f:
                base = json.load(f)
            if not isinstance(base, dict):
                raise ExportError(f"{args.config}: expected a JSON object")
        overrides = _parse_set(args.set)
        model, state_dict, ckpt_config = load_torch(args.model)
        if ckpt_config and base:
            ckpt_config = dict(ckpt_config, **base)
        config = export(model, state_dict, args.output, ckpt_config or base, overrides, source=args.model)
    except (ExportError, OSError) as e:
        print(f"hipmace-export: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}: {len(state_dict)} tensors, hidden irreps {config['hidden_irreps']}, "
          f"{config['num_interactions']} layers, elements {config['atomic_numbers']}")
    print(f"check it with: hipmace -model {args.output} -model_info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
