#!/usr/bin/env python3
"""Issue 15 acceptance: a model's test molecules displaced by Gaussian noise (0.05 A, fixed seed), minimised with
and without the predicted Hessian (hipmace -optimize min), and -optimize ts from the demo model's saddles s4-s7, s9.
Usage: optbench.py HIPMACE_BIN MODELS_DIR INPUTS_DIR OUTDIR [min|ts|all] [--model demo|protein]
                   [--steps N] [--variants 'name:flags;name:flags']
  demo (default): demo_hipmace, its 10 test molecules, seed 15, 200 steps;
  protein: protein_demo, its test molecules s0-s7, seed 2026, 300 steps.
  --variants: the runs to make (default 'predicted:-optimize_hessian predicted;none:-optimize_hessian none'; ts
  runs every variant that uses the predicted Hessian),
  e.g. 'keep:-optimize_keep_history'. Converged runs print their curvature check (check=Hessian eigenvalue/energy
  curvature per negative direction, eV/A^2, and the escapes from saddles of the energy)."""
import argparse, json, os, struct, subprocess
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

SYM = {1: 'H', 6: 'C', 7: 'N', 8: 'O', 9: 'F', 16: 'S'}

def write_xyz(path, Z, pos):
    with open(path, 'w') as f:
        f.write(f"{len(Z)}\nProperties=species:S:1:pos:R:3\n")
        for z, p in zip(Z, pos):
            f.write(f"{SYM[int(z)]} {p[0]:.17g} {p[1]:.17g} {p[2]:.17g}\n")

def run(binp, model, xyz, out, steps, extra):
    js = out + '.json'
    cmd = [binp, '-structure', xyz, '-model', model, '-summary', js, '-nmodes', '8', '-optimize_max_steps', str(steps)] + extra
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        return None, r.stdout + r.stderr
    return json.load(open(js)), r.stdout

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('bin'); ap.add_argument('models'); ap.add_argument('inputs'); ap.add_argument('outdir')
    ap.add_argument('what', nargs='?', default='all', choices=['min', 'ts', 'all'])
    ap.add_argument('--model', default='demo', choices=['demo', 'protein'])
    ap.add_argument('--steps', type=int, default=0)
    ap.add_argument('--variants', default='predicted:-optimize_hessian predicted;none:-optimize_hessian none')
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    if a.model == 'demo':
        fx = safetensors(os.path.join(a.models, 'demo_test_fixtures.safetensors'))
        model, seed, mols, steps = os.path.join(a.inputs, 'demo_hipmace.safetensors'), 15, range(10), 200
    else:
        fx = safetensors(os.path.join(a.models, 'protein_demo_test_fixtures.safetensors'))
        model, seed, mols, steps = os.path.join(a.inputs, 'protein_demo.safetensors'), 2026, range(8), 300
    steps = a.steps or steps
    variants = [(v.split(':', 1)[0], v.split(':', 1)[1].split()) for v in a.variants.split(';') if v]
    rng = np.random.default_rng(seed)
    for k in mols:
        Z = fx[f's{k}_atomic_numbers']
        pos = fx[f's{k}_positions'].astype(np.float64)
        noisy = pos + 0.05 * rng.standard_normal(pos.shape)
        write_xyz(os.path.join(a.outdir, f's{k}_noisy.xyz'), Z, noisy)
        write_xyz(os.path.join(a.outdir, f's{k}_dft.xyz'), Z, pos)
    if a.what in ('min', 'all'):
        done = {name: [] for name, _ in variants}
        for k in mols:
            xyz = os.path.join(a.outdir, f's{k}_noisy.xyz')
            for name, flags in variants:
                s, log = run(a.bin, model, xyz, os.path.join(a.outdir, f's{k}_min_{name}'), steps, ['-optimize', 'min'] + flags)
                if s is None:
                    print(f's{k} {name}: FAILED\n{log}', flush=True)
                    continue
                o, m = s['optimize'], s.get('modes', {})
                wn = s.get('frequencies_cm1') or []
                low = min(wn) if wn else float('nan')
                nb = sum(1 for w in wn if w < -30)
                done[name].append(o['steps'] if o['converged'] else None)
                cc = o.get('curvature_check')
                chk = '' if cc is None else ' check=' + ','.join(f"{l:.3f}/{c:+.3f}" for l, c in zip(cc['hessian_eigenvalues'], cc['energy_curvatures'])) + f" escapes={cc['escapes']}"
                print(f"min s{k} {name:9s} conv={o['converged']} steps={o['steps']} fmax={o['fmax']:.2e} E={o['energy_final']:.6f} "
                      f"hess={o['hessian_evaluations']} below_-30={nb} lowest_cm1={low:.1f}{chk}", flush=True)
        for name, st in done.items():
            conv = [x for x in st if x is not None]
            # unconverged runs count as the step limit in the median (a lower bound of their steps)
            med = float(np.median([x if x is not None else steps for x in st])) if st else float('nan')
            print(f"summary {name}: {len(conv)}/{len(st)} converged, median steps {med:.1f} (unconverged counted as {steps})", flush=True)
    if a.what in ('ts', 'all') and a.model == 'demo':
        # the same variants as for min, minus the flags that only make sense there
        tsvariants = [(name, [f for f in flags if f not in ('-optimize_hessian', 'predicted')]) for name, flags in variants if 'none' not in flags]
        for name, flags in tsvariants:
            nts = 0
            for k in (4, 5, 6, 7, 9):
                xyz = os.path.join(a.outdir, f's{k}_dft.xyz')
                s, log = run(a.bin, model, xyz, os.path.join(a.outdir, f's{k}_ts_{name}'), steps, ['-optimize', 'ts'] + flags)
                if s is None:
                    print(f'ts s{k} {name}: FAILED\n{log}', flush=True)
                    continue
                o = s['optimize']
                wn = s.get('frequencies_cm1') or []
                nb = sum(1 for w in wn if w < -30)
                nts += bool(o['converged'] and nb == 1)
                cc = o.get('curvature_check')
                chk = '' if cc is None else ' check=' + ','.join(f"{l:.3f}/{c:+.3f}" for l, c in zip(cc['hessian_eigenvalues'], cc['energy_curvatures']))
                print(f"ts s{k} {name:9s} conv={o['converged']} steps={o['steps']} fmax={o['fmax']:.2e} modes_below_-30={nb} lowest={sorted(wn)[:3]}{chk}", flush=True)
            print(f"summary ts {name}: {nts}/5 converged with exactly one mode below -30 cm-1", flush=True)

main()
