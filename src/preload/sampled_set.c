/* The set of sampled addresses: which frees must call leakwatch_hook_free.
 *
 *   free(p) ──> lw_filter[top 16 bits of p * φ]  ── 0 ──> real free      (almost every free)
 *                         │ != 0
 *                         v
 *               slots[(mix(p) + k) & mask], k < 32 ── p found ──> tombstone, hook_free
 *
 * Filter: 64 KiB of 8-bit counters, one per hash bucket, counting the live sampled blocks
 * that fall in it.  A free whose counter is 0 cannot be sampled, so the common free costs
 * one byte load from a table small enough to stay in cache.  A counter that reaches 255
 * stays there (it then always sends its frees to the set, which is still correct).  The
 * blocks of the bootstrap arena are counted in for good (lw_filter_pin): their frees must
 * reach lw_free_slow, which drops them, and free's fast path tests nothing else.
 *
 * Slots: open addressing with linear probing, 16-byte slots {address, size}, capacity a
 * power of two, mmap'ed once (pages are touched only as slots are used).  Keys: 0 = never
 * used, 1 = tombstone, else an address.  Lock-free:
 *   - insert claims the first unused-or-tombstone slot of its probe window with a CAS and
 *     then stores the size.  An address is never in the set twice: a block's address can be
 *     returned by malloc again only after its free, which removes it first.
 *   - take finds the key, reads the size, and CASes the key to a tombstone (one winner, so
 *     one hook_free even if the program frees twice).
 *   - a lookup stops at a never-used slot: slots never return to 0, so a key placed beyond
 *     one was placed when that slot was already taken.
 * Probing is bounded (LW_SET_PROBES) instead of growing the table: tombstones are reused by
 * inserts within the window, and a window of 32 slots full of live sampled blocks means
 * the set is overloaded anyway; the block is then counted in set_overflow and its free
 * will not be reported.  Default capacity 2^18 slots (4 MiB of address space): 131,072
 * live sampled blocks at half load, a 64 GiB heap of small blocks at R = 512 KiB.
 */
#include <sys/mman.h>

#include "preload/preload_internal.h"

#define LW_SET_PROBES 32
#define LW_KEY_EMPTY 0u
#define LW_KEY_TOMBSTONE 1u

struct lw_slot {
  uintptr_t key;
  uint64_t size;
};

uint8_t lw_filter[1u << LW_FILTER_BITS] __attribute__((aligned(64)));

static struct lw_slot* lw_slots;
static uint64_t lw_mask;

int lw_set_init(uint64_t capacity) {
  void* m = mmap(NULL, capacity * sizeof(struct lw_slot), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED)
    return -1;
  lw_mask = capacity - 1;
  __atomic_store_n(&lw_slots, (struct lw_slot*)m, __ATOMIC_RELEASE);
  return 0;
}

/* The home slot uses other bits than the filter (murmur3's finaliser), so addresses that
 * share a filter counter do not also share a probe window. */
static uint64_t lw_home(uintptr_t a) {
  uint64_t h = a;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

static void lw_filter_inc(uintptr_t a) {
  uint8_t* c = &lw_filter[lw_filter_index(a)];
  uint8_t v = __atomic_load_n(c, __ATOMIC_RELAXED);
  do {
    if (v == 255)
      return;
  } while (!__atomic_compare_exchange_n(c, &v, (uint8_t)(v + 1), 1, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED));
}

static void lw_filter_dec(uintptr_t a) {
  uint8_t* c = &lw_filter[lw_filter_index(a)];
  uint8_t v = __atomic_load_n(c, __ATOMIC_RELAXED);
  do {
    if (v == 255 || v == 0)
      return;
  } while (!__atomic_compare_exchange_n(c, &v, (uint8_t)(v - 1), 1, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED));
}

void lw_filter_pin(const void* p) { lw_filter_inc((uintptr_t)p); }

int lw_set_insert(void* p, uint64_t size) {
  struct lw_slot* slots = __atomic_load_n(&lw_slots, __ATOMIC_ACQUIRE);
  uintptr_t key = (uintptr_t)p;
  if (!slots || key <= LW_KEY_TOMBSTONE) {
    LW_STAT_ADD(set_overflow, 1);
    return 0;
  }
  /* Counter first: from the moment the key is visible, a free of p must reach the set. */
  lw_filter_inc(key);
  uint64_t home = lw_home(key);
  for (uint64_t k = 0; k < LW_SET_PROBES; ++k) {
    struct lw_slot* s = &slots[(home + k) & lw_mask];
    uintptr_t cur = __atomic_load_n(&s->key, __ATOMIC_ACQUIRE);
    if (cur > LW_KEY_TOMBSTONE)
      continue;
    if (__atomic_compare_exchange_n(&s->key, &cur, key, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
      __atomic_store_n(&s->size, size, __ATOMIC_RELEASE);
      LW_STAT_ADD(set_live, 1);
      return 1;
    }
  }
  lw_filter_dec(key);
  LW_STAT_ADD(set_overflow, 1);
  return 0;
}

int lw_set_take(void* p, uint64_t* size) {
  struct lw_slot* slots = __atomic_load_n(&lw_slots, __ATOMIC_ACQUIRE);
  uintptr_t key = (uintptr_t)p;
  if (!slots || key <= LW_KEY_TOMBSTONE)
    return 0;
  uint64_t home = lw_home(key);
  for (uint64_t k = 0; k < LW_SET_PROBES; ++k) {
    struct lw_slot* s = &slots[(home + k) & lw_mask];
    uintptr_t cur = __atomic_load_n(&s->key, __ATOMIC_ACQUIRE);
    if (cur == LW_KEY_EMPTY)
      return 0;
    if (cur != key)
      continue;
    uint64_t sz = __atomic_load_n(&s->size, __ATOMIC_ACQUIRE);
    if (!__atomic_compare_exchange_n(&s->key, &cur, (uintptr_t)LW_KEY_TOMBSTONE, 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
      return 0; /* a concurrent free of the same block (double free) won */
    lw_filter_dec(key);
    __atomic_fetch_sub(&leakwatch_preload_stats.set_live, 1, __ATOMIC_RELAXED);
    *size = sz;
    return 1;
  }
  return 0;
}
