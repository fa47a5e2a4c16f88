/* Element symbols and standard atomic weights for Z = 1 .. HM_MAX_Z (H .. Rn). */
#include <ctype.h>
#include <string.h>

#include "ioimpl.h"

static const char *const hm_symbols[HM_MAX_Z + 1] = {
    "X", "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "Ar", "K", "Ca", "Sc",
    "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc",
    "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb",
    "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn"};

/* IUPAC/CIAAW abridged standard atomic weights, using the conventional values for elements
   whose weight is an interval (H 1.008, C 12.011, ...). Tc, Pm, Po, At and Rn have no standard
   weight; the mass number of their longest-lived isotope is used, as the IUPAC table lists. */
static const double hm_masses[HM_MAX_Z + 1] = {
    0.0,                                                                                           /* X */
    1.008, 4.0026, 6.94, 9.0122, 10.81, 12.011, 14.007, 15.999, 18.998, 20.180,                    /* H - Ne */
    22.990, 24.305, 26.982, 28.085, 30.974, 32.06, 35.45, 39.95,                                   /* Na - Ar */
    39.098, 40.078, 44.956, 47.867, 50.942, 51.996, 54.938, 55.845, 58.933, 58.693, 63.546, 65.38, /* K - Zn */
    69.723, 72.630, 74.922, 78.971, 79.904, 83.798,                                                /* Ga - Kr */
    85.468, 87.62, 88.906, 91.224, 92.906, 95.95, 98.0, 101.07, 102.91, 106.42, 107.87, 112.41,    /* Rb - Cd */
    114.82, 118.71, 121.76, 127.60, 126.90, 131.29,                                                /* In - Xe */
    132.91, 137.33, 138.91, 140.12, 140.91, 144.24, 145.0, 150.36, 151.96, 157.25, 158.93, 162.50, /* Cs - Dy */
    164.93, 167.26, 168.93, 173.05, 174.97,                                                        /* Ho - Lu */
    178.49, 180.95, 183.84, 186.21, 190.23, 192.22, 195.08, 196.97, 200.59,                        /* Hf - Hg */
    204.38, 207.2, 208.98, 209.0, 210.0, 222.0                                                     /* Tl - Rn */
};

const char *HMElementSymbol(int Z)
{
  return (Z >= 1 && Z <= HM_MAX_Z) ? hm_symbols[Z] : "X";
}

int HMElementFromSymbol(const char sym[])
{
  char s[3];

  if (!sym || !sym[0] || strlen(sym) > 2) return 0;
  /* PDB files write "CL" or "cl"; the canonical form is first letter upper, second lower */
  s[0] = (char)toupper((unsigned char)sym[0]);
  s[1] = sym[1] ? (char)tolower((unsigned char)sym[1]) : '\0';
  s[2] = '\0';
  for (int Z = 1; Z <= HM_MAX_Z; Z++)
    if (!strcmp(s, hm_symbols[Z])) return Z;
  return 0;
}

double HMElementMass(int Z)
{
  return (Z >= 1 && Z <= HM_MAX_Z) ? hm_masses[Z] : 0.0;
}
