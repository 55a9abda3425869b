/* sqlprof.c - LD_PRELOAD helper for the benchmarks: time every SQL statement a process runs.
 *
 * Wraps sqlite3_step and sqlite3_exec (the calls a program makes through the dynamic
 * linker), sums their wall time and count per statement text, and at exit writes one line
 * per statement, most expensive first, to the file named by SQLPROF_OUT (else stderr):
 *   total_ms<TAB>steps<TAB>sql
 * Time spent in sqlite3_close (the final WAL checkpoint) is reported as "(close)".
 * Every connection a process opens on a file gets a commit hook: the line
 *   0<TAB>N<TAB>(commits)
 * counts the write transactions committed (explicit COMMITs and autocommitted statements
 * alike; read-only transactions are not counted).
 */
#include <dlfcn.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_STMTS 512

static struct {
        char *sql;
        unsigned long long ns, n;
} stats[MAX_STMTS];
static size_t n_stats;
static unsigned long long n_commits;

static unsigned long long now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (unsigned long long) ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void add(const char *sql, unsigned long long ns)
{
        size_t i;

        if (!sql)
                sql = "(unknown)";
        for (i = 0; i < n_stats && strcmp(stats[i].sql, sql) != 0; i++)
                ;
        if (i == n_stats) {
                if (n_stats == MAX_STMTS)
                        return;
                stats[n_stats++].sql = strdup(sql);
        }
        stats[i].ns += ns;
        stats[i].n++;
}

static void *real(const char *name)
{
        return dlsym(RTLD_NEXT, name);
}

int sqlite3_step(sqlite3_stmt *st)
{
        static int (*fn)(sqlite3_stmt *);
        unsigned long long t0 = now_ns();
        int rc;

        if (!fn)
                fn = (int (*)(sqlite3_stmt *)) real("sqlite3_step");
        rc = fn(st);
        add(sqlite3_sql(st), now_ns() - t0);
        return rc;
}

int sqlite3_exec(sqlite3 *db, const char *sql, int (*cb)(void *, int, char **, char **), void *arg,
                 char **err)
{
        static int (*fn)(sqlite3 *, const char *, int (*)(void *, int, char **, char **), void *, char **);
        unsigned long long t0 = now_ns();
        int rc;

        if (!fn)
                fn = (typeof(fn)) real("sqlite3_exec");
        rc = fn(db, sql, cb, arg, err);
        add(sql, now_ns() - t0);
        return rc;
}

static int on_commit(void *unused)
{
        (void) unused;
        n_commits++;
        return 0; /* let it commit */
}

static void hook(sqlite3 *db, const char *path)
{
        if (db && path && *path && strcmp(path, ":memory:") != 0)
                sqlite3_commit_hook(db, on_commit, NULL);
}

int sqlite3_open_v2(const char *path, sqlite3 **db, int flags, const char *vfs)
{
        static int (*fn)(const char *, sqlite3 **, int, const char *);
        int rc;

        if (!fn)
                fn = (typeof(fn)) real("sqlite3_open_v2");
        rc = fn(path, db, flags, vfs);
        if (rc == SQLITE_OK)
                hook(*db, path);
        return rc;
}

int sqlite3_open(const char *path, sqlite3 **db)
{
        static int (*fn)(const char *, sqlite3 **);
        int rc;

        if (!fn)
                fn = (typeof(fn)) real("sqlite3_open");
        rc = fn(path, db);
        if (rc == SQLITE_OK)
                hook(*db, path);
        return rc;
}

int sqlite3_close(sqlite3 *db)
{
        static int (*fn)(sqlite3 *);
        unsigned long long t0 = now_ns();
        int rc;

        if (!fn)
                fn = (int (*)(sqlite3 *)) real("sqlite3_close");
        rc = fn(db);
        add("(close)", now_ns() - t0);
        return rc;
}

static int by_time(const void *a, const void *b)
{
        const typeof(stats[0]) *x = a, *y = b;

        return x->ns < y->ns ? 1 : x->ns > y->ns ? -1 : 0;
}

__attribute__((destructor)) static void report(void)
{
        const char *path = getenv("SQLPROF_OUT");
        FILE *f = path ? fopen(path, "we") : stderr;

        if (!f)
                return;
        qsort(stats, n_stats, sizeof(stats[0]), by_time);
        for (size_t i = 0; i < n_stats; i++)
                fprintf(f, "%.3f\t%llu\t%s\n", stats[i].ns / 1e6, stats[i].n, stats[i].sql);
        fprintf(f, "0\t%llu\t(commits)\n", n_commits);
        if (f != stderr)
                fclose(f);
}
