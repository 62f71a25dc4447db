/*
 * What the SDK-independent runner (runner_autotiler.c) needs from the GAP SDK side (gap_cluster.c):
 * the cluster, and the AutoTiler-generated network. Kept apart so that the runner and the harness
 * compile without the SDK (tests/test_vendor_gap.py compiles them for rv32imc with clang).
 */
#ifndef UNPU_GAP_CLUSTER_H
#define UNPU_GAP_CLUSTER_H

#include <stdint.h>

/* Power the cluster up (once) at UNPU_GAP_FREQ_CL_MHZ; 0 when it runs. */
int unpu_gap_cluster_open(void);

/* The generated graph: <prefix>CNN_Construct / _Destruct on the fabric controller (they allocate
 * L1/L2/L3 and move the weights from HyperFlash), and <prefix>CNN run as a cluster task on the 8
 * cores; unpu_gap_network_run waits for it. 0 = ok, else the generator's error code. The output is
 * int8, or int16 Q15 when the graph ends in NNTool's SQ8 softmax (runner_autotiler.c, UNPU_GAP_OUTPUT_Q15). */
int unpu_gap_network_construct(void);
int unpu_gap_network_destruct(void);
int unpu_gap_network_run(int8_t *input, void *output);

#endif /* UNPU_GAP_CLUSTER_H */
