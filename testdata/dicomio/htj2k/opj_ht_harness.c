/*
 * Runs OpenJPEG's HT code-block decoder (src/lib/openjp2/ht_dec.c) on code-
 * blocks read from stdin, for the differential test of dicomio/jpeg2000
 * (TestHTBlocksAgainstOpenJPEG). Build it from an OpenJPEG 2.5 source tree
 * (see README.md):
 *
 *   cc -O2 -DNDEBUG -I$OPJ/src/lib/openjp2 -I. opj_ht_harness.c \
 *      $OPJ/src/lib/openjp2/ht_dec.c $OPJ/src/lib/openjp2/event.c \
 *      $OPJ/src/lib/openjp2/opj_malloc.c $OPJ/src/lib/openjp2/thread.c -lpthread
 *
 * Each record on stdin: ten little endian uint32 (w, h, Mb, numbps,
 * cblksty, passes1, passes2, len1, len2, n) and n bytes of code-block
 * data. Each answer on stdout: a uint32 status (1 decoded, 0 refused)
 * and w*h little endian int32 samples.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "opj_includes.h"

OPJ_BOOL opj_t1_ht_decode_cblk(opj_t1_t *t1, opj_tcd_cblk_dec_t* cblk,
                               OPJ_UINT32 orient, OPJ_UINT32 roishift,
                               OPJ_UINT32 cblksty, opj_event_mgr_t *p_manager,
                               opj_mutex_t* p_manager_mutex, OPJ_BOOL check_pterm);

static void quiet(const char *msg, void *data)
{
    (void)msg;
    (void)data;
}

int main(void)
{
    opj_t1_t t1;
    opj_event_mgr_t mgr;
    OPJ_UINT32 hdr[10];
    memset(&t1, 0, sizeof(t1));
    memset(&mgr, 0, sizeof(mgr));
    mgr.error_handler = quiet;
    mgr.warning_handler = quiet;
    mgr.info_handler = quiet;
    while (fread(hdr, 4, 10, stdin) == 10) {
        OPJ_UINT32 w = hdr[0], h = hdr[1], n = hdr[9], i;
        OPJ_BYTE *data = (OPJ_BYTE*)opj_malloc(n + 8);
        opj_tcd_seg_t segs[2];
        opj_tcd_seg_data_chunk_t chunk;
        opj_tcd_cblk_dec_t cblk;
        OPJ_UINT32 status;
        if (fread(data, 1, n, stdin) != n) {
            return 1;
        }
        memset(segs, 0, sizeof(segs));
        memset(&cblk, 0, sizeof(cblk));
        segs[0].real_num_passes = hdr[5];
        segs[0].len = hdr[7];
        segs[1].real_num_passes = hdr[6];
        segs[1].len = hdr[8];
        chunk.data = data;
        chunk.len = n;
        cblk.segs = segs;
        cblk.numsegs = hdr[6] > 0 ? 2 : 1;
        cblk.real_num_segs = cblk.numsegs;
        cblk.chunks = &chunk;
        cblk.numchunks = 1;
        cblk.x1 = (OPJ_INT32)w;
        cblk.y1 = (OPJ_INT32)h;
        cblk.Mb = hdr[2];
        cblk.numbps = hdr[3];
        status = opj_t1_ht_decode_cblk(&t1, &cblk, 0, 0, hdr[4], &mgr, NULL, OPJ_FALSE) ? 1 : 0;
        fwrite(&status, 4, 1, stdout);
        for (i = 0; i < w * h; i++) {
            OPJ_INT32 v = status ? t1.data[i] : 0;
            fwrite(&v, 4, 1, stdout);
        }
        fflush(stdout);
        opj_free(data);
    }
    return 0;
}
