/**
 * Node flags the balancer runs with, as bin/sempre-balancer passes them, for
 * the places that start it with `node` directly (the local stack, the lab, the
 * bench): a young generation of 16 MB (BENCHMARKS.md, "Memory").
 */
export const BALANCER_NODE_FLAGS = ['--max-semi-space-size=8'] as const;
