#include "ai8x_layout.h"

void ai8x_pack_hwc(const int8_t *in, uint32_t h, uint32_t w, uint32_t c, uint32_t first_ch, uint32_t *words)
{
    for (uint32_t p = 0; p < h * w; p++) {
        uint32_t word = 0;
        for (uint32_t k = 0; k < 4; k++) {
            uint32_t ch = first_ch + k;
            if (ch < c)
                word |= (uint32_t)(uint8_t)in[p * c + ch] << (8u * k);
        }
        words[p] = word;
    }
}
