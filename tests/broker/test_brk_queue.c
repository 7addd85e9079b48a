/*  brk_queue: priority lanes, FIFO order, kinds, removal. */
#include <criterion/criterion.h>
#include "brk_queue.h"

static brk_job_t *
s_job (const char *kind, uint32_t priority, uint64_t seq)
{
    brk_job_t *j = brk_job_new ();
    snprintf (j->kind, sizeof j->kind, "%s", kind);
    snprintf (j->id, sizeof j->id, "j%llu", (unsigned long long) seq);
    j->priority = priority;
    j->seq = seq;
    return j;
}

Test (brk_queue, highest_priority_then_oldest)
{
    brk_queue_t *q = brk_queue_new ();
    brk_job_t *a = s_job ("noop", 0, 1), *b = s_job ("noop", 2, 5), *c = s_job ("noop", 2, 3);
    brk_queue_push (q, a);
    brk_queue_push (q, b);
    brk_queue_push (q, c);
    const char *kinds [] = { "noop" };
    cr_assert_eq (brk_queue_pop (q, kinds, 1, NULL), c);
    cr_assert_eq (brk_queue_pop (q, kinds, 1, NULL), b);
    cr_assert_eq (brk_queue_pop (q, kinds, 1, NULL), a);
    cr_assert_null (brk_queue_pop (q, kinds, 1, NULL));
    brk_job_destroy (&a);
    brk_job_destroy (&b);
    brk_job_destroy (&c);
    brk_queue_destroy (&q);
    brk_queue_destroy (&q);
}

Test (brk_queue, requeued_job_takes_its_original_place)
{
    brk_queue_t *q = brk_queue_new ();
    brk_job_t *j [4];
    for (int i = 0; i < 4; i++)
        j [i] = s_job ("noop", 1, (uint64_t) (10 + i));
    brk_queue_push (q, j [0]);
    brk_queue_push (q, j [2]);
    brk_queue_push (q, j [3]);
    brk_queue_push (q, j [1]);      // older than 2 and 3: goes before them
    const char *kinds [] = { "noop" };
    for (int i = 0; i < 4; i++)
        cr_assert_eq (brk_queue_pop (q, kinds, 1, NULL), j [i], "position %d", i);
    for (int i = 0; i < 4; i++)
        brk_job_destroy (&j [i]);
    brk_queue_destroy (&q);
}

Test (brk_queue, pop_only_matching_kinds_and_oldest_across_kinds)
{
    brk_queue_t *q = brk_queue_new ();
    brk_job_t *x = s_job ("bench.device", 1, 1), *y = s_job ("noop", 1, 2),
              *z = s_job ("quantize", 1, 3);
    brk_queue_push (q, z);
    brk_queue_push (q, y);
    brk_queue_push (q, x);
    const char *noop [] = { "noop" };
    const char *both [] = { "quantize", "bench.device" };
    cr_assert_eq (brk_queue_pop (q, noop, 1, NULL), y);
    cr_assert_eq (brk_queue_pop (q, both, 2, NULL), x);
    cr_assert_eq (brk_queue_size_kind (q, "quantize"), 1);
    brk_queue_remove (q, z);
    cr_assert_eq (brk_queue_size (q), 0);
    brk_job_destroy (&x);
    brk_job_destroy (&y);
    brk_job_destroy (&z);
    brk_queue_destroy (&q);
}

Test (brk_queue, requirements_route_to_matching_capabilities)
{
    brk_queue_t *q = brk_queue_new ();
    brk_job_t *amd = s_job ("noop", 1, 1), *any = s_job ("noop", 1, 2);
    snprintf (amd->require.vendor, sizeof amd->require.vendor, "%s", "Advanced Micro");
    amd->require.min_global_mem = 8ull << 30;
    brk_queue_push (q, amd);
    brk_queue_push (q, any);
    const char *kinds [] = { "noop" };
    brk_caps_t cpu = { .vendor = "GenuineIntel", .type = "cpu", .global_mem = 16ull << 30 };
    brk_caps_t rx580 = { .vendor = "Advanced Micro Devices, Inc.", .type = "gpu",
                         .global_mem = 8ull << 30, .opencl_c = 12 };
    cr_assert_eq (brk_queue_pop (q, kinds, 1, &cpu), any, "the CPU took the AMD-only job");
    cr_assert_null (brk_queue_pop (q, kinds, 1, &cpu));
    cr_assert_eq (brk_queue_pop (q, kinds, 1, &rx580), amd);
    brk_job_destroy (&amd);
    brk_job_destroy (&any);
    brk_queue_destroy (&q);
}
