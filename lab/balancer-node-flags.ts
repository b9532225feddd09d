/**
 * Node flags the balancer runs with, as bin/sempre-balancer passes them by
 * default, for the places that start it with `node` directly (the local
 * stack, the lab, the bench): a young generation of 8 MB, a 1 GB heap
 * limit, under which V8 collects the old generation sooner (BENCHMARKS.md,
 * "Memory"), and one V8 helper thread instead of 4 (BENCHMARKS.md, "The p99 tail on
 * one core").
 */
export const BALANCER_NODE_FLAGS = ['--max-semi-space-size=4', '--max-old-space-size=1024', '--v8-pool-size=1'] as const;
