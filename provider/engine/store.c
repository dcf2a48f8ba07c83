/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Store directory I/O (see store.h). Every path is resolved relative to one
 * directory descriptor, opened once; files are opened with O_NOFOLLOW and
 * O_NONBLOCK (a planted FIFO must not block a server) and checked to be
 * regular files.
 */
#include "engine/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <stdatomic.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "engine/clock.h"
#include "engine/log.h"

/* The file set of one certificate: the suffixes and caps live here only. */
#define SUFFIX_RESPONSE ".der"
#define SUFFIX_CHAIN    ".pem"
#define SUFFIX_STATE    ".state"
#define SUFFIX_LOCK     ".lock"
#define NAME_MAX_LEN    96
#define ID_HEX_LEN      64 /* a store id: hex SHA-256 */
#define STATE_CAP       8192
#define CHAIN_CAP       65536 /* a leaf and its issuer in PEM */
/* Who may read what (docs/design-notes.md, "Who may read and write the
 * store"): responses and chains are public data; the state and the lock are
 * not for other users (flock needs only read access, so a readable lock
 * file lets any local user stop the fetches). */
#define MODE_PUBLIC  0644
#define MODE_PRIVATE 0640

/* How often one store handle looks for the temp files of dead writers: a
 * scan of the whole directory, so not at every lock (that made a pass over
 * N certificates O(N^2)). The first lock of a handle scans. */
#define CLEAN_INTERVAL_MS (3600 * 1000LL)

struct stp_store {
    char *dir;
    int dirfd;
    atomic_llong next_clean_ms; /* 0: at the first lock */
    atomic_ulong scans;
};

int stp_store_alive(struct stp_store *st)
{
    struct stat sb;

    return fstat(st->dirfd, &sb) == 0 && sb.st_nlink > 0;
}

int stp_store_id_valid(const char *id)
{
    size_t i;

    for (i = 0; i < 64; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return 0;
    return id[64] == '\0';
}

static int file_name(char *buf, const char *id, const char *suffix)
{
    if (!stp_store_id_valid(id) || strlen(suffix) > 16)
        return 0;
    snprintf(buf, NAME_MAX_LEN, "%s%s", id, suffix);
    return 1;
}

static int mkdir_p(const char *dir)
{
    char path[4096];
    size_t i, len = strlen(dir);

    if (len == 0 || len >= sizeof(path))
        return 0;
    memcpy(path, dir, len + 1);
    for (i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        path[i] = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return 0;
        path[i] = dir[i];
    }
    return 1;
}

#define MODE_SHARED_DIR 02770

/* The files of the directory <fd> that we may change get group <gid>. */
static void regroup_files(int fd, gid_t gid)
{
    int dfd = dup(fd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    struct dirent *de;
    struct stat sb;

    if (d == NULL) {
        if (dfd >= 0)
            close(dfd);
        return;
    }
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.'
            && fstatat(fd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0
            && S_ISREG(sb.st_mode) && sb.st_gid != gid
            && (geteuid() == 0 || sb.st_uid == geteuid()))
            fchownat(fd, de->d_name, (uid_t)-1, gid, AT_SYMLINK_NOFOLLOW);
    closedir(d);
}

/* The shared layout on the open directory <fd> (see store.h). */
static int keep_shared(int fd, const char *dir, const char *group,
                       struct stp_err *err)
{
    struct group grbuf, *gr = NULL;
    char buf[16384]; /* the group's member list */
    struct stat sb;
    int e;

    /* any thread may open the store: the reentrant lookup */
    if ((e = getgrnam_r(group, &grbuf, buf, sizeof(buf), &gr)) != 0)
        return stp_err_set(err, STP_E_STORE, e,
                           "store_group '%s': cannot be looked up: %s", group,
                           strerror(e));
    if (gr == NULL)
        return stp_err_set(err, STP_E_STORE, ENOENT,
                           "store_group '%s': no such group", group);
    if (fstat(fd, &sb) != 0)
        return stp_err_set(err, STP_E_STORE, errno, "store_dir '%s': %s", dir,
                           strerror(errno));
    if (sb.st_gid == gr->gr_gid && (sb.st_mode & 07777) == MODE_SHARED_DIR)
        return 1;
    if (geteuid() == 0 || sb.st_uid == geteuid()) {
        if (fchown(fd, (uid_t)-1, gr->gr_gid) == 0
            && fchmod(fd, MODE_SHARED_DIR) == 0) {
            regroup_files(fd, gr->gr_gid);
            STP_LOG_INFO("store",
                         "store_dir '%s': made group %s's, setgid, mode 2770 "
                         "(store_group), and its files group %s's",
                         dir, group, group);
            return 1;
        }
    }
    STP_LOG_WARN("store",
                 "store_dir '%s' is not group %s's with mode 2770 "
                 "(store_group): other servers' users may not write it; "
                 "fix: chgrp -R %s '%s' && chmod 2770 '%s'",
                 dir, group, group, dir, dir);
    return 1;
}

int stp_store_open(const char *dir, int create, struct stp_store **out,
                   struct stp_err *err)
{
    return stp_store_open_shared(dir, create, NULL, out, err);
}

int stp_store_open_shared(const char *dir, int create, const char *group,
                          struct stp_store **out, struct stp_err *err)
{
    struct stp_store *st;
    struct stat sb;
    int fd;

    *out = NULL;
    if (create && access(dir, F_OK) != 0) {
        /* the parents as before; the store itself with the layout */
        char parent[4096];
        size_t n = strlen(dir);

        while (n > 1 && dir[n - 1] == '/')
            n--;
        snprintf(parent, sizeof(parent), "%.*s", (int)n, dir);
        if (strrchr(parent, '/') != NULL && strrchr(parent, '/') != parent)
            *strrchr(parent, '/') = '\0';
        else
            parent[0] = '\0';
        if ((parent[0] != '\0' && !mkdir_p(parent))
            || (mkdir(dir, group != NULL ? 0770 : 0755) != 0
                && errno != EEXIST))
            return stp_err_set(err, STP_E_STORE, errno,
                               "store_dir '%s': cannot create: %s", dir,
                               strerror(errno));
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return stp_err_set(err, STP_E_STORE, errno,
                           "store_dir '%s': cannot open: %s", dir,
                           strerror(errno));
    if (group != NULL && !keep_shared(fd, dir, group, err)) {
        close(fd);
        return 0;
    }
    if (fstat(fd, &sb) == 0 && (sb.st_mode & S_IWOTH)
        && !(sb.st_mode & S_ISVTX))
        STP_LOG_WARN("store",
                     "store_dir '%s' is writable by every user: anyone can "
                     "plant files there (they are verified before use)",
                     dir);
    st = OPENSSL_zalloc(sizeof(*st));
    if (st == NULL || (st->dir = OPENSSL_strdup(dir)) == NULL) {
        OPENSSL_free(st);
        close(fd);
        return stp_err_set(err, STP_E_INTERNAL, 0, "out of memory");
    }
    st->dirfd = fd;
    *out = st;
    return 1;
}

void stp_store_close(struct stp_store *st)
{
    if (st == NULL)
        return;
    close(st->dirfd);
    OPENSSL_free(st->dir);
    OPENSSL_free(st);
}

const char *stp_store_dir(const struct stp_store *st)
{
    return st->dir;
}

static int read_all(int fd, unsigned char *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        got += (size_t)n;
    }
    return 1;
}

/* Reads the regular file <name> of the directory (at most <cap> bytes). */
static int read_named(struct stp_store *st, const char *name, size_t cap,
                      unsigned char **data, size_t *len, time_t *mtime,
                      struct stp_err *err)
{
    unsigned char *buf;
    struct stat sb;
    int fd;

    *data = NULL;
    *len = 0;
    fd = openat(st->dirfd, name,
                O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return stp_err_set(err, STP_E_STORE, errno, "%s/%s: %s", st->dir, name,
                           strerror(errno));
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return stp_err_set(err, STP_E_STORE, EINVAL,
                           "%s/%s: not a regular file", st->dir, name);
    }
    if ((size_t)sb.st_size > cap) {
        close(fd);
        return stp_err_set(err, STP_E_TOO_LARGE, (long)sb.st_size,
                           "%s/%s: %lld bytes, over the %zu byte cap", st->dir,
                           name, (long long)sb.st_size, cap);
    }
    buf = OPENSSL_malloc(sb.st_size > 0 ? (size_t)sb.st_size : 1);
    if (buf == NULL || !read_all(fd, buf, (size_t)sb.st_size)) {
        OPENSSL_free(buf);
        close(fd);
        return stp_err_set(err, STP_E_STORE, EIO, "%s/%s: read failed", st->dir,
                           name);
    }
    close(fd);
    *data = buf;
    *len = (size_t)sb.st_size;
    if (mtime != NULL)
        *mtime = sb.st_mtime;
    return 1;
}

static int read_file(struct stp_store *st, const char *id, const char *suffix,
                     size_t cap, unsigned char **data, size_t *len,
                     struct stp_err *err)
{
    char name[NAME_MAX_LEN];

    *data = NULL;
    *len = 0;
    if (!file_name(name, id, suffix))
        return stp_err_set(err, STP_E_STORE, EINVAL, "invalid store id");
    return read_named(st, name, cap, data, len, NULL, err);
}

static int write_all(int fd, const unsigned char *buf, size_t len)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = write(fd, buf + done, len - done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        done += (size_t)n;
    }
    return 1;
}

/*
 * A file of root's in a store that belongs to another user or group (a
 * server's user: nginx's workers made it as www-data, or the operator gave
 * it to them) is given the directory's owner and group, as if they had
 * made it. Root writes there by hand (`ocspstaple fetch`) and, for a
 * moment, as a server worker between its fork and its setuid, when its
 * refresher already runs; a root:root 0640 lock or state file then locked
 * the server's user out for good: it fetched without the lock (one request
 * more) and lost its backoff. The directory's owner could replace any of
 * its files anyway: this gives them nothing new. Files not root's are left
 * alone (another user's, which root did not make).
 */
static void own_as_dir(struct stp_store *st, int fd)
{
    struct stat d, f;

    if (geteuid() != 0 || fstat(st->dirfd, &d) != 0 || fstat(fd, &f) != 0
        || f.st_uid != 0 || (d.st_uid == f.st_uid && d.st_gid == f.st_gid))
        return;
    if (fchown(fd, d.st_uid, d.st_gid) != 0)
        STP_LOG_DEBUG("store", "%s: cannot give a file to uid %ld gid %ld: %s",
                      st->dir, (long)d.st_uid, (long)d.st_gid, strerror(errno));
}

/* Creates a fresh temp file next to <name>; O_EXCL defeats planted links. */
static int open_temp(struct stp_store *st, const char *name, char *tmp,
                     size_t tmplen)
{
    int attempt, fd;

    for (attempt = 0; attempt < 16; attempt++) {
        unsigned int r = 0;

        if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
            r = (unsigned int)getpid() * 2654435761u + (unsigned int)attempt;
        snprintf(tmp, tmplen, ".%s.%08x.tmp", name, r);
        fd = openat(st->dirfd, tmp,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0)
            own_as_dir(st, fd);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

/* Writes the file <name> of the directory: a temp file, then a rename;
 * with <durable>, synced to the disk first (counters need not be). */
static int write_named_once(struct stp_store *st, const char *name, mode_t mode,
                            const unsigned char *data, size_t len, int durable,
                            struct stp_err *err)
{
    char tmp[NAME_MAX_LEN + 32];
    int fd, saved;

    fd = open_temp(st, name, tmp, sizeof(tmp));
    if (fd < 0)
        return stp_err_set(err, STP_E_STORE, errno,
                           "%s/%s: cannot create a temp file: %s", st->dir,
                           name, strerror(errno));
    if (fchmod(fd, mode) != 0 || !write_all(fd, data, len)
        || (durable && fsync(fd) != 0))
        goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (renameat(st->dirfd, tmp, st->dirfd, name) != 0)
        goto fail;
    if (durable)
        fsync(st->dirfd);
    return 1;
fail:
    saved = errno;
    if (fd >= 0)
        close(fd);
    unlinkat(st->dirfd, tmp, 0);
    return stp_err_set(err, STP_E_STORE, saved, "%s/%s: write failed: %s",
                       st->dir, name, strerror(saved));
}

/*
 * write_named_once(), made again once when it failed for want of a
 * permission: a server worker's refresher starts right after the fork, as
 * root, and the server drops to its user a moment later; a temp file made
 * by root before the setuid (and not yet given to the store's owner) can no
 * longer be changed by the same thread after it. The second try makes its
 * temp file as the user the process now is. (Without it a response was
 * held in memory only and another worker fetched it again.)
 */
static int write_named(struct stp_store *st, const char *name, mode_t mode,
                       const unsigned char *data, size_t len, int durable,
                       struct stp_err *err)
{
    if (write_named_once(st, name, mode, data, len, durable, err))
        return 1;
    if (err->detail != EPERM && err->detail != EACCES)
        return 0;
    return write_named_once(st, name, mode, data, len, durable, err);
}

static int write_file(struct stp_store *st, const char *id, const char *suffix,
                      mode_t mode, const unsigned char *data, size_t len,
                      struct stp_err *err)
{
    char name[NAME_MAX_LEN];

    if (!file_name(name, id, suffix))
        return stp_err_set(err, STP_E_STORE, EINVAL, "invalid store id");
    return write_named(st, name, mode, data, len, 1, err);
}

int stp_store_read_response(struct stp_store *st, const char *id, size_t cap,
                            unsigned char **der, size_t *len,
                            struct stp_err *err)
{
    return read_file(st, id, SUFFIX_RESPONSE, cap, der, len, err);
}

int stp_store_write_response(struct stp_store *st, const char *id,
                             const unsigned char *der, size_t len,
                             struct stp_err *err)
{
    return write_file(st, id, SUFFIX_RESPONSE, MODE_PUBLIC, der, len, err);
}

int stp_store_write_chain(struct stp_store *st, const char *id, X509 *leaf,
                          X509 *issuer, struct stp_err *err)
{
    BIO *mem = BIO_new(BIO_s_mem());
    BUF_MEM *bm = NULL;
    int ok = 0;

    if (mem == NULL || !PEM_write_bio_X509(mem, leaf)
        || (issuer != NULL && !PEM_write_bio_X509(mem, issuer))
        || BIO_get_mem_ptr(mem, &bm) <= 0)
        stp_err_set(err, STP_E_INTERNAL, 0, "%s/%s%s: cannot encode the chain",
                    st->dir, id, SUFFIX_CHAIN);
    else
        ok = write_file(st, id, SUFFIX_CHAIN, MODE_PUBLIC,
                        (const unsigned char *)bm->data, bm->length, err);
    BIO_free(mem);
    return ok;
}

STACK_OF(X509) *stp_store_read_chain(struct stp_store *st, const char *id,
                                     struct stp_err *err)
{
    unsigned char *pem = NULL;
    size_t len = 0;
    STACK_OF(X509) *chain = NULL;
    BIO *b = NULL;
    X509 *x;

    if (!read_file(st, id, SUFFIX_CHAIN, CHAIN_CAP, &pem, &len, err))
        return NULL;
    if ((chain = sk_X509_new_null()) == NULL
        || (b = BIO_new_mem_buf(pem, (int)len)) == NULL) {
        stp_err_set(err, STP_E_INTERNAL, 0, "out of memory");
        goto fail;
    }
    ERR_set_mark();
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
        if (!sk_X509_push(chain, x))
            X509_free(x);
    ERR_pop_to_mark();
    if (sk_X509_num(chain) == 0) {
        stp_err_set(err, STP_E_MALFORMED, 0, "%s/%s%s: no certificate in it",
                    st->dir, id, SUFFIX_CHAIN);
        goto fail;
    }
    BIO_free(b);
    OPENSSL_free(pem);
    return chain;
fail:
    sk_X509_pop_free(chain, X509_free);
    BIO_free(b);
    OPENSSL_free(pem);
    return NULL;
}

/* The pid holding a flock(2) lock on <fd>'s file, from /proc/locks, or 0. */
static long lock_holder(int fd)
{
    struct stat sb;
    char line[256];
    FILE *f;
    long pid = 0;

    if (fstat(fd, &sb) != 0 || (f = fopen("/proc/locks", "re")) == NULL)
        return 0;
    while (pid == 0 && fgets(line, sizeof(line), f) != NULL) {
        unsigned maj, min;
        unsigned long ino;
        long p;
        char type[16];

        if (sscanf(line, "%*s %15s %*s %*s %ld %x:%x:%lu", type, &p, &maj, &min,
                   &ino)
                == 5
            && strcmp(type, "FLOCK") == 0 && ino == (unsigned long)sb.st_ino
            && maj == major(sb.st_dev) && min == minor(sb.st_dev))
            pid = p;
    }
    fclose(f);
    return pid;
}

/* " (pid N, PROGRAM)" for the holder of <fd>'s lock, or "". */
static void describe_holder(int fd, char *buf, size_t len)
{
    long pid = lock_holder(fd);
    char path[64], comm[64] = "";
    FILE *f;

    buf[0] = '\0';
    if (pid <= 0)
        return;
    snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
    if ((f = fopen(path, "re")) != NULL) {
        if (fgets(comm, sizeof(comm), f) != NULL)
            comm[strcspn(comm, "\n")] = '\0';
        fclose(f);
    }
    snprintf(buf, len, " (pid %ld%s%s)", pid, comm[0] ? ", " : "", comm);
}

static void clean_temps(struct stp_store *st, const char *locked_id);

/* Under <id>'s lock: the occasional scan, by one thread at a time. */
static void maybe_clean(struct stp_store *st, const char *id)
{
    long long now = stp_monotonic_ms(), due = atomic_load(&st->next_clean_ms);

    if (now < due
        || !atomic_compare_exchange_strong(&st->next_clean_ms, &due,
                                           now + CLEAN_INTERVAL_MS))
        return;
    clean_temps(st, id);
}

/*
 * Opens (creating it) the lock or slot file <name> for flock. A file this
 * user cannot open at all (root:root 0640: made by a server worker as root
 * in the moment before its setuid, and not given to the store's owner in
 * time, or left by an older version) is replaced by one of ours (a temp
 * file renamed over it): else the user would fetch without the lock for as
 * long as the file stays. A holder of the old file keeps it until it is
 * done; at most one fetch overlaps, once. Returns the descriptor, or -1
 * with errno.
 */
static int open_lockfile(struct stp_store *st, const char *name)
{
    char tmp[NAME_MAX_LEN + 32];
    int fd, saved;

    fd = openat(st->dirfd, name,
                O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
                MODE_PRIVATE);
    if (fd < 0 && (errno == EACCES || errno == EROFS))
        fd = openat(st->dirfd, name,
                    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0 || errno != EACCES)
        goto done;
    if ((fd = open_temp(st, name, tmp, sizeof(tmp))) < 0) {
        errno = EACCES;
        return -1;
    }
    if (fchmod(fd, MODE_PRIVATE) != 0
        || renameat(st->dirfd, tmp, st->dirfd, name) != 0) {
        saved = errno;
        close(fd);
        unlinkat(st->dirfd, tmp, 0);
        errno = saved == EPERM ? EACCES : saved;
        return -1;
    }
    STP_LOG_INFO("store",
                 "%s/%s: could not be opened by this user (another user's, "
                 "mode 0640: a server worker's before its setuid?): "
                 "replaced by one of its own",
                 st->dir, name);
    /* the descriptor is that of the file now at <name>: O_WRONLY is
     * enough for flock */
done:
    if (fd >= 0)
        own_as_dir(st, fd);
    return fd;
}

int stp_store_lock(struct stp_store *st, const char *id, long wait_ms,
                   struct stp_err *err)
{
    char name[NAME_MAX_LEN], holder[96];
    struct stat sb;
    long waited = 0;
    int fd;

    if (!file_name(name, id, SUFFIX_LOCK)) {
        stp_err_set(err, STP_E_STORE, EINVAL, "invalid store id");
        return -1;
    }
    fd = open_lockfile(st, name);
    if (fd < 0) {
        stp_err_set(err, STP_E_STORE, errno, "%s/%s: %s", st->dir, name,
                    strerror(errno));
        return -1;
    }
    /* a lock file that other users can read (an older version made them
     * 0644) lets them hold it: tighten it if it is ours */
    if (fstat(fd, &sb) == 0 && (sb.st_mode & S_IROTH) && sb.st_uid == geteuid())
        fchmod(fd, sb.st_mode & MODE_PRIVATE & 07777);
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if ((errno != EWOULDBLOCK && errno != EINTR) || waited >= wait_ms) {
            int saved = errno;

            if (saved == EWOULDBLOCK)
                describe_holder(fd, holder, sizeof(holder));
            close(fd);
            if (saved == EWOULDBLOCK && wait_ms > 0)
                stp_err_set(err, STP_E_BUSY, saved,
                            "%s/%s: held by another process%s for over %ld ms",
                            st->dir, name, holder, wait_ms);
            else if (saved == EWOULDBLOCK)
                stp_err_set(err, STP_E_BUSY, saved,
                            "%s/%s: held by another process%s", st->dir, name,
                            holder);
            else
                stp_err_set(err, STP_E_STORE, saved, "%s/%s: %s", st->dir, name,
                            strerror(saved));
            return -1;
        }
        poll(NULL, 0, 20);
        waited += 20;
    }
    maybe_clean(st, id);
    return fd;
}

/* "slot-<16 hex>-<k>": the first 8 bytes of the SHA-256 of the host key. */
static int slot_name(char *buf, size_t len, const char *host_key, int k)
{
    unsigned char md[32];
    int i, off;

    if (!EVP_Digest(host_key, strlen(host_key), md, NULL, EVP_sha256(), NULL))
        return 0;
    off = snprintf(buf, len, "slot-");
    for (i = 0; i < 8; i++)
        off += snprintf(buf + off, len - (size_t)off, "%02x", md[i]);
    snprintf(buf + off, len - (size_t)off, "-%d", k);
    return 1;
}

int stp_store_slot_try(struct stp_store *st, const char *host_key, int cap)
{
    char name[NAME_MAX_LEN];
    unsigned int start = 0;
    int i, fd, err = EWOULDBLOCK;

    if (cap <= 0 || getrandom(&start, sizeof(start), GRND_NONBLOCK) < 0)
        start = (unsigned int)getpid();
    for (i = 0; i < cap; i++) {
        int k = (int)((start + (unsigned int)i) % (unsigned int)cap);

        if (!slot_name(name, sizeof(name), host_key, k)) {
            err = ENOMEM;
            break;
        }
        fd = open_lockfile(st, name);
        if (fd < 0) {
            err = errno;
            break;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return fd;
        close(fd);
    }
    errno = err;
    return -1;
}

void stp_store_unlock(int fd)
{
    if (fd >= 0) {
        flock(fd, LOCK_UN);
        close(fd);
    }
}

/* Copies <v> into <dst> with control characters replaced by spaces. */
static void copy_clean(char *dst, size_t cap, const char *v)
{
    size_t i;

    for (i = 0; i + 1 < cap && v[i] != '\0'; i++)
        dst[i] = (unsigned char)v[i] < 0x20 ? ' ' : v[i];
    dst[i] = '\0';
}

static void parse_state_line(struct stp_state *s, char *line)
{
    char *eq = strchr(line, '=');
    const char *v;

    if (eq == NULL)
        return;
    *eq = '\0';
    v = eq + 1;
    if (strcmp(line, "last_attempt") == 0)
        s->last_attempt = (time_t)strtoll(v, NULL, 10);
    else if (strcmp(line, "last_success") == 0)
        s->last_success = (time_t)strtoll(v, NULL, 10);
    else if (strcmp(line, "next_attempt") == 0)
        s->next_attempt = (time_t)strtoll(v, NULL, 10);
    else if (strcmp(line, "failures") == 0)
        s->failures = (unsigned)strtoul(v, NULL, 10);
    else if (strcmp(line, "last_error") == 0)
        copy_clean(s->last_error, sizeof(s->last_error), v);
    else if (strcmp(line, "url") == 0)
        copy_clean(s->url, sizeof(s->url), v);
    else if (strcmp(line, "subject") == 0)
        copy_clean(s->subject, sizeof(s->subject), v);
    else if (strcmp(line, "serial") == 0)
        copy_clean(s->serial, sizeof(s->serial), v);
    else if (strcmp(line, "role") == 0 && strcmp(v, "client") == 0)
        snprintf(s->role, sizeof(s->role), "client");
}

int stp_store_read_state(struct stp_store *st, const char *id,
                         struct stp_state *out)
{
    unsigned char *data = NULL;
    char *text, *line, *save = NULL;
    size_t len = 0;

    memset(out, 0, sizeof(*out));
    if (!read_file(st, id, SUFFIX_STATE, STATE_CAP, &data, &len, NULL))
        return 0;
    text = OPENSSL_malloc(len + 1);
    if (text == NULL) {
        OPENSSL_free(data);
        return 0;
    }
    memcpy(text, data, len);
    text[len] = '\0';
    OPENSSL_free(data);
    for (line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save))
        parse_state_line(out, line);
    OPENSSL_free(text);
    return 1;
}

int stp_store_write_state(struct stp_store *st, const char *id,
                          const struct stp_state *s, struct stp_err *err)
{
    char buf[STATE_CAP], err_clean[sizeof(s->last_error)];
    char url[sizeof(s->url)], subj[sizeof(s->subject)];
    char serial[sizeof(s->serial)];
    int n;

    copy_clean(err_clean, sizeof(err_clean), s->last_error);
    copy_clean(url, sizeof(url), s->url);
    copy_clean(subj, sizeof(subj), s->subject);
    copy_clean(serial, sizeof(serial), s->serial);
    n = snprintf(buf, sizeof(buf),
                 "last_attempt=%lld\nlast_success=%lld\nnext_attempt=%lld\n"
                 "failures=%u\nlast_error=%s\nurl=%s\nsubject=%s\n"
                 "serial=%s\n%s",
                 (long long)s->last_attempt, (long long)s->last_success,
                 (long long)s->next_attempt, s->failures, err_clean, url, subj,
                 serial, strcmp(s->role, "client") == 0 ? "role=client\n" : "");
    if (n < 0 || (size_t)n >= sizeof(buf))
        return stp_err_set(err, STP_E_INTERNAL, 0, "state too long");
    return write_file(st, id, SUFFIX_STATE, MODE_PRIVATE,
                      (const unsigned char *)buf, (size_t)n, err);
}

/* The directory, open for a listing from its start, or NULL with <err>. */
static DIR *open_listing(struct stp_store *st, struct stp_err *err)
{
    int fd = dup(st->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

    if (d == NULL) {
        int saved = errno;

        if (fd >= 0)
            close(fd);
        stp_err_set(err, STP_E_STORE, saved, "%s: cannot list: %s", st->dir,
                    strerror(saved));
        return NULL;
    }
    rewinddir(d);
    return d;
}

static int cmp_ids(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int id_of_entry(const char *name, char *id)
{
    const char *dot = strchr(name, '.');

    if (dot == NULL || dot - name != 64
        || (strcmp(dot, SUFFIX_RESPONSE) != 0
            && strcmp(dot, SUFFIX_STATE) != 0))
        return 0;
    memcpy(id, name, 64);
    id[64] = '\0';
    return stp_store_id_valid(id);
}

int stp_store_list(struct stp_store *st, void (*fn)(void *arg, const char *id),
                   void *arg, struct stp_err *err)
{
    struct dirent *de;
    char **ids = NULL, id[65];
    size_t n = 0, cap = 0, i;
    int unique = 0;
    DIR *d = open_listing(st, err);

    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        if (!id_of_entry(de->d_name, id))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nids = OPENSSL_realloc(ids, ncap * sizeof(*ids));

            if (nids == NULL)
                break;
            ids = nids;
            cap = ncap;
        }
        ids[n] = OPENSSL_strdup(id);
        if (ids[n] != NULL)
            n++;
    }
    closedir(d);
    if (n > 0)
        qsort(ids, n, sizeof(*ids), cmp_ids);
    for (i = 0; i < n; i++) {
        if (i == 0 || strcmp(ids[i], ids[i - 1]) != 0) {
            fn(arg, ids[i]);
            unique++;
        }
    }
    for (i = 0; i < n; i++)
        OPENSSL_free(ids[i]);
    OPENSSL_free(ids);
    return unique;
}

/* Whether no live writer holds <id>'s lock (we may, as <locked_id>). */
static int writer_gone(struct stp_store *st, const char *id,
                       const char *locked_id)
{
    char name[NAME_MAX_LEN];
    int fd, gone;

    if (locked_id != NULL && strcmp(id, locked_id) == 0)
        return 1;
    if (!file_name(name, id, SUFFIX_LOCK))
        return 0;
    fd =
        openat(st->dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT; /* a writer creates it before writing */
    gone = flock(fd, LOCK_EX | LOCK_NB) == 0;
    if (gone)
        flock(fd, LOCK_UN);
    close(fd);
    return gone;
}

/*
 * Removes the temp files (".<id><suffix>.<8 hex>.tmp", as open_temp() names
 * them) whose writer is dead: nobody holds <id>'s lock (a live writer holds
 * it while it writes), or we do (<locked_id>).
 */
static void clean_temps(struct stp_store *st, const char *locked_id)
{
    struct dirent *de;
    char id[ID_HEX_LEN + 1];
    size_t n;
    int fd = dup(st->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    int removed = 0;

    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    atomic_fetch_add(&st->scans, 1);
    rewinddir(d);
    while ((de = readdir(d)) != NULL) {
        n = strlen(de->d_name);
        if (de->d_name[0] != '.' || n < ID_HEX_LEN + 5
            || strcmp(de->d_name + n - 4, ".tmp") != 0)
            continue;
        memcpy(id, de->d_name + 1, ID_HEX_LEN);
        id[ID_HEX_LEN] = '\0';
        if (stp_store_id_valid(id) && writer_gone(st, id, locked_id)
            && unlinkat(st->dirfd, de->d_name, 0) == 0)
            removed++;
    }
    closedir(d);
    if (removed > 0)
        STP_LOG_INFO("store",
                     "%s: removed %d temp file(s) left by writers that died",
                     st->dir, removed);
}

void stp_store_clean_temps(struct stp_store *st)
{
    clean_temps(st, NULL);
}

unsigned long stp_store_scans(struct stp_store *st)
{
    return atomic_load(&st->scans);
}

/* ---- per-process counters --------------------------------------------- */

#define METRICS_PREFIX "metrics-"
#define METRICS_CAP    65536

/* "<digits>-<digits>": a process and its start time. */
static int proc_valid(const char *proc)
{
    size_t i, n = strlen(proc), dash = 0;

    if (n == 0 || n > 40)
        return 0;
    for (i = 0; i < n; i++) {
        if (proc[i] == '-')
            dash++;
        else if (proc[i] < '0' || proc[i] > '9')
            return 0;
    }
    return dash == 1 && proc[0] != '-' && proc[n - 1] != '-';
}

static int write_proc_file(struct stp_store *st, const char *prefix,
                           const char *proc, const char *text,
                           struct stp_err *err)
{
    char name[NAME_MAX_LEN];

    if (!proc_valid(proc))
        return stp_err_set(err, STP_E_STORE, EINVAL, "invalid process name");
    snprintf(name, sizeof(name), "%s%s", prefix, proc);
    return write_named(st, name, MODE_PUBLIC, (const unsigned char *)text,
                       strlen(text), 0, err);
}

static int list_proc_files(struct stp_store *st, const char *prefix, size_t cap,
                           void (*fn)(void *arg, const char *proc,
                                      const char *text, time_t mtime),
                           void *arg, struct stp_err *err)
{
    struct dirent *de;
    int n = 0;
    DIR *d = open_listing(st, err);

    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        const char *proc = de->d_name + strlen(prefix);
        unsigned char *data = NULL;
        size_t len = 0;
        time_t mtime = 0;
        struct stp_err e;
        char *text;

        if (strncmp(de->d_name, prefix, strlen(prefix)) != 0
            || !proc_valid(proc)
            || !read_named(st, de->d_name, cap, &data, &len, &mtime, &e))
            continue;
        text = OPENSSL_malloc(len + 1);
        if (text != NULL) {
            memcpy(text, data, len);
            text[len] = '\0';
            fn(arg, proc, text, mtime);
            n++;
        }
        OPENSSL_free(text);
        OPENSSL_free(data);
    }
    closedir(d);
    return n;
}

int stp_store_write_metrics(struct stp_store *st, const char *proc,
                            const char *text, struct stp_err *err)
{
    return write_proc_file(st, METRICS_PREFIX, proc, text, err);
}

int stp_store_list_metrics(struct stp_store *st,
                           void (*fn)(void *arg, const char *proc,
                                      const char *text, time_t mtime),
                           void *arg, struct stp_err *err)
{
    return list_proc_files(st, METRICS_PREFIX, METRICS_CAP, fn, arg, err);
}

/* ---- which process uses which entry ------------------------------------ */

#define USES_PREFIX "uses-"
#define USES_CAP    (16 * 1024 * 1024) /* some 250,000 certificates */

int stp_store_write_uses(struct stp_store *st, const char *proc,
                         const char *text, struct stp_err *err)
{
    return write_proc_file(st, USES_PREFIX, proc, text, err);
}

int stp_store_list_uses(struct stp_store *st,
                        void (*fn)(void *arg, const char *proc,
                                   const char *text, time_t mtime),
                        void *arg, struct stp_err *err)
{
    return list_proc_files(st, USES_PREFIX, USES_CAP, fn, arg, err);
}

int stp_store_remove_uses(struct stp_store *st, const char *proc)
{
    char name[NAME_MAX_LEN];

    if (!proc_valid(proc))
        return 0;
    snprintf(name, sizeof(name), "%s%s", USES_PREFIX, proc);
    return unlinkat(st->dirfd, name, 0) == 0 || errno == ENOENT;
}

unsigned long long stp_proc_start_time(long pid)
{
    char path[64], stat[1024], *p;
    FILE *f;
    size_t n;
    int field;

    if (pid > 0)
        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    else
        snprintf(path, sizeof(path), "/proc/self/stat");
    if ((f = fopen(path, "re")) == NULL)
        return 0;
    n = fread(stat, 1, sizeof(stat) - 1, f);
    fclose(f);
    stat[n] = '\0';
    /* field 22 (starttime), counted after the ")" that ends the name */
    p = strrchr(stat, ')');
    for (field = 2; p != NULL && field < 22; field++)
        p = strchr(p + 1, ' ');
    return p != NULL ? strtoull(p + 1, NULL, 10) : 0;
}

int stp_store_proc_alive(const char *proc)
{
    char *end;
    long pid;
    unsigned long long start;

    if (!proc_valid(proc))
        return 0;
    pid = strtol(proc, &end, 10);
    start = strtoull(end + 1, NULL, 10);
    if (pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno != EPERM))
        return 0;
    /* the same pid may be another process now: its start time says */
    return stp_proc_start_time(pid) == start;
}

/* ---- "something changed": the CLI tells running servers ------------------ */

#define CHANGED_NAME "changed"

static unsigned long long stamp_of(const struct stat *sb)
{
    return ((unsigned long long)sb->st_ino * 1000003ULL)
           ^ ((unsigned long long)sb->st_mtim.tv_sec * 1000000000ULL
              + (unsigned long long)sb->st_mtim.tv_nsec)
           ^ ((unsigned long long)sb->st_size << 40) ^ 1;
}

static unsigned long long stamp_named(struct stp_store *st, const char *name)
{
    struct stat sb;

    if (fstatat(st->dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0
        || !S_ISREG(sb.st_mode))
        return 0;
    return stamp_of(&sb);
}

int stp_store_mark_changed(struct stp_store *st, struct stp_err *err)
{
    char text[64];

    snprintf(text, sizeof(text), "%lld %ld\n", (long long)time(NULL),
             (long)getpid());
    return write_named(st, CHANGED_NAME, MODE_PUBLIC,
                       (const unsigned char *)text, strlen(text), 0, err);
}

unsigned long long stp_store_changed_stamp(struct stp_store *st)
{
    return stamp_named(st, CHANGED_NAME);
}

unsigned long long stp_store_response_stamp(struct stp_store *st,
                                            const char *id)
{
    char name[NAME_MAX_LEN];

    return file_name(name, id, SUFFIX_RESPONSE) ? stamp_named(st, name) : 0;
}

time_t stp_store_entry_time(struct stp_store *st, const char *id)
{
    static const char *const sfx[] = { SUFFIX_RESPONSE, SUFFIX_STATE };
    char name[NAME_MAX_LEN];
    struct stat sb;
    time_t t = 0;
    size_t i;

    for (i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++)
        if (file_name(name, id, sfx[i])
            && fstatat(st->dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0
            && sb.st_mtime > t)
            t = sb.st_mtime;
    return t;
}

int stp_store_remove(struct stp_store *st, const char *id, struct stp_err *err)
{
    static const char *const sfx[] = { SUFFIX_RESPONSE, SUFFIX_STATE,
                                       SUFFIX_CHAIN, SUFFIX_LOCK };
    char name[NAME_MAX_LEN];
    size_t i;
    int lock = stp_store_lock(st, id, 0, err), ok = 1;

    if (lock < 0)
        return 0;
    for (i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
        if (file_name(name, id, sfx[i]) && unlinkat(st->dirfd, name, 0) != 0
            && errno != ENOENT && ok) {
            ok = 0;
            stp_err_set(err, STP_E_STORE, errno, "%s/%s: cannot remove: %s",
                        st->dir, name, strerror(errno));
        }
    }
    stp_store_unlock(lock);
    return ok;
}
