/* plan.c - due times of the scan rules, all in one place. */
#include <stdio.h>
#include <string.h>

#include "plan.h"

int64_t plan_cutoff(const config_t *c, int64_t starts_at, int64_t closes_at)
{
        return closes_at ? closes_at : clock_shift(starts_at, &c->booking_cutoff, -1);
}

bool plan_bookable(const config_t *c, const session_t *s, int64_t now)
{
        return s->status == SESSION_OPEN && now < s->starts_at &&
               now < plan_cutoff(c, s->starts_at, s->closes_at);
}

int64_t plan_reminder_at(const config_t *c, int64_t starts_at, size_t i)
{
        return clock_shift(starts_at, &c->reminders_elearning[i], -1);
}

int plan_due_reminder(const config_t *c, int64_t starts_at, int64_t now)
{
        int due = -1;

        if (now >= starts_at)
                return -1;
        for (size_t i = 0; i < c->n_reminders_elearning; i++)
                if (plan_reminder_at(c, starts_at, i) <= now)
                        due = (int) i;
        return due;
}

int64_t plan_joining_at(const config_t *c, int64_t starts_at)
{
        return clock_shift(starts_at, &c->reminder_joining_link, -1);
}

int64_t plan_follow_up_at(const config_t *c, int64_t ends_at)
{
        return c->follow_up_enabled ? clock_shift(ends_at, &c->reminder_follow_up, +1) : 0;
}

int64_t plan_forget_at(const config_t *c, int64_t ends_at)
{
        return clock_shift(ends_at, &c->retention, +1);
}

void plan_duration_name(const duration_t *d, char *buf, size_t n)
{
        int64_t s = d->secs;
        size_t len = 0;

        buf[0] = '\0';
        if (d->days)
                len += snprintf(buf + len, n - len, "%dd", d->days);
        if (s >= 3600 && len < n)
                len += snprintf(buf + len, n - len, "%lldh", (long long) (s / 3600));
        s %= 3600;
        if (s >= 60 && len < n)
                len += snprintf(buf + len, n - len, "%lldm", (long long) (s / 60));
        s %= 60;
        if ((s || !len) && len < n)
                snprintf(buf + len, n - len, "%llds", (long long) s);
}

static void consider(int64_t t, int64_t after, int64_t *best)
{
        if (t > after && t < *best)
                *best = t;
}

int64_t plan_next_moment(const config_t *c, int64_t starts_at, int64_t ends_at,
                         int64_t closes_at, int64_t after)
{
        int64_t best = INT64_MAX;

        consider(plan_cutoff(c, starts_at, closes_at), after, &best);
        for (size_t i = 0; i < c->n_reminders_elearning; i++)
                consider(plan_reminder_at(c, starts_at, i), after, &best);
        consider(plan_joining_at(c, starts_at), after, &best);
        consider(starts_at, after, &best);
        consider(ends_at, after, &best);
        if (c->follow_up_enabled)
                consider(plan_follow_up_at(c, ends_at), after, &best);
        consider(plan_forget_at(c, ends_at), after, &best);
        return best;
}
