/*
 * Input layout of the MAX7800x CNN data memory (HWC): each 32-bit word holds four consecutive
 * channels of one pixel, byte 0 = the lowest channel; channels 4k..4k+3 go to the data memory
 * instance of processors 4k..4k+3, one word per pixel in row-major order (ai8x-synthesis README,
 * "HWC (Height-Width-Channels)"). SDK-free, so it compiles and is tested without the MSDK.
 */
#ifndef AI8X_LAYOUT_H
#define AI8X_LAYOUT_H

#include <stdint.h>

/* Pack channels first_ch..first_ch+3 of an H x W x C int8 (NHWC, batch 1) tensor into `words`
 * (H*W words); channels beyond C are zero. */
void ai8x_pack_hwc(const int8_t *in, uint32_t h, uint32_t w, uint32_t c, uint32_t first_ch, uint32_t *words);

#endif /* AI8X_LAYOUT_H */
