/* faults.h — fault-injection rules of a virtual volume, read from the text
 * file `faults` in the volume's directory when the volume is loaded (rules
 * in docs/FORMATS.md). Internal to tape/. A TapeFaults belongs to one
 * device and is used by one thread at a time; no locks. */
#pragma once

#include "tape/tape.h"

#define TAPE_FAULTS_FILE "faults"

typedef struct {
    uint32_t fileno;
    uint64_t block;
} TapeReadFault;

typedef struct {
    GArray *fail_writes;    /* uint64_t: 1-based block write numbers */
    GArray *fail_reads;     /* TapeReadFault */
    uint64_t peom;          /* physical end of medium in bytes; 0 = none */
    TapeStreaming streaming;
} TapeFaults;

/* Parse `voldir`/faults (a missing file means no rules). A malformed line
 * is -EINVAL naming the file and line; `f` is then empty. */
int tape_faults_load(const char *voldir, const char *what, TapeFaults *f,
                     GError **err);
void tape_faults_clear(TapeFaults *f);
bool tape_faults_write_fails(const TapeFaults *f, uint64_t nth);
bool tape_faults_read_fails(const TapeFaults *f, uint32_t fileno,
                            uint64_t block);
