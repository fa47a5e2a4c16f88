#!/usr/bin/env python3
"""Prints the SMILES of a neutral linear L-peptide (free amine and acid ends) from a one-letter
sequence, e.g. `peptide_smiles.py MQIFVKTLTGKC`; build.sh turns it into 3D with Open Babel."""
import sys

SIDE = {  # side chain on the alpha carbon, L configuration with the N[C@@H](R)C(=O) pattern
    "A": "C", "R": "CCCNC(=N)N", "N": "CC(=O)N", "D": "CC(=O)O", "C": "CS", "Q": "CCC(=O)N",
    "E": "CCC(=O)O", "H": "Cc1c[nH]cn1", "I": "[C@@H](C)CC", "L": "CC(C)C", "K": "CCCCN",
    "M": "CCSC", "F": "Cc1ccccc1", "S": "CO", "T": "[C@@H](C)O", "W": "Cc1c[nH]c2ccccc12",
    "Y": "Cc1ccc(O)cc1", "V": "C(C)C",
}


def smiles(seq):
    out = []
    for k, aa in enumerate(seq.upper()):
        if aa == "G":
            out.append("NCC(=O)")
        elif aa == "P":
            ring = "%{:02d}".format(10 + k % 80)  # a ring-closure number of its own
            out.append("N{0}[C@@H](CCC{0})C(=O)".format(ring))
        elif aa in SIDE:
            out.append("N[C@@H]({})C(=O)".format(SIDE[aa]))
        else:
            sys.exit("peptide_smiles.py: unknown residue '{}' at position {}".format(aa, k + 1))
    return "".join(out) + "O"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: peptide_smiles.py SEQUENCE")
    print(smiles(sys.argv[1]))
