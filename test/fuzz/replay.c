/* SPDX-License-Identifier: Apache-2.0 */
/*
 * replay FILE|DIR...: feeds each file (a directory: each regular file in it,
 * in name order, dot files skipped) to the target's LLVMFuzzerTestOneInput,
 * the way a libFuzzer binary replays a corpus, without libFuzzer. Each input
 * sits in a buffer of exactly its size, so that a sanitizer build catches
 * reads past its end. Linked with every target so that every build, gcc
 * included, runs the committed corpus. Exit 0 when every input ran; a broken
 * invariant aborts; no input at all is an error.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int run_file(const char *path)
{
    unsigned char *buf = NULL;
    struct stat sb;
    size_t got = 0;
    FILE *f;

    f = fopen(path, "rb");
    if (f == NULL || fstat(fileno(f), &sb) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        if (f != NULL)
            fclose(f);
        return 0;
    }
    /* malloc(0) may return NULL; an empty input still gets a pointer. */
    buf = malloc(sb.st_size > 0 ? (size_t)sb.st_size : 1);
    if (buf != NULL && sb.st_size > 0)
        got = fread(buf, 1, (size_t)sb.st_size, f);
    fclose(f);
    if (buf == NULL || got != (size_t)sb.st_size) {
        fprintf(stderr, "replay: %s: read failed\n", path);
        free(buf);
        return 0;
    }
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, got);
    LLVMFuzzerTestOneInput(buf, got);
    free(buf);
    return 1;
}

/* Runs every regular file of <dir>; returns how many, or -1 on error. */
static long run_dir(const char *dir)
{
    struct dirent **names = NULL;
    char path[4096];
    struct stat sb;
    long count = 0;
    int n, i;

    n = scandir(dir, &names, NULL, alphasort);
    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.'
            && (size_t)snprintf(path, sizeof(path), "%s/%s", dir,
                                names[i]->d_name)
                   < sizeof(path)
            && stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
            if (!run_file(path))
                count = -1;
            else if (count >= 0)
                count++;
        }
        free(names[i]);
    }
    free(names);
    return count;
}

int main(int argc, char **argv)
{
    long total = 0, n;
    struct stat sb;
    int i, failed = 0;

    LLVMFuzzerInitialize(&argc, &argv);
    for (i = 1; i < argc; i++) {
        if (stat(argv[i], &sb) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            failed = 1;
            continue;
        }
        n = S_ISDIR(sb.st_mode) ? run_dir(argv[i]) : run_file(argv[i]);
        if (n < 0 || (!S_ISDIR(sb.st_mode) && n == 0))
            failed = 1;
        else
            total += n;
    }
    if (total == 0) {
        fprintf(stderr, "replay: no input (usage: %s FILE|DIR...)\n", argv[0]);
        failed = 1;
    }
    printf("%s: %ld inputs replayed\n", argv[0], total);
    return failed;
}
