#!/usr/bin/env python3
"""Issue 15 acceptance: the demo model's 10 test molecules displaced by Gaussian noise (0.05 A, fixed seed),
minimised with and without the predicted Hessian (hipmace -optimize min), and -optimize ts from s4-s7, s9.
Usage: optbench.py HIPMACE_BIN MODELS_DIR INPUTS_DIR OUTDIR [min|ts|all]"""
import json, os, struct, subprocess, sys
import numpy as np

def safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    dt = {'F64': np.float64, 'I64': np.int64, 'F32': np.float32}
    out = {}
    for k, v in hdr.items():
        if k == '__metadata__':
            continue
        a, b = v['data_offsets']
        out[k] = np.frombuffer(data[a:b], dtype=dt[v['dtype']]).reshape(v['shape'])
    return out

SYM = {1: 'H', 6: 'C', 7: 'N', 8: 'O', 9: 'F'}

def write_xyz(path, Z, pos):
    with open(path, 'w') as f:
        f.write(f"{len(Z)}\nProperties=species:S:1:pos:R:3\n")
        for z, p in zip(Z, pos):
            f.write(f"{SYM[int(z)]} {p[0]:.17g} {p[1]:.17g} {p[2]:.17g}\n")

def run(binp, model, xyz, out, extra):
    js = out + '.json'
    cmd = [binp, '-structure', xyz, '-model', model, '-summary', js, '-nmodes', '8', '-optimize_max_steps', '200'] + extra
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        return None, r.stdout + r.stderr
    s = json.load(open(js))
    return s, r.stdout

def main():
    binp, models, inputs, outdir = sys.argv[1:5]
    what = sys.argv[5] if len(sys.argv) > 5 else 'all'
    os.makedirs(outdir, exist_ok=True)
    fx = safetensors(os.path.join(models, 'demo_test_fixtures.safetensors'))
    model = os.path.join(inputs, 'demo_hipmace.safetensors')
    rng = np.random.default_rng(15)
    rows = []
    for k in range(10):
        Z = fx[f's{k}_atomic_numbers']
        pos = fx[f's{k}_positions'].astype(np.float64)
        noisy = pos + 0.05 * rng.standard_normal(pos.shape)
        write_xyz(os.path.join(outdir, f's{k}_noisy.xyz'), Z, noisy)
        write_xyz(os.path.join(outdir, f's{k}_dft.xyz'), Z, pos)
    if what in ('min', 'all'):
        for k in range(10):
            xyz = os.path.join(outdir, f's{k}_noisy.xyz')
            for h in ('predicted', 'none'):
                s, log = run(binp, model, xyz, os.path.join(outdir, f's{k}_min_{h}'), ['-optimize', 'min', '-optimize_hessian', h])
                if s is None:
                    print(f's{k} {h}: FAILED\n{log}', flush=True)
                    continue
                o, m = s['optimize'], s.get('modes', {})
                wn = s.get('frequencies_cm1') or []
                low = min(wn) if wn else float('nan')
                print(f"min s{k} {h:9s} conv={o['converged']} steps={o['steps']} fmax={o['fmax']:.2e} E={o['energy_final']:.6f} "
                      f"hess={o['hessian_evaluations']} n_imag={m.get('n_imaginary')} lowest_cm1={low:.1f}", flush=True)
    if what in ('ts', 'all'):
        for k in (4, 5, 6, 7, 9):
            xyz = os.path.join(outdir, f's{k}_dft.xyz')
            s, log = run(binp, model, xyz, os.path.join(outdir, f's{k}_ts'), ['-optimize', 'ts'])
            if s is None:
                print(f'ts s{k}: FAILED\n{log}', flush=True)
                continue
            o, m = s['optimize'], s.get('modes', {})
            wn = s.get('frequencies_cm1') or []
            nb = sum(1 for w in wn if w < -30)
            print(f"ts s{k} conv={o['converged']} steps={o['steps']} fmax={o['fmax']:.2e} modes_below_-30={nb} lowest={sorted(wn)[:3]}", flush=True)

main()
