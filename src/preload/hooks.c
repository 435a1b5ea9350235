/* The probed hooks and the exported counters.
 *
 * Each hook is exactly
 *
 *   leakwatch_hook_alloc:  0f 1f 44 00 00   nopl 0x0(%rax,%rax,1)
 *                          c3               ret
 *
 * Written as naked functions because the compiler's own NOP padding
 * (patchable_function_entry) emits five 1-byte NOPs on x86-64, and the kernel (6.18) only
 * turns a uprobe on a single 5-byte NOP into a call to its uprobe trampoline (~0.37 us
 * instead of ~0.63 us for a trap).  Without a probe, a hook costs a call and a NOP; the
 * wrappers call it only for sampled allocations and their frees.  noipa keeps the compiler
 * from assuming anything about them (they are called through the PLT anyway, being
 * default-visibility symbols of a shared library, which also lets a test library interpose
 * them).
 */
#include "preload/preload_internal.h"

#define LW_HOOK __attribute__((naked, noinline, noipa, used, visibility("default")))

LW_HOOK void leakwatch_hook_alloc(void* ptr __attribute__((unused)),
                                  size_t size __attribute__((unused))) {
  __asm__ volatile(".byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n\tret");
}

LW_HOOK void leakwatch_hook_free(void* ptr __attribute__((unused))) {
  __asm__ volatile(".byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n\tret");
}

/* On its own cache line: only sampled paths write it. */
LW_EXPORT struct leakwatch_preload_stats leakwatch_preload_stats __attribute__((aligned(64))) = {
    .abi_version = LEAKWATCH_PRELOAD_ABI_VERSION,
};
