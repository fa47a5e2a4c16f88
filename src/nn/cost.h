/* Analytic operation counts of the layer kernels for the per-stage roofline of hipmace-bench (private to the library). */
#pragma once

#include "nn/nnimpl.h"

/* Each function adds to *flops the floating-point operations the kernel executes (a multiply-add
   counts 2, a multiply or an add 1, the normalised SiLU 6) and to *bytes the compulsory memory
   traffic: every input and output array read or written once per call, weights once per call (the
   symmetric contraction: its folded weights once per batch of nodes, as the kernel streams them). */
PETSC_INTERN void HMLinearCost(const HMLinear *, PetscInt n, double *flops, double *bytes);
PETSC_INTERN void HMSkipTPCost(const HMSkipTP *, PetscInt n, double *flops, double *bytes);
PETSC_INTERN void HMRadialMLPCost(const HMRadialMLP *, PetscInt n, double *flops, double *bytes);
/* nedges edges (x1 of the sender, x2 and w of the edge read per edge) into nrecv receivers (mid read and written once). */
PETSC_INTERN void HMConvTPCost(const HMConvTP *, PetscInt nedges, PetscInt nrecv, double *flops, double *bytes);
/* n nodes with elements elem[] (batches of up to 8 nodes of one element). */
PETSC_INTERN void HMSymContractionCost(const HMSymContraction *, const HMIrreps *target, PetscInt n, const int elem[], double *flops, double *bytes);
