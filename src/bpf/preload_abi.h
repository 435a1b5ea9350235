/* The contract between libleakwatch-preload.so (src/preload/) and leakwatch (BPF + user space).
 * Plain C with fixed-width fields: included by the preload library (C), by clang -target bpf
 * (after vmlinux.h) and by g++.
 *
 * In-process mode in one picture:
 *
 *   program --malloc(s)--> preload wrapper: countdown -= s (per thread) --> > 0: real malloc
 *                                 | <= 0: sampled (p(s) = 1 - exp(-s/R), sampling_table.h)
 *                                 v
 *                          real malloc -> p; remember p in the sampled set;
 *                          leakwatch_hook_alloc(p, s)     <-- uprobe (leakwatch, BPF)
 *   program --free(p)-->   p in the sampled set? no --> real free
 *                                 | yes: forget p
 *                                 v
 *                          leakwatch_hook_free(p)         <-- uprobe; then real free
 *
 * Hooks.  Both functions start with one 5-byte NOP (0f 1f 44 00 00) at the symbol's address,
 * followed by `ret`; nothing else.  Probe them at offset 0 of the symbol (file offset =
 * st_value - p_vaddr + p_offset of the PT_LOAD holding it); the arguments are in the SysV
 * registers at the probe (ptr = di, size = si).  Entry probes only: the hooks return nothing
 * and a return probe would add nothing.
 *   - hook_alloc runs after the real allocation succeeded, once per sampled allocation,
 *     whatever the function (malloc, calloc, realloc, reallocarray, posix_memalign,
 *     aligned_alloc, memalign, valloc, pvalloc, every operator new form).  `size` is the
 *     requested size (calloc: n * m; realloc: the new size), the one the sampling decision
 *     used: weight it with p(size) for byte sampling (1 when sample_bytes == 1).  In byte
 *     mode a zero-byte request is never sampled (p(0) = 0); in exact mode every successful
 *     allocation is, zero-byte ones included.
 *   - hook_free runs before the block is returned to the allocator, exactly once per sampled
 *     block that is released (free, realloc moving or shrinking it, realloc(p, 0), every
 *     operator delete form), never for unsampled blocks.  A realloc of a sampled block gives
 *     hook_free(old) then, if the new block is sampled, hook_alloc(new, new_size); if the
 *     realloc fails, hook_alloc(old, old_size) puts the old block back.
 *   - Stacks: the wrappers keep frame pointers and call the hooks from their own frame, so a
 *     frame-pointer walk at the hook's entry gives [hook address, return address in the
 *     caller of malloc/new/..., its caller, ...]: drop frame 0.  (The wrapper's own return
 *     address is at [sp] and is skipped by the walk, which is what we want.)
 *   - Unknown frees: a block sampled while the sampled set was full (set_overflow) gets a
 *     hook_alloc but never a hook_free; count it as a loss.  A hook_free for an address the
 *     tracer does not know (sampled before it attached) is to be ignored.
 *
 * Environment read by the library (at start-up; exec'd children inherit it):
 *   LEAKWATCH_SAMPLE_BYTES   mean sampling interval R in bytes (decimal, optional K/M/G
 *                            suffix, powers of 1024); default 524288.  1 means every
 *                            allocation is sampled (exact mode).  Range 1 .. 2^44.
 *   LEAKWATCH_SAMPLE_CALLS   sample allocation calls instead of bytes: each call with
 *                            probability 1/N, whatever its size (-s N); range 1 .. 2^28,
 *                            1 = exact.  Overrides LEAKWATCH_SAMPLE_BYTES.
 *   LEAKWATCH_PRELOAD_DISABLE=1   wrappers only pass through: no sampling, no hooks.
 *   LEAKWATCH_PRELOAD_SET_SLOTS   capacity of the sampled set (power of two, 2^10 .. 2^26);
 *                            default 2^18 (2^22 in exact mode).
 *   LEAKWATCH_PRELOAD_SEED   fixes the per-thread random streams (tests only).
 *   LEAKWATCH_PRELOAD_TEST_DLSYM  a (missing) symbol looked up during initialisation, to
 *                            exercise allocations made inside dlsym (tests only).
 *
 * Counters: the library exports `struct leakwatch_preload_stats leakwatch_preload_stats`
 * (symbol of that name, default visibility).  Read it from outside with
 * process_vm_readv / /proc/PID/mem at the symbol's address in the mapping; fields are
 * updated with relaxed atomics, so a reader may see them a moment apart.
 */
#ifndef LEAKWATCH_BPF_PRELOAD_ABI_H
#define LEAKWATCH_BPF_PRELOAD_ABI_H

#if defined(__VMLINUX_H__)
typedef __u32 lw_preload_u32;
typedef __u64 lw_preload_u64;
#else
#include <stddef.h>
#include <stdint.h>
typedef uint32_t lw_preload_u32;
typedef uint64_t lw_preload_u64;
#endif

/* File name of the library, installed next to the leakwatch binary. */
#define LEAKWATCH_PRELOAD_LIBRARY "libleakwatch-preload.so"

/* Symbol names, for the probe planner. */
#define LEAKWATCH_HOOK_ALLOC_SYMBOL "leakwatch_hook_alloc"
#define LEAKWATCH_HOOK_FREE_SYMBOL "leakwatch_hook_free"
#define LEAKWATCH_PRELOAD_STATS_SYMBOL "leakwatch_preload_stats"

/* The first 5 bytes at each hook symbol: one x86-64 5-byte NOP (nopl 0x0(%rax,%rax,1)). */
#define LEAKWATCH_HOOK_NOP5 {0x0f, 0x1f, 0x44, 0x00, 0x00}

/* Bumped on any incompatible change of this file. */
#define LEAKWATCH_PRELOAD_ABI_VERSION 1
/* stats.magic once the library has initialised ("lwpreld1" little-endian). */
#define LEAKWATCH_PRELOAD_MAGIC 0x31646c657270776cULL

#define LEAKWATCH_PRELOAD_DEFAULT_SAMPLE_BYTES 524288ULL

/* stats.flags */
#define LW_PRELOAD_F_ACTIVE 0x1u       /* configured and sampling */
#define LW_PRELOAD_F_DISABLED 0x2u     /* LEAKWATCH_PRELOAD_DISABLE=1: pass-through only */
#define LW_PRELOAD_F_CONFIG_ERROR 0x4u /* a bad LEAKWATCH_* value; its default was used */
#define LW_PRELOAD_F_NO_SET 0x8u       /* the sampled set could not be mapped: no sampling */
#define LW_PRELOAD_F_EXACT 0x10u       /* sample_bytes == 1: every allocation is sampled */
#define LW_PRELOAD_F_CALLS 0x40u       /* LEAKWATCH_SAMPLE_CALLS: sample_bytes holds N */
#define LW_PRELOAD_F_SHADOWED 0x20u    /* an allocation function is defined before the library
                                        * in the search order (by the program itself, or an
                                        * earlier LD_PRELOAD): calls to it bypass the library */
#define LW_PRELOAD_F_INJECTED 0x80u    /* loaded into the running process by `leakwatch memleak
                                        * --inject`: the allocator's GOT slots lead to the
                                        * library; blocks allocated before are never seen */

struct leakwatch_preload_stats {
  lw_preload_u64 magic;          /* LEAKWATCH_PRELOAD_MAGIC once initialised, else 0 */
  lw_preload_u32 abi_version;    /* LEAKWATCH_PRELOAD_ABI_VERSION */
  lw_preload_u32 flags;          /* LW_PRELOAD_F_* */
  lw_preload_u64 sample_bytes;   /* R in effect (1 = exact); N with LW_PRELOAD_F_CALLS */
  lw_preload_u64 set_capacity;   /* slots in the sampled set */
  lw_preload_u64 hook_allocs;    /* leakwatch_hook_alloc calls (sampled allocations) */
  lw_preload_u64 hook_frees;     /* leakwatch_hook_free calls */
  lw_preload_u64 sampled_bytes;  /* sum of the sizes passed to hook_alloc */
  lw_preload_u64 set_live;       /* sampled blocks currently in the set */
  lw_preload_u64 set_overflow;   /* sampled blocks that found no slot: their free is lost */
  lw_preload_u64 realloc_restores; /* hook_alloc(old) re-issued after a failed realloc */
  lw_preload_u64 unsampled_early;  /* allocations before the configuration was read */
  lw_preload_u64 bootstrap_allocs; /* served from the static arena during initialisation */
  lw_preload_u64 bootstrap_failures; /* arena exhausted (ENOMEM returned) */
  lw_preload_u64 early_frees_dropped; /* frees during initialisation that were leaked */
  lw_preload_u64 forks;            /* fork children that re-seeded their sampler */
  lw_preload_u64 got_slots;        /* injected: GOT slots that lead to the library */
  lw_preload_u64 got_passes;       /* injected: rewriting passes (the first, then one per dlopen) */
};

#if defined(__cplusplus)
static_assert(sizeof(struct leakwatch_preload_stats) == 136, "preload ABI size");
#elif !defined(__VMLINUX_H__) && defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct leakwatch_preload_stats) == 136, "preload ABI size");
#endif

/* ---- Injection into a running process (`leakwatch memleak -p PID --inject`) ----
 *
 * leakwatch loads the library with dlopen (RTLD_NOW | RTLD_NODELETE, not into the global
 * scope) from a thread it stopped at a safe point, then calls
 *
 *   int leakwatch_inject_init(const struct leakwatch_inject_config*, struct leakwatch_inject_result*)
 *
 * which resolves the allocator the program binds to, rewrites the GOT slots of the
 * allocation functions in every loaded object (and of dlopen, to do the same for objects
 * loaded later), then starts sampling as the configuration says and sets stats.magic.
 * Loaded that way, the library's constructor does nothing: it reads no environment.
 * Returns 0 or an LW_INJECT_E_* code; the result is filled in either case. */
#define LEAKWATCH_INJECT_INIT_SYMBOL "leakwatch_inject_init"
#define LEAKWATCH_INJECT_ABI_VERSION 1

struct leakwatch_inject_config {
  lw_preload_u32 abi_version;    /* LEAKWATCH_INJECT_ABI_VERSION */
  lw_preload_u32 flags;          /* 0 */
  lw_preload_u64 sample_bytes;   /* R; 1 = every allocation (exact) */
  lw_preload_u64 sample_calls;   /* > 1: sample 1 call in N instead (overrides sample_bytes) */
  lw_preload_u64 set_slots;      /* sampled set capacity (power of two), 0 = default */
  lw_preload_u64 seed;           /* 0: from AT_RANDOM; else fixed streams (tests) */
};

#define LW_INJECT_OK 0
#define LW_INJECT_E_NOT_INJECTED 1 /* the library was loaded at start (LD_PRELOAD): use it as is */
#define LW_INJECT_E_ABI 2          /* config ABI mismatch */
#define LW_INJECT_E_ALREADY 3      /* initialised by an earlier injection */
#define LW_INJECT_E_NO_MALLOC 4    /* malloc/free could not be resolved */
#define LW_INJECT_E_NO_SET 5       /* the sampled set could not be mapped */

struct leakwatch_inject_result {
  lw_preload_u32 objects;          /* objects examined */
  lw_preload_u32 slots_rewritten;  /* slots that now lead to the library */
  lw_preload_u32 slots_bound_elsewhere; /* slots bound to another definition: left alone */
  lw_preload_u32 relro_pages;      /* read-only (RELRO) pages made writable for the write */
  lw_preload_u32 skipped_objects;  /* the library, the loader, the allocator's own library */
  lw_preload_u32 reserved;
  char summary[512];               /* what was rewritten where, and what was left alone */
};

#if !defined(__VMLINUX_H__)
#ifdef __cplusplus
extern "C" {
#endif
/* Defined by the library.  Nothing observable happens in them: they exist to be probed. */
void leakwatch_hook_alloc(void* ptr, size_t size);
void leakwatch_hook_free(void* ptr);
#ifdef __cplusplus
}
#endif
#endif

#endif /* LEAKWATCH_BPF_PRELOAD_ABI_H */
