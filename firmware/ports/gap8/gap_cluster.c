/*
 * The GAP SDK side of the GAP8 runner: the cluster (PMSIS) and the AutoTiler-generated network
 * <UNPU_AT_PREFIX>CNN* from <prefix>Kernels.h (written by the AutoTiler in the model directory).
 * Needs the SDK headers; runner_autotiler.c and the harness do not.
 */
#include "pmsis.h"

#include "gap_cluster.h"
#include UNPU_AT_KERNELS_H

#define UNPU_CAT(a, b) a##b
#define UNPU_XCAT(a, b) UNPU_CAT(a, b)
#define NET_CONSTRUCT UNPU_XCAT(UNPU_AT_PREFIX, CNN_Construct)
#define NET_DESTRUCT UNPU_XCAT(UNPU_AT_PREFIX, CNN_Destruct)
#define NET_RUN UNPU_XCAT(UNPU_AT_PREFIX, CNN)
#define NET_L3_FLASH UNPU_XCAT(UNPU_AT_PREFIX, _L3_Flash)

#ifndef UNPU_AT_FLASH_ADDR_TYPE
#define UNPU_AT_FLASH_ADDR_TYPE AT_HYPERFLASH_FS_EXT_ADDR_TYPE  /* l3_flash_device AT_MEM_L3_HFLASH */
#endif

/* The generated code reads its weights through this handle (the application defines it). */
UNPU_AT_FLASH_ADDR_TYPE NET_L3_FLASH = 0;

static struct pi_device cluster_dev;
static int cluster_up;
static struct pi_cluster_task task;   /* static: in L2, where the cluster reads it */

typedef struct {
    int8_t *input;
    void *output;
    int status;
} net_call_t;

int unpu_gap_cluster_open(void)
{
    struct pi_cluster_conf conf;
    if (cluster_up)
        return 0;
    pi_cluster_conf_init(&conf);
    conf.id = 0;
    conf.cc_stack_size = UNPU_GAP_CLUSTER_STACK;
    pi_open_from_conf(&cluster_dev, &conf);
    if (pi_cluster_open(&cluster_dev))
        return -1;
    if (pi_freq_set(PI_FREQ_DOMAIN_CL, UNPU_GAP_FREQ_CL_MHZ * 1000 * 1000) == -1)
        return -2;
    cluster_up = 1;
    return 0;
}

int unpu_gap_network_construct(void) { return NET_CONSTRUCT(); }

int unpu_gap_network_destruct(void) { return NET_DESTRUCT(); }

static void on_cluster(void *arg)
{
    net_call_t *call = (net_call_t *)arg;
    call->status = NET_RUN((signed char *)call->input, call->output);
}

int unpu_gap_network_run(int8_t *input, void *output)
{
    static net_call_t call;
    call.input = input;
    call.output = output;
    call.status = 0;
    pi_cluster_task(&task, on_cluster, &call);
    pi_cluster_task_stacks(&task, NULL, UNPU_GAP_CLUSTER_SLAVE_STACK);
    pi_cluster_send_task_to_cl(&cluster_dev, &task);
    return call.status;
}
