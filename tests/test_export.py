#!/usr/bin/env python3
"""drivers/hipmace-export.py without torch: the safetensors writer, dtype conversion and config
assembly on a stand-in model object built from the golden small model, checked with an independent
reader (spec_forward_numpy.load) and by the C engine (hipmace -model_info, energies)."""
import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.environ.get("HIPMACE_GOLDEN_DIR", os.path.join(HERE, "..", "..", "shared", "golden"))
HIPMACE = os.environ.get("HIPMACE_BIN", os.path.join(HERE, "..", "build", "drivers", "hipmace"))
SMALL = os.path.join(GOLDEN, "model_small.safetensors")


def load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


exporter = load_module("hipmace_export", os.path.join(HERE, "..", "drivers", "hipmace-export.py"))
# the reference NumPy implementation's loader is the independent reader; it reads its
# primitives from GOLDEN_DIR at import
os.environ.setdefault("GOLDEN_DIR", GOLDEN)
spec = load_module("spec_forward_numpy", os.path.join(GOLDEN, "spec_forward_numpy.py"))


def raw_file(path):
    """(header dict incl. __metadata__, header length, data bytes) parsed by hand."""
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    return json.loads(blob[8:8 + n]), n, blob[8 + n:]


def tensor_bytes(header, data, name):
    a, b = header[name]["data_offsets"]
    return data[a:b]


# ---- a stand-in for a ScaleShiftMACE object: the attributes hip-mace sets, no torch ----


class Obj:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def named(cls_name):
    return type(cls_name, (Obj,), {})


class Irreps(tuple):
    """e3nn's Irreps is a tuple subclass whose str() is the irreps string."""

    def __new__(cls, text):
        obj = super().__new__(cls, tuple(exporter.parse_irreps(text)))
        obj.text = text
        return obj

    def __str__(self):
        return self.text


def silu(x):
    return x / (1 + np.exp(-x))


def fake_model(cfg, tensors):
    model = named("ScaleShiftMACE")()
    hidden = cfg["hidden_irreps"]
    first = named(cfg["interaction_cls_first"])(avg_num_neighbors=cfg["avg_num_neighbors"], radial_MLP=list(cfg["radial_MLP"]), hidden_irreps=Irreps(hidden))
    rest = [named(cfg["interaction_cls"])(avg_num_neighbors=cfg["avg_num_neighbors"], radial_MLP=list(cfg["radial_MLP"]), hidden_irreps=Irreps(hidden))
            for _ in range(cfg["num_interactions"] - 1)]
    model.interactions = [first] + rest
    model.products = [Obj(linear=Obj(irreps_out=Irreps(hidden))) for _ in range(cfg["num_interactions"])]
    model.readouts = [named("LinearReadoutBlock")() for _ in range(cfg["num_interactions"] - 1)]
    model.readouts.append(named(cfg["readout_cls"])(hidden_irreps=Irreps(cfg["MLP_irreps"]), non_linearity=Obj(acts=[Obj(f=silu)])))
    model.spherical_harmonics = Obj(irreps_out=Irreps("+".join(f"1x{l}{'eo'[l % 2]}" for l in range(cfg["max_ell"] + 1))))
    model.hessian_spherical_harmonics = Obj(_lmax=cfg["hessian_edge_lmax"])
    model.radial_embedding = Obj(bessel_fn=named("BesselBasis")(), out_dim=cfg["num_bessel"])
    model.heads = list(cfg["heads"])
    for key in ("apply_cutoff", "use_reduced_cg", "use_so3", "use_agnostic_product", "use_last_readout_only", "edge_irreps", "hip",
                "hessian_use_last_layer_only", "hessian_use_radial", "hessian_aggregation", "hessian_message_passing_layer",
                "hessian_separate_radial_network", "hessian_use_edge_gates", "num_interactions_hessian", "hessian_diag_norm",
                "hessian_off_diag_norm"):
        setattr(model, key, cfg[key])
    F = cfg["hessian_feature_dim"]
    model.hessian_proj_nodes_layerwise = Obj(irreps_out=Irreps(f"{F}x0e+{F}x1e+{F}x2e"))
    model.hessian_interaction = Obj(radial_MLP=cfg["hessian_radial_MLP"] or cfg["radial_MLP"])
    # the dtypes torch keeps: cutoff p is int32, the *_zeroed flags are bool
    sd = {}
    for name, arr in tensors.items():
        if name.endswith("cutoff_fn.p"):
            sd[name] = arr.astype(np.int32)
        elif name.endswith("_zeroed"):
            sd[name] = arr.astype(bool)
        else:
            sd[name] = arr
    model.state_dict = lambda: sd
    return model


class FakeTorchTensor:
    """Just the torch.Tensor methods the exporter uses (detach/cpu/is_*/double/long/numpy)."""

    def __init__(self, arr):
        self.arr = np.asarray(arr)

    def detach(self):
        return self

    def cpu(self):
        return self

    def is_complex(self):
        return self.arr.dtype.kind == "c"

    def is_floating_point(self):
        return self.arr.dtype.kind == "f"

    def double(self):
        return FakeTorchTensor(self.arr.astype(np.float64))

    def long(self):
        return FakeTorchTensor(self.arr.astype(np.int64))

    def numpy(self):
        return self.arr

    @property
    def shape(self):
        return self.arr.shape


def run_hipmace(*args):
    return subprocess.run([HIPMACE, *args], capture_output=True, text=True, timeout=300)


def summary_energy(model, structure, tmp, tag):
    summary = os.path.join(tmp, f"summary_{tag}.json")
    r = run_hipmace("-structure", structure, "-model", model, "-modes", "none", "-summary", summary)
    if r.returncode != 0:
        raise AssertionError(f"hipmace failed on {model}:\n{r.stdout}\n{r.stderr}")
    with open(summary, encoding="utf-8") as f:
        return json.load(f)["energy"]


class ExportTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hm_test_export_")
        cls.golden_tensors, cls.golden_meta = spec.load(SMALL)
        cls.golden_cfg = json.loads(cls.golden_meta["config"])
        cls.golden_header, cls.golden_n, cls.golden_data = raw_file(SMALL)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def check_layout(self, path):
        """Header padded to a multiple of 8, tensors in sorted order, contiguous, nothing after."""
        header, n, data = raw_file(path)
        self.assertEqual(n % 8, 0)
        self.assertEqual(header["__metadata__"]["format"], "hip-mace-safetensors-1")
        names = [k for k in header if k != "__metadata__"]
        self.assertEqual(names, sorted(names))
        end = 0
        for k in names:
            a, b = header[k]["data_offsets"]
            self.assertEqual(a, end, k)
            self.assertEqual(b - a, 8 * int(np.prod(header[k]["shape"], dtype=np.int64)), k)
            self.assertEqual((8 + n + a) % 8, 0, k)  # every tensor starts 8-byte aligned in the file
            end = b
        self.assertEqual(end, len(data))
        return header, data

    # -- dtype conversion and writer --

    def test_to_array_dtypes(self):
        f32 = np.array([1.5, 0.1, -2.25], dtype=np.float32)
        out = exporter.to_array(f32)
        self.assertEqual(out.dtype, np.dtype("<f8"))
        self.assertTrue(np.array_equal(out, f32.astype(np.float64)))  # widening is exact
        self.assertEqual(exporter.to_array(np.float16(0.5)).dtype, np.dtype("<f8"))
        self.assertEqual(exporter.to_array(np.array([1, 2], dtype=np.int32)).dtype, np.dtype("<i8"))
        self.assertEqual(exporter.to_array(np.array([3], dtype=np.uint8)).tolist(), [3])
        self.assertEqual(exporter.to_array(np.array([True, False])).tolist(), [1, 0])
        self.assertEqual(exporter.to_array(np.array([[1.0, 2.0]], dtype=">f8")).dtype, np.dtype("<f8"))  # byte order fixed
        fortran = np.asfortranarray(np.arange(6.0).reshape(2, 3))
        self.assertEqual(exporter.to_array(fortran).tobytes(), np.arange(6.0).tobytes())  # C order on disk
        t = exporter.to_array(FakeTorchTensor(np.array([0.25], dtype=np.float32)))
        self.assertEqual((t.dtype, t.tolist()), (np.dtype("<f8"), [0.25]))
        t = exporter.to_array(FakeTorchTensor(np.array(True)))
        self.assertEqual((t.dtype, t.shape, int(t)), (np.dtype("<i8"), (), 1))
        with self.assertRaises(exporter.ExportError):
            exporter.to_array(np.array([1 + 2j]), "c")
        with self.assertRaises(exporter.ExportError):
            exporter.to_array(FakeTorchTensor(np.array([1j])), "c")
        with self.assertRaises(exporter.ExportError):
            exporter.to_array(np.array(["a"]), "s")
        with self.assertRaisesRegex(exporter.ExportError, "non-finite"):
            exporter.convert_state_dict({"w": np.array([1.0, np.nan])})

    def test_writer_small_cases(self):
        tensors = exporter.convert_state_dict({
            "b.scalar": np.float64(2.5), "a.empty": np.zeros((0,)), "c.int": np.arange(6, dtype=np.int32).reshape(2, 3),
            "d.bool": np.array([True, False, True]), "e.f32": np.array([[0.1, 0.2]], dtype=np.float32),
        })
        path = self.path("small_cases.safetensors")
        exporter.write_safetensors(path, tensors, {"format": "hip-mace-safetensors-1", "config": "{}", "note": "é ü"})
        header, data = self.check_layout(path)
        self.assertEqual(header["a.empty"], {"dtype": "F64", "shape": [0], "data_offsets": [0, 0]})
        self.assertEqual(header["b.scalar"]["shape"], [])
        self.assertEqual(header["c.int"]["dtype"], "I64")
        self.assertEqual(header["d.bool"]["dtype"], "I64")
        self.assertEqual(header["__metadata__"]["note"], "é ü")
        back, meta = spec.load(path)
        self.assertEqual(float(back["b.scalar"]), 2.5)
        self.assertEqual(back["c.int"].tolist(), [[0, 1, 2], [3, 4, 5]])
        self.assertEqual(back["d.bool"].tolist(), [1, 0, 1])
        self.assertTrue(np.array_equal(back["e.f32"], np.array([[0.1, 0.2]], dtype=np.float32).astype(np.float64)))
        self.assertEqual(meta["config"], "{}")
        with self.assertRaises(exporter.ExportError):
            exporter.write_safetensors(self.path("bad.safetensors"), tensors, {"config": {"not": "a string"}})
        with self.assertRaises(exporter.ExportError):
            exporter.write_safetensors(self.path("bad.safetensors"), {"x": np.zeros(2, dtype=np.float32)}, {})
        with self.assertRaises(exporter.ExportError):
            exporter.convert_state_dict({"__metadata__": np.zeros(1)})
        self.assertFalse(os.path.exists(self.path("bad.safetensors")))
        self.assertEqual([f for f in os.listdir(self.tmp) if ".tmp." in f], [])

    # -- round trip of the golden model through the writer --

    def test_roundtrip_golden(self):
        path = self.path("small_roundtrip.safetensors")
        tensors = {k: exporter.to_array(v, k) for k, v in self.golden_tensors.items()}
        exporter.write_safetensors(path, tensors, self.golden_meta)
        header, data = self.check_layout(path)
        names = sorted(k for k in self.golden_header if k != "__metadata__")
        self.assertEqual(sorted(k for k in header if k != "__metadata__"), names)
        for k in names:
            self.assertEqual(header[k]["dtype"], self.golden_header[k]["dtype"], k)
            self.assertEqual(header[k]["shape"], self.golden_header[k]["shape"], k)
            self.assertEqual(tensor_bytes(header, data, k), tensor_bytes(self.golden_header, self.golden_data, k), k)
        self.assertEqual(json.loads(header["__metadata__"]["config"]), self.golden_cfg)
        r = run_hipmace("-model", path, "-model_info")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("hidden irreps 8x0e+8x1o+8x2e", r.stdout)

    # -- export from a model object --

    def test_export_fake_model(self):
        model = fake_model(self.golden_cfg, self.golden_tensors)
        path = self.path("small_exported.safetensors")
        cfg = exporter.export(model, model.state_dict(), path, source="/somewhere/trained.model")
        for key in exporter.CONFIG_KEYS:
            self.assertEqual(cfg[key], self.golden_cfg[key], key)
        header, data = self.check_layout(path)
        meta = header["__metadata__"]
        self.assertEqual(json.loads(meta["config"]), cfg)
        self.assertEqual(meta["source"], "trained.model")
        back, _ = spec.load(path)
        self.assertEqual(sorted(back), sorted(self.golden_tensors))
        for k, ref in self.golden_tensors.items():
            self.assertEqual(back[k].dtype, ref.dtype, k)
            self.assertEqual(back[k].shape, ref.shape, k)
            self.assertEqual(tensor_bytes(header, data, k), tensor_bytes(self.golden_header, self.golden_data, k), k)
        self.assertEqual(header["radial_embedding.cutoff_fn.p"]["dtype"], "I64")  # int32 in torch
        self.assertEqual(header["products.0.symmetric_contractions.contractions.0.weights_max_zeroed"]["dtype"], "I64")  # bool

        r = run_hipmace("-model", path, "-model_info")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # same tensors and constructor arguments as the golden file: bit-identical energies
        mol = os.path.join(GOLDEN, "mol08.xyz")
        self.assertEqual(summary_energy(path, mol, self.tmp, "exported"), summary_energy(SMALL, mol, self.tmp, "golden"))

    def test_export_hessian_layers(self):
        """num_interactions_hessian: the extra layers' tensors and the key are carried, also from a bare
        state_dict (counted from the hessian_interactions.k tensors), and the engine lists them."""
        src = os.path.join(GOLDEN, "model_hoextra.safetensors")
        tensors, meta = spec.load(src)
        gcfg = json.loads(meta["config"])
        gheader, _, gdata = raw_file(src)
        model = fake_model(gcfg, tensors)
        path = self.path("hoextra_exported.safetensors")
        cfg = exporter.export(model, model.state_dict(), path)
        self.assertEqual(cfg["num_interactions_hessian"], 1)
        header, data = self.check_layout(path)
        for k in tensors:
            self.assertEqual(tensor_bytes(header, data, k), tensor_bytes(gheader, gdata, k), k)
        self.assertTrue(any(k.startswith("hessian_products.0.") for k in header))
        del model.num_interactions_hessian
        self.assertEqual(exporter.assemble_config(model, exporter.convert_state_dict(model.state_dict()))["num_interactions_hessian"], 1)
        r = run_hipmace("-model", path, "-model_info")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("1 extra Hessian interaction layer(s)", r.stdout)
        mol = os.path.join(GOLDEN, "mol08.xyz")
        self.assertEqual(summary_energy(path, mol, self.tmp, "hoextra_exported"), summary_energy(src, mol, self.tmp, "hoextra"))

    def test_missing_attribute_needs_flag(self):
        model = fake_model(self.golden_cfg, self.golden_tensors)
        del model.interactions[0].avg_num_neighbors
        del model.readouts[-1].non_linearity
        with self.assertRaises(exporter.ExportError) as ctx:
            exporter.export(model, model.state_dict(), self.path("missing.safetensors"))
        msg = str(ctx.exception)
        self.assertIn("avg_num_neighbors", msg)
        self.assertIn("--set avg_num_neighbors=VALUE", msg)
        self.assertIn("--set gate=VALUE", msg)
        self.assertNotIn("r_max", msg)  # recovered from the tensors
        self.assertFalse(os.path.exists(self.path("missing.safetensors")))
        cfg = exporter.export(model, model.state_dict(), self.path("missing.safetensors"),
                              overrides=exporter._parse_set(["avg_num_neighbors=12.876944541931152", "gate=silu"]))
        self.assertEqual(cfg["avg_num_neighbors"], self.golden_cfg["avg_num_neighbors"])
        self.assertEqual(cfg["gate"], "silu")

    def test_single_layer_interaction_cls(self):
        model = fake_model(self.golden_cfg, self.golden_tensors)
        sd = dict(model.state_dict())
        sd["num_interactions"] = np.array(1)
        with self.assertRaisesRegex(exporter.ExportError, "interaction_cls: the model has a single interaction layer"):
            exporter.assemble_config(model, exporter.convert_state_dict(sd))

    def test_overrides_and_contradictions(self):
        model = fake_model(self.golden_cfg, self.golden_tensors)
        tensors = exporter.convert_state_dict(model.state_dict())
        with self.assertRaisesRegex(exporter.ExportError, "r_max = 6.0 .* contradicts"):
            exporter.assemble_config(model, tensors, overrides={"r_max": 6.0})
        # a float32-trained model's buffer differs from the config's double by round-off only
        cfg = exporter.assemble_config(model, tensors, overrides={"r_max": 5.0 + 1e-9})
        self.assertEqual(cfg["r_max"], 5.0)
        cfg = exporter.assemble_config(model, tensors, overrides={"hessian_aggregation": "mean"})
        self.assertEqual(cfg["hessian_aggregation"], "mean")
        model.hip = False
        with self.assertRaisesRegex(exporter.ExportError, "hip=False"):
            exporter.assemble_config(model, tensors)

    def test_bare_state_dict(self):
        tensors = exporter.convert_state_dict(self.golden_tensors)
        with self.assertRaises(exporter.ExportError) as ctx:
            exporter.assemble_config(None, tensors)
        for key in ("interaction_cls", "hidden_irreps", "gate", "model_class"):
            self.assertIn(f"--set {key}=VALUE", str(ctx.exception))
        # constructor arguments as another tool wrote them (class reprs, a function repr)
        base = {k: v for k, v in self.golden_cfg.items() if k in exporter.CONFIG_KEYS}
        base["interaction_cls"] = "<class 'mace.modules.blocks.RealAgnosticResidualInteractionBlock'>"
        base["gate"] = "<function silu at 0x7f0123456789>"
        cfg = exporter.assemble_config(None, tensors, base=base)
        for key in exporter.CONFIG_KEYS:
            self.assertEqual(cfg[key], self.golden_cfg[key], key)

    def test_parse_set(self):
        got = exporter._parse_set(["interaction_cls=RealAgnosticResidualInteractionBlock", "radial_MLP=[16, 16, 16]", "edge_irreps=null", "avg_num_neighbors=12.5"])
        self.assertEqual(got, {"interaction_cls": "RealAgnosticResidualInteractionBlock", "radial_MLP": [16, 16, 16], "edge_irreps": None, "avg_num_neighbors": 12.5})
        with self.assertRaisesRegex(exporter.ExportError, "not a constructor argument"):
            exporter._parse_set(["rmax=5"])
        with self.assertRaisesRegex(exporter.ExportError, "KEY=VALUE"):
            exporter._parse_set(["r_max"])

    def test_cli_without_torch(self):
        try:
            import torch  # noqa: F401

            self.skipTest("torch is installed here; the no-torch message cannot be provoked")
        except ImportError:
            pass
        r = subprocess.run([sys.executable, os.path.join(HERE, "..", "drivers", "hipmace-export.py"), self.path("in.model"), self.path("out.safetensors")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("torch is not importable", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
