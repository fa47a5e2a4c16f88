#!/bin/sh
# Makes a hydrogenated protein PDB file for the worked protein example (README, "A protein with the
# bundled protein model"). Needs Open Babel (Debian package openbabel, installed by drivers/setup.sh).
#
#   sh inputs/protein/prepare.sh build [SEQUENCE [OUT.pdb]]   offline: an L-peptide built in 3D from its
#        sequence with Open Babel (--gen3d: force-field geometry, all hydrogens, neutral ends and side
#        chains; no disulfide bonds; default: crambin's 46 residues, 6 Cys -> crambin_built.pdb)
#   sh inputs/protein/prepare.sh fetch [PDBID|FILE.pdb[.gz] [OUT.pdb]]   an entry from the RCSB PDB (needs
#        internet; default 1CRN, crambin: 46 residues, 3 disulfides) or, offline, the entry's PDB file
#        already on disk; protein atoms of the first model only (waters and ligands dropped), hydrogens
#        added with 'obabel -h' -> 1crn_h.pdb
set -eu
command -v obabel >/dev/null || { echo "prepare.sh: obabel not found: apt-get install openbabel" >&2; exit 1; }
here=$(dirname "$0")
mode=${1:-build}
case "$mode" in
build)
  seq=${2:-TTCCPSIVARSNFNVCRLPGTPEAICATYTGCIIIPGATCPGDYAN}
  out=${3:-crambin_built.pdb}
  smi=$(python3 "$here/peptide_smiles.py" "$seq")
  # a few minutes for 46 residues: Open Babel searches conformers and minimises with MMFF94
  echo "$smi" | obabel -ismi -h --gen3d -opdb -O "$out"
  ;;
fetch)
  id=${2:-1CRN}
  raw=$(mktemp "${TMPDIR:-/tmp}/prepare_XXXXXX.pdb")
  trap 'rm -f "$raw" "$raw.tmp"' EXIT
  if [ -f "$id" ]; then
    # a PDB file already on disk (offline: the entry copied from elsewhere), possibly gzipped
    out=${3:-$(basename "$id" | sed 's/\.gz$//; s/\.[A-Za-z]*$//' | tr 'A-Z' 'a-z')_h.pdb}
    case "$id" in *.gz) gzip -dc "$id" > "$raw" ;; *) cp "$id" "$raw" ;; esac
  else
    out=${3:-$(echo "$id" | tr 'A-Z' 'a-z')_h.pdb}
    url="https://files.rcsb.org/download/$id.pdb"
    ok=0
    if command -v curl >/dev/null; then curl -fsSL "$url" -o "$raw" && ok=1; else wget -q "$url" -O "$raw" && ok=1; fi
    if [ "$ok" -ne 1 ]; then
      echo "prepare.sh: cannot download $url (offline?). Copy the entry's PDB file to this machine and" >&2
      echo "            give its path instead of the id: sh $0 fetch ./$(echo "$id" | tr 'A-Z' 'a-z').pdb" >&2
      echo "            (or build a peptide offline: sh $0 build)" >&2
      exit 1
    fi
  fi
  # CRYST1 is kept (hipmace reads a crystal's space group as "not periodic" and says so); the first
  # MODEL only; ATOM records only (no HETATM: waters, ions, ligands); first alternate location only
  awk '/^CRYST1/ {print; next}
       /^ENDMDL/ {exit}
       /^ATOM  / {alt = substr($0, 17, 1); if (alt == " " || alt == "A") print substr($0, 1, 16) " " substr($0, 18)}
       END {print "END"}' "$raw" > "$raw.tmp" && mv "$raw.tmp" "$raw"
  obabel "$raw" -h -opdb -O "$out"
  ;;
*)
  echo "usage: sh $0 build [SEQUENCE [OUT.pdb]] | fetch [PDBID|FILE.pdb [OUT.pdb]]" >&2
  exit 2
  ;;
esac
grep -c '^\(ATOM\|HETATM\)' "$out" | sed "s|^|$out: |; s|\$| atoms|"
