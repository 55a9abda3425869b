/* testdb.h - what the unit tests that run against a real SQLite file share: local times,
 * a private directory, and SQL of their own beside the code under test. Include after
 * cmocka.h. */
#pragma once
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "db.h"

/* A local time like "2026-09-22 10:30" in the zone under test, as Unix seconds. */
static inline int64_t test_at(const char *local)
{
        int64_t t;

        if (clock_parse_time(local, &t) < 0)
                fail_msg("bad time %s", local);
        return t;
}

/* A fresh directory /tmp/NAME.XXXXXX in dir (64 bytes). */
static inline void test_dir_make(char dir[64], const char *name)
{
        snprintf(dir, 64, "/tmp/%s.XXXXXX", name);
        assert_non_null(mkdtemp(dir));
}

static inline void test_dir_remove(const char *dir)
{
        char cmd[160];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        (void) !system(cmd);
}

static inline void test_sql(db_t *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void test_sql(db_t *db, const char *fmt, ...)
{
        char *q = NULL, *err = NULL;
        va_list ap;

        va_start(ap, fmt);
        assert_true(vasprintf(&q, fmt, ap) >= 0);
        va_end(ap);
        if (sqlite3_exec(db_handle(db), q, NULL, NULL, &err) != SQLITE_OK)
                fail_msg("%s: %s", q, err);
        free(q);
}

/* The first column of the first row as an integer; -1 when there is no row. */
static inline int64_t test_int(db_t *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int64_t test_int(db_t *db, const char *fmt, ...)
{
        sqlite3_stmt *st = NULL;
        char *q = NULL;
        int64_t v = -1;
        va_list ap;

        va_start(ap, fmt);
        assert_true(vasprintf(&q, fmt, ap) >= 0);
        va_end(ap);
        if (sqlite3_prepare_v2(db_handle(db), q, -1, &st, NULL) != SQLITE_OK)
                fail_msg("%s: %s", q, sqlite3_errmsg(db_handle(db)));
        if (sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        free(q);
        return v;
}

/* The helpers as the tests call them, on their env's database. */
#define sql(e, ...) test_sql((e)->db, __VA_ARGS__)
#define int_query(e, ...) test_int((e)->db, __VA_ARGS__)
#define at(local) test_at(local)
